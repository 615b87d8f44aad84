"""``pyro-mm sample``: draw samples from a saved model."""

from __future__ import annotations

from pathlib import Path

from . import common

__all__ = ["add_parser", "run"]


def add_parser(sub):
    sample = sub.add_parser(
        "sample", help="draw samples from a saved model", formatter_class=common.Formatter,
        description="Draw from the model saved in --run: without --given, --num samples from the prior "
        "(z from the model's prior, then every modality's decoder); with --given MOD, generate the other "
        "modalities from modality MOD of test samples (the first --num, or those named by --index), shown beside "
        "the real ones. Writes samples.png (a grid, one row per sample) and samples.pt (the tensors, a dict "
        "'given->target' -> tensor) to --out.",
        epilog="examples:\n  pyro-mm sample --run runs/meme --num 8\n"
        "  pyro-mm sample --run runs/meme --given syndigits --index 0 5 17 --out runs/meme/given_syndigits")
    sample.add_argument("--run", type=common.out_dir, default=Path("runs/latest"), metavar="DIR",
                        help="directory of a trained run (default runs/latest)")
    sample.add_argument("--num", type=common.positive_int, default=8, metavar="N", help="number of samples (default 8)")
    sample.add_argument("--given", default=None, metavar="MOD",
                        help="condition on this modality of test samples (e.g. mnist, syndigits)")
    sample.add_argument("--index", type=common.non_negative_int, nargs="+", default=None, metavar="I",
                        help="with --given: which test samples to condition on (default 0 ... N-1)")
    sample.add_argument("--seed", type=common.seed, default=0, help="random seed (default 0)")
    sample.add_argument("--out", type=common.out_dir, default=None, metavar="DIR",
                        help="output directory (default: --run)")
    return sample


def run(args) -> int:
    import torch

    from ..registry import load_model
    from ..metrics.plots import cross_generation_grid

    config = common.trained_run(args.run)["config"]
    if args.index is not None and args.given is None:
        raise common.CommandError("--index picks the test samples to condition on; it needs --given")
    vae = load_model(args.run / "model.pt")
    if args.given is not None and args.given not in vae.names:
        raise common.CommandError(f"--given {args.given!r} is not a modality of this model {list(vae.names)}")
    out = common.writable_dir(args.out or args.run)
    torch.manual_seed(args.seed)
    if args.given is None:
        print(f"drawing {args.num} samples of {type(vae).__name__} ({args.run}) from the prior")
        samples = vae.generate(args.num)
        inputs, generated = {}, {f"prior->{n}": v for n, v in samples.items()}
    else:
        index = torch.arange(args.num) if args.index is None else torch.tensor(args.index)
        last = int(index.max())
        option = f"--index {last}" if args.index is not None else f"--num {args.num}"
        print(f"loading {len(index)} test samples of {config['dataset']}")
        test = common.dataset(config["dataset"], "test", last + 1, option=option,
                              num_modalities=config.get("num_modalities"))
        batch = test.batch(index, complete=True)
        targets = [n for n in vae.names if n != args.given]
        print(f"generating {', '.join(targets)} from {args.given} of {type(vae).__name__} ({args.run})")
        generated = {f"{args.given}->{t}": v for t, v in vae.predict(batch, [args.given], targets).items()}
        inputs, samples = {n: batch[n] for n in vae.names}, generated
    torch.save({k: v.cpu() for k, v in samples.items()}, out / "samples.pt")
    title = "Samples from the prior" if args.given is None else f"Given {args.given}"
    cross_generation_grid(inputs, {k: v.cpu() for k, v in generated.items()}, out / "samples.png", title=title)
    print(f"wrote {out / 'samples.png'} and {out / 'samples.pt'}")
    return 0
