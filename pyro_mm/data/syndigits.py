"""SynDigits and MNIST-SynDigits: printed house-number-like digits paired with MNIST.

SynDigits is an offline stand-in for SVHN: ``3x32x32`` colour crops of a printed digit. Each
image takes a digit glyph of one of 30 fonts (shipped as arrays, :mod:`pyro_mm.data.assets`) and,
in bulk with ``grid_sample``, applies a random size (16-26 px digit height), width stretch,
rotation (+-12 degrees) and sub-cell shift; with probability 0.6 per side, a flanking distractor
digit of the same font at one advance's distance (cut by the border, as in SVHN crops); a
background colour modulated by a random crop of a grey texture photograph and a linear
illumination gradient; a foreground colour kept at a luminance contrast from the background; a
Gaussian blur (sigma 0-1.2 px) and pixel noise.

Every step computes in float64 and rounds to ``uint8`` once at the end
(:func:`~pyro_mm.data.base.quantise`). In float32, vector kernels of other CPUs round differently,
and a last-bit difference flips the rounding of a pixel that lies near a boundary; in float64 the
build's error is near 1e-13, and the rounding boundary is moved 1e-7 away from where ties fall by
construction. So the arrays depend only on the seed, the shipped assets, MNIST and numpy's random
streams (tests/data/test_data_determinism.py builds them at 1 and 2 threads and with torch's
scalar, AVX2 and AVX-512 kernels).

MNIST-SynDigits follows the MNIST-SVHN protocol: a SynDigits pool with the same class counts as
the chosen MNIST images is generated, and every MNIST image is paired with ``pairings``
(default 5) SynDigits images of its class (one random in-class permutation per round, so every
SynDigits image is used ``pairings`` times too). Modalities: ``"mnist"`` ``1x28x28`` (the
MNIST images, stored once) and ``"syndigits"`` ``3x32x32``; they share only the label.
"""

from __future__ import annotations

from typing import Dict, Optional

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from pyro_mm.data.assets import syndigits_assets
from pyro_mm.data.base import MultimodalDataset, check_size, make_rng, quantise, show_progress, to_tensors
from pyro_mm.data.cache import cache_file, cached_arrays
from pyro_mm.data.checksums import recorded_sha256
from pyro_mm.data.mnist import mnist_split

__all__ = ["SIDE", "render_syndigits", "MNISTSynDigits"]

VERSION = 2
SIDE = 32
CHUNK = 5000
GLYPH_SIZE = 64
TEXTURE_SIDE = 256


def _luminance(rgb: np.ndarray) -> np.ndarray:
    return rgb @ np.array([0.299, 0.587, 0.114])


def _blur(images: torch.Tensor, sigma: np.ndarray) -> torch.Tensor:
    """Separable Gaussian blur (5 taps, edges replicated) of ``[B, 3, H, W]``, one ``sigma`` per
    image: five weighted shifts down the rows, then five across the columns (in float64 this is
    far faster than a convolution with one group per image)."""
    h, w = images.shape[-2:]
    x = torch.arange(-2, 3, dtype=images.dtype)
    s = torch.from_numpy(np.maximum(sigma, 1e-3)).to(images.dtype)[:, None]
    k = torch.exp(-0.5 * (x / s) ** 2)
    k = (k / k.sum(1, keepdim=True))[:, :, None, None, None]  # [B, 5, 1, 1, 1]
    padded = F.pad(images, (2, 2, 2, 2), mode="replicate")
    rows = sum(k[:, i] * padded[:, :, i:i + h, :] for i in range(5))
    return sum(k[:, i] * rows[:, :, :, i:i + w] for i in range(5))


