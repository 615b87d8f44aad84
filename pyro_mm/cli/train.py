"""``pyro-mm train``: train a registered method on an offline data set and save it."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Dict

from ..data.catalog import DATASETS, SCHEMES
from ..registry import METHODS
from ..options import BATCH_SIZE, EPOCHS, LR, SEED, STEPS, TIME_BUDGET, Z_DIM
from ..training import exit_status
from . import common

__all__ = ["add_parser", "run", "method_options", "network_options", "hyperparameters", "run_name",
           "RUN_DEFINING"]

#: the options of `pyro-mm train` that a resumed run must repeat (the trainer checks batch size, lr
#: and seed, the checkpoint the method's options and networks)
RUN_DEFINING = ("method", "dataset", "num_modalities", "scheme", "fraction", "size", "z_dim")
#: further run-defining options, recorded only when given (a run of an earlier version resumes)
RUN_DEFINING_IF_GIVEN = {"paired": None, "observation_seed": 0}


def add_parser(sub) -> argparse.ArgumentParser:
    train = sub.add_parser(
        "train", help="train a method on an offline data set and save it", formatter_class=common.Formatter,
        description="Train METHOD on DATASET (built offline from MNIST, photographs and fonts; cached on first use) "
        "under an observation scheme, for --steps steps or --epochs passes, with a progress bar (steps, time left, "
        "running loss). Writes model.pt, history.json (the loss of every epoch and every step) and checkpoint.pt "
        "(every --checkpoint-every steps and at the end) to --out. An interrupted run (Ctrl-C, SIGTERM, "
        "--time-budget, a crash) continues with the same command plus --resume and then gives exactly the losses of "
        "a run that was never interrupted. Ctrl-C and SIGTERM (a scheduler's preemption) let the step under way "
        "finish, write the checkpoint, print how to continue and exit with status 130 and 143. The method's own "
        "options (objective, estimator, β ...) are listed below; every method gets the same networks, which the "
        "network options set.",
        epilog="examples:\n"
        "  pyro-mm train --method meme --dataset mnist-syndigits --fraction 0.5 --steps 3000 --out runs/meme\n"
        "  pyro-mm train --method meme --dataset mnist-syndigits --fraction 0.5 --steps 6000 --out runs/meme --resume\n"
        "  pyro-mm train --method mmvae+ --dataset polymnist --num-modalities 5 --scheme random --fraction 0.7 \\\n"
        "      --private-dim 16 --beta 2.5 --steps 2000 --out runs/mmvae+\n"
        "  pyro-mm train --method mmvae --encoder mnist=mlp --balance-images --beta 2 --steps 500 --out runs/mmvae\n"
        "  pyro-mm train --method mvae --size 500 --epochs 2 --out runs/tiny     # a quick try\n"
        "  pyro-mm train --method meme --dataset mnist-label --paired 600 --observation-seed 1 --steps 3000 \\\n"
        "      --likelihood-scale label=50 --out runs/semi   # semi-supervised: 600 labels, 60 per class")
    train.add_argument("--method", choices=list(METHODS), default="meme",
                       help="; ".join(f"{name}: {cls.summary}" for name, cls in METHODS.items()) + " (default meme)")
    train.add_argument("--dataset", choices=list(DATASETS), default="mnist-syndigits",
                       help="data set (default mnist-syndigits; see `pyro-mm data --help`)")
    train.add_argument("--num-modalities", type=common.positive_int, default=None, metavar="M",
                       help="polymnist and translated-polymnist: use the first M of their five modalities (default 5)")
    train.add_argument("--scheme", choices=SCHEMES, default=None,
                       help="which modalities each sample observes: 'paired' (all), 'alternate' (two-modality sets: "
                       "the unpaired samples observe one side or the other), 's' / 't' (they observe only the first / "
                       "only the second), 'random' (each entry missing at random); default s for mnist-label (the "
                       "unlabelled samples observe their image), alternate for other two-modality sets, random for "
                       "more")
    train.add_argument("--fraction", type=common.unit, default=0.5, metavar="F",
                       help="paired fraction (alternate, s, t) or probability that an entry is observed (random); "
                       "default 0.5")
    train.add_argument("--paired", "--labelled", dest="paired", type=common.non_negative_int, default=None,
                       metavar="N", help="in place of --fraction (schemes alternate, s, t): exactly N paired samples, "
                       "N/C of each of the C classes (the remainder to classes drawn at random); on mnist-label the "
                       "labelled samples of semi-supervised learning")
    train.add_argument("--observation-seed", type=common.seed, default=0, metavar="S",
                       help="seed of which samples are paired or observed (--fraction, --paired, random); another "
                       "seed, another labelled subset (default 0)")
    train.add_argument("--z-dim", type=common.argument(Z_DIM), default=Z_DIM.default, metavar="D",
                       help=f"size of the shared latent (default {Z_DIM.default})")
    train.add_argument("--steps", type=common.argument(STEPS), default=None, metavar="N",
                       help="training steps in all (counting a resumed run's); with --epochs, whichever ends first")
    train.add_argument("--epochs", type=common.argument(EPOCHS), default=None, metavar="N",
                       help="passes over the data (default 1 when --steps is not given)")
    train.add_argument("--time-budget", type=common.argument(TIME_BUDGET), default=None, metavar="SECONDS",
                       help="stop after this many seconds of training (checkpoint written; --resume continues)")
    train.add_argument("--size", type=common.positive_int, default=None, metavar="N",
                       help="use only this many base images of the training split (default: all)")
    train.add_argument("--batch-size", type=common.argument(BATCH_SIZE), default=BATCH_SIZE.default, metavar="B",
                       help=f"default {BATCH_SIZE.default}")
    train.add_argument("--lr", type=common.argument(LR), default=LR.default,
                       help="Adam's learning rate (default 1e-3)")
    train.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:1, ...")
    common.add_matmul_precision(train)
    train.add_argument("--seed", type=common.seed, default=SEED.default,
                       help="seed of the weights, data order and sampling (default 0)")
    train.add_argument("--out", type=common.out_dir, default=Path("runs/latest"), metavar="DIR",
                       help="output directory (default runs/latest)")
    train.add_argument("--checkpoint-every", type=common.positive_int, default=200, metavar="N",
                       help="write DIR/checkpoint.pt every N steps, and at the end (default 200)")
    train.add_argument("--resume", action="store_true",
                       help="continue from DIR/checkpoint.pt, with either trainer (a Lightning run's checkpoint "
                       "continues in one process and the other way round); every option that shapes the run "
                       "(method, its options, networks, data set and its content, scheme, fraction, size, latent "
                       "size, batch size, lr, seed, matmul precision) must be as before, --steps, --epochs, "
                       "--time-budget and the number of processes may change")
    train.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    _add_network_options(train)
    _add_scale_options(train)
    _add_method_options(train)
    return train


def _add_scale_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "scaling out and logging (the lightning extra: pip install -e '.[lightning]')",
        "with --devices, --strategy, --accelerator or --num-nodes the run trains with PyTorch Lightning (the same "
        "step function, optimiser, data order, checkpoints and --resume); --batch-size is then per process. When a "
        "process dies the others stop within seconds, naming its rank; the last checkpoint is kept. --logger works "
        "with either trainer.")
    group.add_argument("--devices", default=None, metavar="N", help="processes / devices (e.g. 2, or auto)")
    group.add_argument("--strategy", default=None, metavar="NAME", help="e.g. ddp (data-parallel), ddp_spawn, auto")
    group.add_argument("--accelerator", default=None, metavar="NAME", help="cpu, gpu, auto")
    group.add_argument("--num-nodes", type=common.positive_int, default=None, metavar="N", help="machines (default 1)")
    group.add_argument("--precision", default="32-true", metavar="P",
                       help="32-true (default) or 64-true; mixed precision (bf16-mixed, 16-mixed) is refused: the "
                       "bounds' log-sum-exps need float32")
    group.add_argument("--logger", choices=("csv", "tensorboard"), default=None,
                       help="send the hyper-parameters, the loss (loss/train), the bound's terms (terms/...) and image "
                       "grids to a logger in DIR/logs/METHOD-DATASET-seedSEED (-2, -3 ... for later runs in DIR)")
    group.add_argument("--log-every", type=common.positive_int, default=10, metavar="N",
                       help="steps between logged losses (default 10)")
    group.add_argument("--log-images-every", type=common.non_negative_int, default=0, metavar="N",
                       help="steps between cross-generation grids sent to the logger (default 0: none)")


def _lightning_requested(args) -> bool:
    return any(getattr(args, k) is not None for k in ("devices", "strategy", "accelerator", "num_nodes"))


def _check_lightning_options(args) -> None:
    """--devices and --accelerator this machine cannot honour: one line each, before any work."""
    import torch

    if args.devices is not None and args.devices.strip().lstrip("-").isdigit() and int(args.devices) == 0:
        raise common.CommandError("--devices 0: a run needs at least one device; give a number >= 1, or auto")
    accelerator = (args.accelerator or "").lower()
    if accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        raise common.CommandError(f"--accelerator {args.accelerator}: this machine has no CUDA GPU (torch sees none); "
                                  "use --accelerator cpu")
    if accelerator == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise common.CommandError("--accelerator mps: this machine has no Apple GPU (MPS); use --accelerator cpu")


def run_name(args) -> str:
    """The name of the run's logs, ``METHOD-DATASET-seedSEED``, with ``-2``, ``-3`` ... when
    --out already holds logs of that name (a resumed or repeated run)."""
    base = f"{args.method}-{args.dataset}-seed{args.seed}".replace("/", "_")
    name, count = base, 1
    while (args.out / "logs" / name).exists():
        count += 1
        name = f"{base}-{count}"
    return name


def hyperparameters(args) -> dict:
    """The run's settings as the loggers record them (hparams.yaml, TensorBoard's HPARAMS)."""
    saved = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()
             if not k.startswith("option__") and k not in ("func", "method_options", "debug", "command")}
    saved.update({f"option/{k}": v for k, v in args.method_options.items()})
    saved.update({f"network/{k}": v for k, v in network_options(args).items()})
    return {k: (v if isinstance(v, (int, float, str, bool)) or v is None else str(v)) for k, v in saved.items()}


def _loggers(args):
    if args.logger is None:
        return []
    try:
        from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
    except ImportError:
        raise common.CommandError("--logger needs the lightning extra: pip install -e '.[lightning]'") from None
    name = run_name(args)
    if args.logger == "tensorboard":
        try:
            logger = TensorBoardLogger(save_dir=str(args.out), name="logs", version=name, default_hp_metric=False)
        except ModuleNotFoundError:
            raise common.CommandError("--logger tensorboard needs tensorboard: pip install tensorboard") from None
    else:
        logger = CSVLogger(save_dir=str(args.out), name="logs", version=name)
    return [logger]


def _add_network_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("network options", "the networks of every modality, the same for every method")
    group.add_argument("--encoder", type=_kinds("encoder"), default=None, metavar="KIND|NAME=KIND,...",
                       help="image encoders: 'conv' (default) or 'mlp', for every image modality or per modality "
                       "(e.g. mnist=mlp)")
    group.add_argument("--decoder", type=_kinds("decoder"), default=None, metavar="KIND|NAME=KIND,...",
                       help="image decoders: 'mlp' (default) or 'conv', likewise")
    group.add_argument("--standardize-colour", action="store_true",
                       help="colour-image encoders read per-image standardised inputs (colour and brightness removed)")
    group.add_argument("--balance-images", action="store_true",
                       help="scale each image modality's log-likelihood so that every image weighs as much as the "
                       "smallest one (e.g. 784/3072 for SynDigits beside MNIST)")
    group.add_argument("--likelihood-scale", type=_scales, default=None, metavar="NAME=S,...",
                       help="multiply modality NAME's log-likelihood by S (e.g. label=50: a label's few nats against "
                       "an image's hundreds)")


def _kinds(role: str):
    def parse(text: str):
        if "=" not in text:
            return text
        try:
            return {name.strip(): kind.strip() for name, kind in (part.split("=", 1) for part in text.split(",") if part)}
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected KIND or NAME=KIND,..., got {text!r}") from None
    parse.__name__ = role
    return parse


def _scales(text: str) -> Dict[str, float]:
    scales = {}
    for part in (p for p in text.split(",") if p.strip()):
        name, sep, value = part.partition("=")
        try:
            scale = float(value)
        except ValueError:
            scale = float("nan")
        if not sep or not name.strip() or not (0 < scale < float("inf")):
            raise argparse.ArgumentTypeError(f"expected NAME=S,... with positive numbers S, got {text!r}")
        scales[name.strip()] = scale
    if not scales:
        raise argparse.ArgumentTypeError(f"expected NAME=S,..., got {text!r}")
    return scales


def network_options(args) -> Dict:
    """The keyword arguments of :func:`pyro_mm.defaults.default_modalities` given on the command line."""
    options = {}
    if args.encoder is not None:
        options["encoder"] = args.encoder
    if args.decoder is not None:
        options["decoder"] = args.decoder
    if args.standardize_colour:
        options["standardize_colour"] = True
    if args.balance_images:
        options["balance_images"] = True
    if getattr(args, "likelihood_scale", None):
        options["likelihood_scale"] = dict(args.likelihood_scale)
    return options


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
        group.add_argument(option.flag, dest=f"option__{option.name}", type=common.argument(option, check=False),
                           default=None, metavar=option.metavar, help=f"{option.help} [{defaults}]", **extra)


def method_options(args, parser_error) -> dict:
    """The method options given on the command line, checked against the method's declaration
    (a usage error otherwise)."""
    cls = METHODS[args.method]
    given = {key[len("option__"):]: value for key, value in vars(args).items()
             if key.startswith("option__") and value is not None}
    declared = {o.name for o in cls.options}
    foreign = sorted(set(given) - declared)
    if foreign:
        flags = ", ".join("--" + n.replace("_", "-") for n in foreign)
        own = ", ".join(o.flag for o in cls.options) or "none"
        parser_error(f"{flags}: not an option of {args.method} (its options: {own})")
    try:
        cls.resolve_options(given)
    except (TypeError, ValueError) as error:
        parser_error(str(error))
    return given


def run(args) -> int:
    import torch

    from ..data.catalog import default_scheme, num_modalities_of, observation_scheme

    device = common.device(args.device)
    lightning = _lightning_requested(args)
    if lightning:
        _check_lightning_options(args)
    checkpoint = args.out / "checkpoint.pt"
    if args.resume and not checkpoint.is_file():
        raise common.CommandError(f"--resume: no checkpoint at {checkpoint}; train without --resume first")
    common.writable_dir(args.out)
    speaks = _speaks(lightning)
    say = print if speaks else (lambda *a, **k: None)  # a data-parallel worker says nothing
    count = num_modalities_of(args.dataset, args.num_modalities)
    args.scheme = args.scheme or default_scheme(args.dataset, count)
    try:
        observation = observation_scheme(args.scheme, args.fraction, count, count=args.paired,
                                         seed=args.observation_seed)
    except ValueError as error:
        raise common.CommandError(f"--scheme {args.scheme}" + (" with --paired" if args.paired is not None else "")
                                  + f": {error}") from None
    try:
        data = common.dataset(args.dataset, "train", args.size, observation, num_modalities=args.num_modalities)
    except ValueError as error:
        if args.paired is None or "paired" not in str(error):
            raise
        raise common.CommandError(f"--paired {args.paired}: {error}") from None
    torch.manual_seed(args.seed)
    vae = METHODS[args.method].for_dataset(data, args.z_dim, networks=network_options(args), **args.method_options)
    vae = vae.to(device)
    if checkpoint.is_file() and not args.resume:
        say(f"starting afresh: {checkpoint} will be replaced (add --resume to continue it instead)")
    epochs = args.epochs if args.epochs is not None or args.steps is not None else 1
    length = " and ".join(part for part in (f"{args.steps} steps" if args.steps else "",
                                            f"{epochs} epoch(s)" if epochs else "") if part)
    pairing = f"f={args.fraction}" if args.paired is None else f"{args.paired} paired"
    say(f"training {args.method} on {args.dataset} ({len(data)} samples, scheme {args.scheme}, {pairing}) "
        f"for {length}" + (f", resuming from {checkpoint}" if args.resume else "")
        + f"; checkpoint every {args.checkpoint_every} steps")
    config = {**{key: getattr(args, key) for key in RUN_DEFINING}, "networks": network_options(args)}
    config.update({key: getattr(args, key) for key, default in RUN_DEFINING_IF_GIVEN.items()
                   if getattr(args, key) != default})
    loggers = _loggers(args)
    images = None
    if args.log_images_every:
        test = common.dataset(args.dataset, "test", 8, num_modalities=args.num_modalities)
        images = test.batch(torch.arange(min(8, len(test))), complete=True)
    before = checkpoint.stat().st_mtime_ns if checkpoint.is_file() else None
    try:
        if lightning:
            return _train_with_lightning(args, vae, data, epochs, loggers, images, config, checkpoint)
        return _train(args, vae, data, epochs, loggers, images, config, checkpoint)
    except KeyboardInterrupt as stop:  # Ctrl-C or SIGTERM: the trainer saved what it could
        raise common.Stopped(_resume_line(stop, checkpoint, before) if speaks else None, exit_status(stop)) from None


def _resume_line(stop: KeyboardInterrupt, checkpoint: Path, before) -> str:
    what = common.interrupted(stop)
    if getattr(stop, "checkpoint", None) is not None:
        return f"{what}: continue with the same command and --resume"
    if checkpoint.is_file() and checkpoint.stat().st_mtime_ns != before:
        return f"{what}; {checkpoint} holds the last checkpoint: continue with the same command and --resume"
    if checkpoint.is_file():
        return f"{what} before the first checkpoint of this run; {checkpoint} still holds the one it started from"
    return f"{what} before the first checkpoint; nothing to resume"


def _train(args, vae, data, epochs, loggers, images, config, checkpoint) -> int:
    callbacks = []
    if loggers:
        from ..monitor import LoggerCallback

        callbacks.append(LoggerCallback(loggers, every=args.log_every, images_every=args.log_images_every,
                                        batch=images, hparams=hyperparameters(args)))
    try:
        history = vae.fit(data, epochs=epochs, steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                          time_budget=args.time_budget, seed=args.seed, progress=not args.no_progress,
                          checkpoint=checkpoint, checkpoint_every=args.checkpoint_every, resume=args.resume,
                          config=config, callback=callbacks[0] if callbacks else None,
                          matmul_precision=args.matmul_precision)
    finally:
        for callback in callbacks:
            callback.close()
    _save_run(args, vae, history, checkpoint)
    return 0


def _save_run(args, vae, history, checkpoint) -> None:
    for epoch, loss in enumerate(history, 1):
        print(f"  epoch {epoch}: loss per sample {loss:.3f}")
    vae.save(args.out / "model.pt")
    saved = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()
             if not k.startswith("option__") and k not in ("func", "method_options", "debug")}
    common.write_json(args.out / "history.json", {"config": {**saved, "options": args.method_options,
                                                             "networks": network_options(args)},
                                                  "loss": history, "step_loss": vae.step_losses})
    print(f"{len(vae.step_losses)} steps; saved {args.out / 'model.pt'}, {args.out / 'history.json'} and {checkpoint}")


def _train_with_lightning(args, vae, data, epochs, loggers, images, config, checkpoint) -> int:
    try:
        from ..lightning import fit_lightning
    except ImportError:
        raise common.CommandError("--devices, --strategy, --accelerator and --num-nodes need the lightning extra: "
                                  "pip install -e '.[lightning]'") from None

    if args.time_budget is not None:
        raise common.CommandError("--time-budget is the built-in trainer's (leave out --devices, --strategy, "
                                  "--accelerator and --num-nodes to use it); a Lightning run stops at --steps or "
                                  "--epochs, or on SIGTERM with a checkpoint that --resume continues")
    if args.matmul_precision != "highest":
        raise common.CommandError("--matmul-precision is the built-in trainer's; a Lightning run computes in float32 "
                                  "(leave out --devices, --strategy, --accelerator and --num-nodes to use it)")
    devices = int(args.devices) if args.devices and args.devices.lstrip("-").isdigit() else (args.devices or "auto")
    trainer = fit_lightning(vae, data, batch_size=args.batch_size, lr=args.lr, seed=args.seed, epochs=epochs,
                            steps=args.steps, accelerator=args.accelerator or "auto", devices=devices,
                            strategy=args.strategy or "auto", num_nodes=args.num_nodes or 1, precision=args.precision,
                            loggers=loggers, log_every=args.log_every, images=images,
                            images_every=args.log_images_every, progress=not args.no_progress,
                            default_root_dir=str(args.out), checkpoint=checkpoint,
                            checkpoint_every=args.checkpoint_every, resume=args.resume, config=config,
                            hparams=hyperparameters(args) if loggers else None)
    if not trainer.is_global_zero:
        return 0
    print(f"trained with Lightning on {trainer.world_size} process(es) ({trainer.strategy.__class__.__name__})")
    _save_run(args, vae, vae.history, checkpoint)
    return 0


def _speaks(lightning: bool) -> bool:
    """Whether this process prints: rank 0 of a data-parallel run (the workers Lightning starts run
    this command too, and leave the talking to rank 0), or any process of the built-in trainer."""
    if not lightning:
        return True
    try:
        from ..lightning import launched_as_rank_zero
    except ImportError:
        return True
    return launched_as_rank_zero()
