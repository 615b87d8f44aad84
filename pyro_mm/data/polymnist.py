"""PolyMNIST and Translated-PolyMNIST: M image modalities that share only the digit class.

A tuple of label ``y`` holds, for every modality ``m``, a *different* MNIST image of class ``y``
(drawn without replacement inside the class, independently per modality, never the same image
twice in a tuple), binarised at half
intensity and composited on a random ``28x28`` crop of modality ``m``'s background photograph:
background pixels are kept, digit pixels get the inverted colour ``255 - background``. Each
modality is ``3x28x28`` in ``[0, 1]``; what the modalities share is the label, what is private
is the handwriting and the crop of their own background.

Translated-PolyMNIST first shrinks the digit (bilinear, antialiased; default scale ``0.75``,
i.e. ``21x21``) and pastes it at a uniformly random position of the ``28x28`` canvas, so the
position becomes private per-modality variation too.

Backgrounds are scikit-image sample photographs that ship with the package (no network), at the
version the ``data`` extra pins: :data:`BACKGROUNDS` lists them in the order modalities use them,
and :data:`BACKGROUND_SHA256` holds the digest each must have. The translated variant's shrinking
computes in float64 (see :mod:`pyro_mm.data.syndigits` on why), so the arrays are the same on every
CPU.
"""

from __future__ import annotations

from typing import Callable, Dict, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from pyro_mm.data.base import MultimodalDataset, above, check_size, make_rng, show_progress, to_tensors
from pyro_mm.data.cache import cache_file, cached_arrays
from pyro_mm.data.checksums import recorded_sha256
from pyro_mm.data.integrity import verify_arrays
from pyro_mm.data.mnist import mnist_split
from pyro_mm.extras import require

__all__ = ["BACKGROUNDS", "BACKGROUND_SHA256", "load_background", "PolyMNIST", "TranslatedPolyMNIST"]

VERSION = 2
CHUNK = 10000


def _sample(name: str) -> np.ndarray:
    """scikit-image's sample photograph ``name`` (shipped inside the package)."""
    return getattr(require("skimage.data", "data", "PolyMNIST's backgrounds"), name)()


def _grey(image: np.ndarray) -> np.ndarray:
    return np.repeat(image[..., None], 3, axis=-1)


#: Background name -> loader of an ``[H, W, 3]`` ``uint8`` photograph (offline sample data).
BACKGROUNDS: Dict[str, Callable[[], np.ndarray]] = {
    "astronaut": lambda: _sample("astronaut"),
    "chelsea": lambda: _sample("chelsea"),
    "coffee": lambda: _sample("coffee"),
    "rocket": lambda: _sample("rocket"),
    "hubble_deep_field": lambda: _sample("hubble_deep_field"),
    "immunohistochemistry": lambda: _sample("immunohistochemistry"),
    "retina": lambda: _sample("retina")[300:1100, 300:1100],  # inside the black rim
    "motorcycle": lambda: _sample("stereo_motorcycle")[0],
    "brick": lambda: _grey(_sample("brick")),
    "grass": lambda: _grey(_sample("grass")),
    "gravel": lambda: _grey(_sample("gravel")),
    "camera": lambda: _grey(_sample("camera")),
    "moon": lambda: _grey(_sample("moon")),
}


#: Background name -> SHA-256 (:func:`~pyro_mm.data.integrity.array_sha256`) of its ``[H, W, 3]`` array.
BACKGROUND_SHA256 = {
    "astronaut": "cb6da3b0a964db607dcf5a5f260acf45b306c32351d2c7693821a2b44818f990",
    "chelsea": "6323427eaf28bd1613016e5ac03daea032cbc16ec72159fcd55633fa5734aa41",
    "coffee": "5bd7eec199ee24dd96cf6b287d97589af4a880632e0fb8fa4fdabab0c286f34b",
    "rocket": "80b483014285747196b3375bdd336a61c1f80cf8050d7ca673b2a49c8d0f5cd0",
    "hubble_deep_field": "75f0e26f9182c8643a1d302e523697a35bef2e6b00ec67a8a4233ce2d80f9d54",
    "immunohistochemistry": "b9a8475fcd6989356c491aa365082e72a7e2ba319ab1e77e98e88ce205091e3f",
    "retina": "1af49bbdd6e3d1e0cd1e479190a2a8ef1adb4d7dce8a71966fb988bad2f4a888",
    "motorcycle": "d3aa7983a112a33bc5165db1b6d7867c21648948cd99b0ec0ab95a54d1cf3a18",
    "brick": "da7c1ad9ecd5611c2f69ccc9b8beffc53e13b35224a7d809b38e162499ca48dd",
    "grass": "a0069bf9507d7bf5bdeed1d7fe338bd9f66dea8fbea81db6f8d2edb8e4070109",
    "gravel": "f9aef7d9de1c9ca078fc9be96e32f0a4a5969eabbc276880c59ab3d1dbdd080f",
    "camera": "e132b84a4eedcf6790ce8b96e9cb0d15f71386de7b46eb77bd2528064737234f",
    "moon": "759024a21112c51d17b15b8af2dc6a7772c513b77a5191c7c201a7ec69d5fbb2",
}