def _render_chunk(
    digits: np.ndarray,
    glyphs: torch.Tensor,
    advances: np.ndarray,
    ink_height: np.ndarray,
    textures: np.ndarray,
    rng: np.random.Generator,
) -> Dict[str, np.ndarray]:
    """Render one chunk of SynDigits images of the given ``digits`` (see the module docstring)."""
    n = len(digits)
    num_fonts = glyphs.shape[0]
    font = rng.integers(0, num_fonts, n)
    height = rng.uniform(16, 26, n)
    stretch = rng.uniform(0.8, 1.2, n)
    angle = np.deg2rad(rng.uniform(-12, 12, n))
    shift = rng.uniform(-2, 2, (n, 2)) / (SIDE / 2)
    left, right = rng.integers(0, 10, n), rng.integers(0, 10, n)
    has_left, has_right = rng.random(n) < 0.6, rng.random(n) < 0.6
    gap = rng.uniform(0.02, 0.25, n)

    # output -> glyph-canvas coordinates (grid units: half the side of each image), so that the
    # font's digit height (ink_height pixels of the glyph canvas) spans `height` output pixels:
    # A = scale diag(1 / stretch, 1) R(-angle), scale = (ink / 32) / (height / 16)
    scale = (ink_height[font] / (GLYPH_SIZE / 2)) / (height / (SIDE / 2))
    cos, sin = np.cos(angle), np.sin(angle)
    a = np.stack([[cos / stretch, sin / stretch], [-sin, cos]], 0).transpose(2, 0, 1)
    a = a * scale[:, None, None]
    t = -np.einsum("bij,bj->bi", a, shift)
    # the affine sampling grid (as F.affine_grid with align_corners=False, computed directly)
    centres = (np.arange(SIDE, dtype=np.float64) * 2 + 1) / SIDE - 1
    base = np.stack(np.meshgrid(centres, centres, indexing="xy"), -1)  # [H, W, (x, y)]
    grid = torch.from_numpy(np.einsum("bij,hwj->bhwi", a, base) + t[:, None, None, :])
    step = torch.from_numpy(advances[font] / (GLYPH_SIZE / 2) + gap)[:, None, None]
    font_t = torch.from_numpy(font)

    def sample(digit, offset):
        g = grid.clone()
        g[..., 0] += offset
        source = glyphs[font_t, torch.from_numpy(digit)][:, None]
        return F.grid_sample(source, g, align_corners=False)

    alpha = sample(digits, 0.0)
    alpha = alpha + sample(left, step) * torch.from_numpy(has_left).double()[:, None, None, None]
    alpha = alpha + sample(right, -step) * torch.from_numpy(has_right).double()[:, None, None, None]
    alpha = alpha.clamp_(0, 1)

    bg = rng.uniform(0, 1, (n, 3))
    fg = rng.uniform(0, 1, (n, 3))
    low = np.abs(_luminance(fg) - _luminance(bg)) < 0.3
    dark_bg = _luminance(bg) < 0.5
    fg[low & dark_bg] = 1 - 0.3 * (1 - fg[low & dark_bg])
    fg[low & ~dark_bg] = 0.3 * fg[low & ~dark_bg]

    tex_id = rng.integers(0, len(textures), n)
    corner = rng.integers(0, TEXTURE_SIDE - SIDE + 1, (n, 2))
    rows = corner[:, 0, None] + np.arange(SIDE)
    cols = corner[:, 1, None] + np.arange(SIDE)
    tex = textures[tex_id[:, None, None], rows[:, :, None], cols[:, None, :]]
    amplitude = rng.uniform(0.1, 0.6, (n, 1, 1))
    tex = (tex - tex.mean((1, 2), keepdims=True)) * amplitude
    ramp = np.linspace(-0.5, 0.5, SIDE)
    slope = rng.uniform(-0.3, 0.3, (n, 2))
    light = 1 + slope[:, 0, None, None] * ramp[:, None] + slope[:, 1, None, None] * ramp[None, :]
    background = (bg[:, :, None, None] + tex[:, None]) * light[:, None]
    foreground = fg[:, :, None, None] * light[:, None]

    image = torch.from_numpy(background) * (1 - alpha) + torch.from_numpy(foreground) * alpha
    sigma = rng.uniform(0, 1.2, n)
    image = _blur(image, sigma)
    noise = rng.normal(0, 1, image.shape)
    noise *= rng.uniform(0, 0.04, (n, 1, 1, 1))
    image = image + torch.from_numpy(noise)
    return {"images": quantise(image), "font": font}


def _ink_height(glyphs: np.ndarray) -> np.ndarray:
    """Median height in pixels of the inked box of each font's ten digits, ``[F]``."""
    rows = glyphs.max(3) > 0.2  # [F, 10, 64]
    first = rows.argmax(2)
    last = rows.shape[2] - 1 - rows[:, :, ::-1].argmax(2)
    return np.median(last - first + 1, axis=1).astype(np.float64)


def render_syndigits(
    labels: np.ndarray, rng: np.random.Generator, desc: str = "SynDigits"
) -> Dict[str, np.ndarray]:
    """Render one SynDigits image per entry of ``labels``.

    Returns ``images`` ``uint8 [n, 3, 32, 32]``, ``font`` ``[n]`` (index into ``fonts``) and
    ``fonts`` (the font file names used).
    """
    assets = syndigits_assets()
    glyphs = assets["glyphs"].astype(np.float64) / 255
    advances = assets["advances"].astype(np.float64)
    ink = _ink_height(glyphs)
    glyphs_t = torch.from_numpy(glyphs)
    textures = assets["textures"].astype(np.float64) / 255
    n = len(labels)
    images = np.empty((n, 3, SIDE, SIDE), dtype=np.uint8)
    font = np.empty(n, dtype=np.int64)
    with tqdm(total=n, desc=desc, unit="img", leave=False, disable=not show_progress()) as bar:
        for start in range(0, n, CHUNK):
            part = slice(start, min(start + CHUNK, n))
            out = _render_chunk(labels[part], glyphs_t, advances, ink, textures, rng)
            images[part], font[part] = out["images"], out["font"]
            bar.update(part.stop - part.start)
    return {"images": images, "font": font, "fonts": assets["fonts"]}


