"""``pyro-mm evaluate``: every metric of a saved model."""

from __future__ import annotations

import json
from pathlib import Path

from . import common

__all__ = ["add_parser", "run"]

#: fewest importance samples for which the Pareto k̂ can be fitted
MIN_PARTICLES = 25


def add_parser(sub):
    evaluate = sub.add_parser(
        "evaluate", help="every metric of a saved model", formatter_class=common.Formatter,
        description="Evaluate the model saved in --run by `pyro-mm train`: cross and joint coherence (judged by "
        "one classifier per modality, trained once and cached), latent accuracy, Frechet distance, "
        "log-likelihood with Pareto k-hat, relatedness, CCA. Writes metrics.json, report.md and figures to the "
        "run directory.",
        epilog="examples:\n  pyro-mm evaluate --run runs/meme\n"
        "  pyro-mm evaluate --run runs/tiny --samples 200 --particles 50 --classifier-size 2000   # quicker")
    evaluate.add_argument("--run", type=common.out_dir, default=Path("runs/latest"), metavar="DIR",
                          help="directory of a trained run (default runs/latest)")
    evaluate.add_argument("--samples", type=common.positive_int, default=2000, metavar="N",
                          help="test images used, at least 2 (default 2000; classifier accuracy is measured on them too)")
    evaluate.add_argument("--particles", type=common.positive_int, default=200, metavar="K",
                          help=f"importance samples of the log-likelihood (>= {MIN_PARTICLES} for k-hat; default 200)")
    evaluate.add_argument("--classifier-size", type=common.positive_int, default=None, metavar="N",
                          help="train the judging classifiers on this many training images (default: the "
                          "whole training split, trained once and cached)")
    evaluate.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:1, ...")
    evaluate.add_argument("--no-progress", action="store_true", help="hide progress bars")
    return evaluate


def run(args) -> int:
    from ..registry import load_model
    from ..metrics import classifiers_for
    from ..metrics.evaluate import evaluate, write_report

    if args.particles < MIN_PARTICLES:
        raise common.CommandError(f"--particles {args.particles}: the Pareto k-hat of the likelihood needs at least "
                                  f"{MIN_PARTICLES} importance samples")
    if args.samples < 2:
        raise common.CommandError(f"--samples {args.samples}: the metrics need at least 2 test samples")
    device = common.device(args.device)
    record = common.trained_run(args.run)
    config = record["config"]
    vae = load_model(args.run / "model.pt").to(device)
    common.writable_dir(args.run, "--run")
    count = config.get("num_modalities")
    train = common.dataset(config["dataset"], "train", config["size"], num_modalities=count)
    test = common.dataset(config["dataset"], "test", args.samples, option="--samples", num_modalities=count)
    judge_train = common.dataset(config["dataset"], "train", args.classifier_size, option="--classifier-size",
                                 num_modalities=count)
    labels = [n for n in train.names if train.likelihoods[n] == "categorical" and train.event_shapes[n] in ((), (1,))]
    if labels:
        raise common.CommandError(
            f"{config['dataset']} has the label modality {labels[0]!r}, which the judging classifiers of `pyro-mm "
            "evaluate` do not read yet; measure the model in Python, e.g. the accuracy of "
            f"vae.predict(test.batch(torch.arange(n)), {[x for x in train.names if x not in labels]}, "
            f"[{labels[0]!r}])[{labels[0]!r}] against test.labels[:n]")
    trained_on = vae.training_data(train).content_hash
    if vae.data_sha256 is not None and vae.data_sha256 != trained_on:
        raise common.CommandError(
            f"{args.run / 'model.pt'} was trained on other data than {config['dataset']} builds now (content sha256 "
            f"{vae.data_sha256[:8]}… then, {trained_on[:8]}… now: the data set's generator or inputs changed); "
            "train the run again on this data")
    if list(vae.names) != list(test.names):  # a method of some of the data set's modalities
        train, test, judge_train = (d.only(list(vae.names)) for d in (train, test, judge_train))
    classifiers, accuracies = classifiers_for(judge_train, test, progress=not args.no_progress)
    print("classifier test accuracy: " + ", ".join(f"{n} {a:.4f}" for n, a in accuracies.items()))
    results = evaluate(vae.model, vae.guide, test, {n: c.to(device) for n, c in classifiers.items()},
                       train_set=train, num_samples=args.samples, likelihood_particles=args.particles,
                       progress=not args.no_progress)
    results["classifier_accuracy"] = accuracies
    if record.get("step_loss"):
        results["_arrays"]["training_loss"] = record["step_loss"]
    report = write_report(results, args.run, title=f"{type(vae).__name__} on {config['dataset']}")
    for key in ("cross_coherence", "latent_accuracy", "joint_coherence", "log_likelihood"):
        if key in results:
            print(f"{key}: {json.dumps(results.get(key))}")
    print(f"wrote {args.run / 'metrics.json'} and {report}")
    return 0