def load_background(name: str) -> np.ndarray:
    """The background photograph ``name`` as ``uint8`` ``[H, W, 3]``, checked against
    :data:`BACKGROUND_SHA256` (:class:`~pyro_mm.data.integrity.DataMismatchError` if it differs)."""
    if name not in BACKGROUNDS:
        raise ValueError(f"unknown background {name!r}; available: {list(BACKGROUNDS)}")
    image = np.ascontiguousarray(BACKGROUNDS[name]()[..., :3], dtype=np.uint8)
    verify_arrays({name: image}, {name: BACKGROUND_SHA256[name]}, f"PolyMNIST's background photograph {name!r}")
    return image


def _choose_backgrounds(num_modalities: int, backgrounds: Optional[Sequence[str]]) -> tuple:
    if backgrounds is None:
        if not 1 <= num_modalities <= len(BACKGROUNDS):
            raise ValueError(
                f"PolyMNIST with {num_modalities} modalities needs {num_modalities} distinct "
                f"backgrounds, but only {len(BACKGROUNDS)} are available: {list(BACKGROUNDS)}"
            )
        return tuple(BACKGROUNDS)[:num_modalities]
    backgrounds = tuple(backgrounds)
    if len(backgrounds) != num_modalities or len(set(backgrounds)) != num_modalities:
        raise ValueError(
            f"need {num_modalities} distinct background names, got {list(backgrounds)}"
        )
    for name in backgrounds:
        if name not in BACKGROUNDS:
            raise ValueError(f"unknown background {name!r}; available: {list(BACKGROUNDS)}")
    return backgrounds


def _same_class_indices(
    labels: np.ndarray, tuple_labels: np.ndarray, taken: np.ndarray, rng
) -> np.ndarray:
    """For each tuple, an MNIST index of the tuple's class, drawn without replacement.

    ``taken`` ``[n, j]`` holds the indices already used by the tuple's previous modalities;
    clashes with them are resolved (by drawing an unused image of the class, or by swapping
    with another tuple of the class when the whole class is in use), so no two modalities of
    a tuple share an MNIST image.
    """
    out = np.empty(len(tuple_labels), dtype=np.int64)
    for c in range(10):
        slots = np.flatnonzero(tuple_labels == c)
        pool = rng.permutation(np.flatnonzero(labels == c))
        pick, spare, before = pool[: len(slots)].copy(), pool[len(slots) :].copy(), taken[slots]
        clash = np.flatnonzero((pick[:, None] == before).any(1))
        while len(clash):
            for i in clash:
                if len(spare):
                    s = rng.integers(len(spare))
                    pick[i], spare[s] = spare[s], pick[i]
                else:
                    k = rng.integers(len(slots))
                    if pick[k] not in before[i] and pick[i] not in before[k]:
                        pick[i], pick[k] = pick[k], pick[i]
            clash = np.flatnonzero((pick[:, None] == before).any(1))
        out[slots] = pick
    return out


def _translate(digits: np.ndarray, scale: float, rng) -> tuple:
    """Shrink ``[n, 28, 28]`` digits by ``scale`` and paste them at uniform random positions.

    Returns the new ``[n, 28, 28]`` float digits in ``[0, 1]`` and the ``[n, 2]`` (row, col)
    offsets of the pasted square.
    """
    n = len(digits)
    side = int(round(28 * scale))
    small = F.interpolate(
        torch.from_numpy(digits[:, None]).double().div(255),
        size=(side, side),
        mode="bilinear",
        antialias=True,
        align_corners=False,
    )[:, 0].numpy()
    offsets = rng.integers(0, 28 - side + 1, size=(n, 2))
    canvas = np.zeros((n, 28, 28), dtype=np.float64)
    rows = offsets[:, 0, None] + np.arange(side)
    cols = offsets[:, 1, None] + np.arange(side)
    canvas[np.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]] = small
    return canvas, offsets


def _composite(digit_mask: np.ndarray, background: np.ndarray, rng) -> tuple:
    """Invert random ``28x28`` crops of ``background`` at the pixels of ``digit_mask``.

    Returns ``uint8`` images ``[n, 3, 28, 28]`` and the ``[n, 2]`` (row, col) crop offsets.
    """
    n = len(digit_mask)
    h, w, _ = background.shape
    offsets = np.stack([rng.integers(0, h - 27, n), rng.integers(0, w - 27, n)], axis=1)
    rows = offsets[:, 0, None] + np.arange(28)
    cols = offsets[:, 1, None] + np.arange(28)
    crops = background[rows[:, :, None], cols[:, None, :]]  # [n, 28, 28, 3]
    images = np.where(digit_mask[..., None], 255 - crops, crops)
    return np.ascontiguousarray(images.transpose(0, 3, 1, 2)), offsets


