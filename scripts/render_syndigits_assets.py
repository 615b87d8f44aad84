"""Render SynDigits' glyph and texture arrays into ``pyro_mm/data/assets/syndigits.npz``.

A maintainer's tool, not part of the library: SynDigits is built from the arrays this script
wrote once (:mod:`pyro_mm.data.assets` checks them against their recorded SHA-256), so the data set
no longer depends on which fonts a machine has, on FreeType's rasteriser or on Pillow's resampling.
Run it only to change the shipped arrays, then record the printed digests in
``pyro_mm/data/assets.py`` (and bump SynDigits' ``VERSION``).

Fonts come from matplotlib's bundled directory (DejaVu, STIX, Computer Modern) and the usual OS
font directories, deduplicated by file name. A font is kept only if it draws ten non-empty,
pairwise different digits of which at least ``MIN_RECOGNISED`` are recognised as the right digit
by a nearest-template match against DejaVu Sans: symbol, math-extension and fallback fonts (which
map '0'..'9' to other shapes or to boxes) drop out. Each kept font's digits are rendered once at
``FONT_PX`` as ``64x64`` ``uint8`` coverage maps centred on the glyph box, with the width of its
'0' (its advance). Textures are scikit-image's grey sample photographs resized to ``256x256``.

    python scripts/render_syndigits_assets.py [--fonts-only-from-matplotlib]
"""

from __future__ import annotations

import argparse
import glob
import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from pyro_mm.data.integrity import arrays_sha256

GLYPH_SIZE = 64
FONT_PX = 44
MIN_RECOGNISED = 7
TEMPLATE = 20
TEXTURE_SIDE = 256
TEXTURES = ("brick", "grass", "gravel", "camera", "moon", "coins", "coffee", "chelsea", "astronaut")
OUT = Path(__file__).resolve().parents[1] / "pyro_mm" / "data" / "assets" / "syndigits.npz"


def font_files(os_fonts: bool = True):
    """Every ``.ttf`` file in matplotlib's font directory (and the OS font directories)."""
    import matplotlib

    dirs = [Path(matplotlib.get_data_path()) / "fonts" / "ttf"]
    if os_fonts:
        dirs += [Path("/usr/share/fonts"), Path("/usr/local/share/fonts"), Path.home() / ".fonts",
                 Path.home() / ".local" / "share" / "fonts"]
    found = {}
    for d in dirs:
        for f in sorted(glob.glob(os.path.join(d, "**", "*.[tT][tT][fF]"), recursive=True)):
            found.setdefault(os.path.basename(f), Path(f))
    return [found[k] for k in sorted(found)]


def render(path: Path) -> np.ndarray:
    """Digits 0..9 of ``path`` as ``uint8`` coverage ``[10, 64, 64]`` centred on their box."""
    font = ImageFont.truetype(str(path), FONT_PX)
    out = np.zeros((10, GLYPH_SIZE, GLYPH_SIZE), dtype=np.uint8)
    for d in range(10):
        canvas = Image.new("L", (GLYPH_SIZE, GLYPH_SIZE))
        ImageDraw.Draw(canvas).text((GLYPH_SIZE // 2, GLYPH_SIZE // 2), str(d), fill=255, font=font, anchor="mm")
        out[d] = np.asarray(canvas)
    return out


def templates(glyphs: np.ndarray):
    """Unit-norm, zero-mean ``20x20`` resamplings of each glyph's ink box (``None`` if empty)."""
    out = []
    for g in glyphs.astype(np.float32) / 255:
        ys, xs = np.nonzero(g > 0.2)
        if len(ys) == 0:
            return None
        ink = g[ys.min(): ys.max() + 1, xs.min(): xs.max() + 1]
        box = Image.fromarray((ink * 255).astype(np.uint8))
        t = np.asarray(box.resize((TEMPLATE, TEMPLATE), Image.BILINEAR), dtype=np.float32).ravel()
        t = t - t.mean()
        norm = np.linalg.norm(t)
        if norm == 0:
            return None
        out.append(t / norm)
    return np.stack(out)


def usable_fonts(files):
    """The fonts whose digits pass the checks of the module docstring."""
    reference = next(f for f in files if f.name == "DejaVuSans.ttf")
    ref = templates(render(reference))
    kept = []
    for f in files:
        try:
            t = templates(render(f))
        except OSError:
            continue
        if t is None:
            continue
        distinct = len({g.tobytes() for g in np.round(t, 3)}) == 10
        recognised = int(((t @ ref.T).argmax(1) == np.arange(10)).sum())
        if distinct and recognised >= MIN_RECOGNISED:
            kept.append(f)
    return kept


def textures() -> np.ndarray:
    """scikit-image's grey sample photographs at ``256x256``, ``uint8`` ``[T, 256, 256]``."""
    import skimage.data

    out = []
    for name in TEXTURES:
        img = getattr(skimage.data, name)()
        if img.ndim == 3:
            img = np.asarray(Image.fromarray(img).convert("L"))
        out.append(np.asarray(Image.fromarray(img).resize((TEXTURE_SIDE, TEXTURE_SIDE), Image.BILINEAR)))
    return np.stack(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fonts-only-from-matplotlib", action="store_true", help="ignore the OS font directories")
    args = parser.parse_args()
    fonts = usable_fonts(font_files(not args.fonts_only_from_matplotlib))
    arrays = {
        "glyphs": np.stack([render(f) for f in fonts]),
        "advances": np.asarray([ImageFont.truetype(str(f), FONT_PX).getlength("0") for f in fonts], np.float32),
        "fonts": np.asarray([f.name for f in fonts]),
        "textures": textures(),
        "texture_names": np.asarray(TEXTURES),
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(OUT, **arrays)
    print(f"wrote {OUT} ({OUT.stat().st_size / 1024:.0f} KiB, {len(fonts)} fonts)")
    for name, digest in arrays_sha256(arrays).items():
        print(f'    "{name}": "{digest}",')


if __name__ == "__main__":
    main()
