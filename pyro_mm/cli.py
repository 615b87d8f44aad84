"""The ``pyro-mm`` command.

``pyro-mm`` (or ``pyro-mm demo``) trains every method on a built-in synthetic linear-Gaussian
multimodal data set, prints the bound per epoch and a table comparing each trained bound with the
exact log-likelihood of the model it learned.
"""

from __future__ import annotations

import argparse
import sys
from typing import List, Optional

__all__ = ["main", "build_parser"]


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _fraction(text: str) -> float:
    value = float(text)
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"must lie in [0, 1), got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pyro-mm",
        description="Multimodal VAEs (MVAE, MMVAE, MoPoE-VAE, MEME) as Pyro models, guides and ELBOs.",
    )
    sub = parser.add_subparsers(dest="command")
    demo = sub.add_parser(
        "demo",
        help="train every method on synthetic linear-Gaussian data (the default command)",
        description="Train unimodal VAE, MVAE, MMVAE and MoPoE-VAE on a synthetic linear-Gaussian "
        "multimodal data set with missing modalities; print the bound per epoch and a table of each "
        "trained bound beside the exact log-likelihood of the learned model.",
    )
    from .demo import DEMO_METHODS

    demo.add_argument("--methods", nargs="+", default=list(DEMO_METHODS), choices=list(DEMO_METHODS),
                      help="methods to train (default: all)")
    demo.add_argument("--modalities", type=_positive_int, default=3, help="number of modalities (default 3)")
    demo.add_argument("--samples", type=_positive_int, default=2000, help="data set size (default 2000)")
    demo.add_argument("--missing", type=_fraction, default=0.3, help="fraction of missing entries (default 0.3)")
    demo.add_argument("--epochs", type=_positive_int, default=15, help="training epochs (default 15)")
    demo.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    demo.add_argument("--no-progress", action="store_true", help="hide progress bars")
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    if args.command in (None, "demo"):
        from .demo import run_demo

        if args.command is None:
            args = build_parser().parse_args(["demo"])
        run_demo(args.methods, num_modalities=args.modalities, num_samples=args.samples,
                 missing=args.missing, epochs=args.epochs, seed=args.seed, progress=not args.no_progress)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