def build_polymnist(
    images: np.ndarray,
    labels: np.ndarray,
    size: int,
    backgrounds: Sequence[str],
    rng: np.random.Generator,
    scale: Optional[float] = None,
    desc: str = "PolyMNIST",
) -> Dict[str, np.ndarray]:
    """Generate ``size`` tuples from one MNIST split (``scale`` set: the translated variant).

    Returns ``m0..m{M-1}`` (``uint8 [size, 3, 28, 28]``), ``labels``, ``mnist_index``
    ``[size, M]``, ``crop_offsets`` ``[size, M, 2]`` and, when translated, ``digit_offsets``.
    """
    chosen = np.sort(rng.permutation(len(labels))[:size])
    tuple_labels = labels[chosen].astype(np.int64)
    m = len(backgrounds)
    out = {"labels": tuple_labels}
    index = np.empty((size, m), dtype=np.int64)
    crop_offsets = np.empty((size, m, 2), dtype=np.int64)
    digit_offsets = np.empty((size, m, 2), dtype=np.int64)
    with tqdm(total=size * m, desc=desc, unit="img", leave=False, disable=not show_progress()) as bar:
        for j, name in enumerate(backgrounds):
            background = load_background(name)
            index[:, j] = _same_class_indices(labels, tuple_labels, index[:, :j], rng)
            modality = np.empty((size, 3, 28, 28), dtype=np.uint8)
            for start in range(0, size, CHUNK):
                part = slice(start, min(start + CHUNK, size))
                digits = images[index[part, j]]
                if scale is None:
                    digit_mask = digits >= 128
                else:
                    shrunk, digit_offsets[part, j] = _translate(digits, scale, rng)
                    digit_mask = above(shrunk, 0.5)
                modality[part], crop_offsets[part, j] = _composite(digit_mask, background, rng)
                bar.update(part.stop - part.start)
            out[f"m{j}"] = modality
    out["mnist_index"] = index
    out["crop_offsets"] = crop_offsets
    if scale is not None:
        out["digit_offsets"] = digit_offsets
    return out


class PolyMNIST(MultimodalDataset):
    """PolyMNIST: ``num_modalities`` modalities ``m0, m1, ...`` of ``3x28x28`` images.

    :param str split: ``"train"`` (60 000 tuples by default) or ``"test"`` (10 000).
    :param int num_modalities: number of modalities (at most ``len(BACKGROUNDS)``).
    :param int size: number of tuples (default: the whole MNIST split).
    :param int seed: generation seed (same seed -> identical bytes).
    :param backgrounds: optional explicit background names, one per modality.
    :param root: cache directory. :param source_dir: the user's own MNIST IDX files.
    :param observation: see :class:`~pyro_mm.data.base.MultimodalDataset`.

    Attributes besides the base ones: ``backgrounds``, ``mnist_index`` ``[N, M]`` (the MNIST
    image of each modality, within the split), ``crop_offsets`` ``[N, M, 2]``.
    """

    translated = False

    def __init__(
        self,
        split: str = "train",
        num_modalities: int = 5,
        size: Optional[int] = None,
        seed: int = 0,
        backgrounds: Optional[Sequence[str]] = None,
        root=None,
        source_dir=None,
        observation=None,
        scale: float = 0.75,
    ):
        self.backgrounds = _choose_backgrounds(num_modalities, backgrounds)
        images, labels = mnist_split(split, root, source_dir)
        size = check_size(size, len(labels), type(self).__name__)
        scale = float(scale) if self.translated else None
        if scale is not None and not 0 < scale <= 1:
            raise ValueError(f"digit scale must lie in (0, 1], got {scale}")
        tag = "translated_polymnist" if self.translated else "polymnist"
        params = dict(
            set=tag, version=VERSION, split=split, size=size, seed=seed,
            backgrounds=self.backgrounds, scale=scale,
        )

        def build():
            rng = make_rng(seed, split, tag)
            desc = f"{type(self).__name__} {split}"
            return build_polymnist(images, labels, size, self.backgrounds, rng, scale, desc)

        default = (size == len(labels) and seed == 0 and self.backgrounds == tuple(BACKGROUNDS)[:5]
                   and scale in (None, 0.75))
        name = type(self).__name__
        self.cache_path = cache_file(f"{tag}-{split}", params, root)
        arrays = cached_arrays(self.cache_path, build,
                               recorded_sha256(tag.replace("_", "-"), split) if default else None, f"{name} {split}")
        names = [f"m{j}" for j in range(num_modalities)]
        tensors = to_tensors(arrays)
        super().__init__(
            {n: tensors[n] for n in names},
            {n: "bernoulli" for n in names},
            tensors["labels"],
            observation=observation,
        )
        self.split, self.seed, self.scale = split, seed, scale
        self.mnist_index = tensors["mnist_index"]
        self.crop_offsets = tensors["crop_offsets"]
        if self.translated:
            self.digit_offsets = tensors["digit_offsets"]


class TranslatedPolyMNIST(PolyMNIST):
    """Translated-PolyMNIST: digits shrunk by ``scale`` (default 0.75) at random positions.

    Same arguments as :class:`PolyMNIST`; adds ``digit_offsets`` ``[N, M, 2]``, the (row, col)
    of the pasted digit square, uniform over ``0 .. 28 - round(28 * scale)``.
    """

    translated = True