def _pair_by_class(labels: np.ndarray, pairings: int, rng: np.random.Generator) -> np.ndarray:
    """``[pairings, n]`` partner indices: round ``r`` is a random in-class permutation."""
    partners = np.empty((pairings, len(labels)), dtype=np.int64)
    for r in range(pairings):
        for c in range(10):
            members = np.flatnonzero(labels == c)
            partners[r, members] = rng.permutation(members)
    return partners


class MNISTSynDigits(MultimodalDataset):
    """MNIST-SynDigits: ``"mnist"`` ``1x28x28`` paired by class with ``"syndigits"`` ``3x32x32``.

    :param str split: ``"train"`` or ``"test"``.
    :param int size: number of MNIST images used (default: the whole split); a SynDigits pool
        of the same size and class counts is rendered.
    :param int pairings: SynDigits partners per MNIST image (default 5); ``len = size * pairings``.
    :param int seed: generation seed (same seed -> identical bytes).
    :param root: cache directory. :param source_dir: the user's own MNIST IDX files.
    :param observation: see :class:`~pyro_mm.data.base.MultimodalDataset` (e.g.
        :class:`~pyro_mm.data.observation.PairedFraction`).

    Attributes besides the base ones: ``mnist_index`` ``[N]`` (into the MNIST split),
    ``syndigits_index`` ``[N]`` (into the SynDigits pool), ``syndigits_labels`` (the digit
    rendered in each pool image), ``syndigits_font`` and ``fonts`` (font of each pool image).
    """

    def __init__(
        self,
        split: str = "train",
        size: Optional[int] = None,
        pairings: int = 5,
        seed: int = 0,
        root=None,
        source_dir=None,
        observation=None,
    ):
        images, labels = mnist_split(split, root, source_dir)
        size = check_size(size, len(labels), "MNISTSynDigits")
        if int(pairings) < 1:
            raise ValueError(f"pairings must be a positive integer, got {pairings}")
        pairings = int(pairings)
        params = dict(
            set="mnist_syndigits", version=VERSION, split=split, size=size, seed=seed, pairings=pairings,
        )
        default = size == len(labels) and seed == 0 and pairings == 5

        def build():
            rng = make_rng(seed, split, "mnist_syndigits")
            chosen = np.sort(rng.permutation(len(labels))[:size])
            syn_labels = rng.permutation(labels[chosen].astype(np.int64))
            rendered = render_syndigits(syn_labels, rng, f"SynDigits {split}")
            # partners of the chosen MNIST images among the SynDigits images of the same class:
            # both sides have identical class counts, so a per-class permutation matches them
            order_m = np.argsort(labels[chosen], kind="stable")
            order_s = np.argsort(syn_labels, kind="stable")
            partners = np.empty((pairings, size), dtype=np.int64)
            for r, perm in enumerate(_pair_by_class(syn_labels[order_s], pairings, rng)):
                partners[r, order_m] = order_s[perm]
            return {
                "syndigits": rendered["images"],
                "syndigits_labels": syn_labels,
                "syndigits_font": rendered["font"],
                "fonts": rendered["fonts"],
                "mnist_index": np.tile(chosen, pairings),
                "syndigits_index": partners.reshape(-1),
                "labels": np.tile(labels[chosen].astype(np.int64), pairings),
            }

        self.cache_path = cache_file(f"mnist_syndigits-{split}", params, root)
        arrays = cached_arrays(self.cache_path, build,
                               recorded_sha256("mnist-syndigits", split) if default else None,
                               f"MNIST-SynDigits {split}")
        self.fonts = tuple(str(f) for f in arrays.pop("fonts"))
        tensors = to_tensors(arrays)
        super().__init__(
            {"mnist": torch.from_numpy(images[:, None]), "syndigits": tensors["syndigits"]},
            {"mnist": "bernoulli", "syndigits": "bernoulli"},
            tensors["labels"],
            rows={"mnist": tensors["mnist_index"], "syndigits": tensors["syndigits_index"]},
            observation=observation,
        )
        self.split, self.seed, self.pairings = split, seed, pairings
        self.mnist_index = tensors["mnist_index"]
        self.syndigits_index = tensors["syndigits_index"]
        self.syndigits_labels = tensors["syndigits_labels"]
        self.syndigits_font = tensors["syndigits_font"]
