"""Arrays shipped with pyro_mm, checked against their recorded SHA-256 before use.

``assets/syndigits.npz`` holds what SynDigits is rendered from, so that the data set is the same
on every machine whatever fonts it has installed:

* ``glyphs`` ``uint8 [F, 10, 64, 64]``: the digits 0..9 of F = 30 TrueType fonts (DejaVu Sans,
  Sans Mono and Serif with their bold, oblique and condensed faces, DejaVu Math, STIX General,
  and Computer Modern roman, bold, math italic, sans serif and typewriter), rasterised at 44 px as
  coverage maps centred on the glyph box;
* ``advances`` ``float32 [F]``: the width of each font's '0' on that canvas, in pixels;
* ``fonts``: the font file names;
* ``textures`` ``uint8 [9, 256, 256]``: grey photographs (scikit-image's brick, grass, gravel,
  camera, moon, coins, coffee, chelsea, astronaut) used to modulate the backgrounds;
* ``texture_names``.

``scripts/render_syndigits_assets.py`` wrote them (the maintainer's tool; its docstring says how).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Dict

import numpy as np

from pyro_mm.data.integrity import verify_arrays

__all__ = ["ASSET_DIR", "SYNDIGITS_SHA256", "syndigits_assets"]

ASSET_DIR = Path(__file__).resolve().parent / "assets"

#: array name -> SHA-256 (:func:`~pyro_mm.data.integrity.array_sha256`) of ``assets/syndigits.npz``
SYNDIGITS_SHA256 = {
    "glyphs": "d8a180be7f407c46a608fd98ed85276a49ca051b0361ab34c5da5f4776013829",
    "advances": "3c2e3ab6108e13286e9582902756e41026ae7e019636cf3b9ba1a040612c02f4",
    "fonts": "f89e9c63bc6467bdc615c7d66e8888656635fb977e88098dd2cd0e34f580e420",
    "textures": "d0f96a16566ba11d5d264637f606c19e62dc9065a35cc2a4248b6d642f156f29",
    "texture_names": "cd34a3dc3dc840748b7026dbb087c155198469298757d5e9d5699452951818e1",
}


@functools.lru_cache(maxsize=None)
def syndigits_assets() -> Dict[str, np.ndarray]:
    """The arrays of ``assets/syndigits.npz`` (see the module docstring), verified.

    :raises FileNotFoundError: the file is not installed (a broken installation).
    :raises DataMismatchError: an array differs from its recorded digest.
    """
    path = ASSET_DIR / "syndigits.npz"
    if not path.is_file():
        raise FileNotFoundError(f"SynDigits' glyph and texture arrays {path} are missing; reinstall pyro_mm")
    with np.load(path, allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    verify_arrays(arrays, SYNDIGITS_SHA256, f"SynDigits' shipped arrays {path}")
    for array in arrays.values():
        array.setflags(write=False)
    return arrays
