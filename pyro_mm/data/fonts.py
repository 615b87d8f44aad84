"""Digit glyphs rendered from real TrueType fonts found on this machine.

Fonts come from matplotlib's bundled directory (DejaVu, STIX, Computer Modern) and the usual
OS font directories (``/usr/share/fonts``, ``/usr/local/share/fonts``, ``~/.fonts``,
``~/.local/share/fonts``), deduplicated by file name. A font is kept only if it draws ten
non-empty, pairwise different digits of which at least :data:`MIN_RECOGNISED` are recognised as
the right digit by a nearest-template match against DejaVu Sans: symbol, math-extension and
fallback fonts (which map '0'..'9' to other shapes or to boxes) are dropped automatically.

:func:`glyph_pool` renders every kept font's digits once as ``64x64`` coverage maps, centred on
the glyph box, for bulk augmentation with ``grid_sample``.
"""

from __future__ import annotations

import functools
import glob
import os
from pathlib import Path
from typing import Tuple

import numpy as np

from pyro_mm.extras import require

__all__ = ["GLYPH_SIZE", "font_files", "usable_fonts", "glyph_pool"]

GLYPH_SIZE = 64
FONT_PX = 44
MIN_RECOGNISED = 7
_TEMPLATE = 20


def _pil():
    """Pillow's ``Image``, ``ImageDraw`` and ``ImageFont`` (the data extra)."""
    return tuple(require(f"PIL.{name}", "data", "SynDigits' fonts") for name in ("Image", "ImageDraw", "ImageFont"))


def font_files() -> Tuple[Path, ...]:
    """Every ``.ttf`` file in matplotlib's font directory and the OS font directories."""
    dirs = [
        Path(require("matplotlib", "data", "SynDigits' fonts").get_data_path()) / "fonts" / "ttf",
        Path("/usr/share/fonts"),
        Path("/usr/local/share/fonts"),
        Path.home() / ".fonts",
        Path.home() / ".local" / "share" / "fonts",
    ]
    found = {}
    for d in dirs:
        for f in sorted(glob.glob(os.path.join(d, "**", "*.[tT][tT][fF]"), recursive=True)):
            found.setdefault(os.path.basename(f), Path(f))
    return tuple(found[k] for k in sorted(found))


def _render(path: Path) -> np.ndarray:
    """Digits 0..9 of ``path`` as ``float32`` coverage ``[10, 64, 64]`` centred on their box."""
    Image, ImageDraw, ImageFont = _pil()
    font = ImageFont.truetype(str(path), FONT_PX)
    out = np.zeros((10, GLYPH_SIZE, GLYPH_SIZE), dtype=np.float32)
    for d in range(10):
        canvas = Image.new("L", (GLYPH_SIZE, GLYPH_SIZE))
        ImageDraw.Draw(canvas).text(
            (GLYPH_SIZE // 2, GLYPH_SIZE // 2), str(d), fill=255, font=font, anchor="mm"
        )
        out[d] = np.asarray(canvas, dtype=np.float32) / 255
    return out


def _templates(glyphs: np.ndarray) -> np.ndarray:
    """Unit-norm, zero-mean ``20x20`` resamplings of each glyph's ink box (``None`` if empty)."""
    Image = _pil()[0]
    out = []
    for g in glyphs:
        ys, xs = np.nonzero(g > 0.2)
        if len(ys) == 0:
            return None
        ink = g[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
        box = Image.fromarray((ink * 255).astype(np.uint8))
        t = np.asarray(box.resize((_TEMPLATE, _TEMPLATE), Image.BILINEAR), dtype=np.float32).ravel()
        t = t - t.mean()
        norm = np.linalg.norm(t)
        if norm == 0:
            return None
        out.append(t / norm)
    return np.stack(out)


@functools.lru_cache(maxsize=None)
def usable_fonts() -> Tuple[Path, ...]:
    """The fonts whose digits pass the checks of the module docstring (sorted by file name)."""
    files = font_files()
    reference = next((f for f in files if f.name == "DejaVuSans.ttf"), None)
    if reference is None:
        raise FileNotFoundError("matplotlib's DejaVuSans.ttf was not found; cannot check fonts")
    ref = _templates(_render(reference))
    kept = []
    for f in files:
        try:
            t = _templates(_render(f))
        except OSError:
            continue
        if t is None:
            continue
        distinct = len({g.tobytes() for g in np.round(t, 3)}) == 10
        recognised = int(((t @ ref.T).argmax(1) == np.arange(10)).sum())
        if distinct and recognised >= MIN_RECOGNISED:
            kept.append(f)
    return tuple(kept)


def glyph_pool() -> Tuple[np.ndarray, np.ndarray, Tuple[str, ...]]:
    """Glyphs of :func:`usable_fonts`: ``(glyphs, advances, names)``.

    ``glyphs`` is ``float32`` ``[F, 10, 64, 64]`` in ``[0, 1]``, ``advances`` ``[F]`` the width
    of a digit ('0') in pixels of that canvas, ``names`` the font file names.
    """
    fonts = usable_fonts()
    advances = [_pil()[2].truetype(str(f), FONT_PX).getlength("0") for f in fonts]
    return (
        np.stack([_render(f) for f in fonts]),
        np.asarray(advances, dtype=np.float32),
        tuple(f.name for f in fonts),
    )
