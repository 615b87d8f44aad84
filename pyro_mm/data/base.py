"""The common base of every data set: in-memory tensors handed out as multimodal items.

A :class:`MultimodalDataset` holds, per modality, a *store* of samples ``[K, *event_shape]`` and a
row index ``[N]`` into that store (so a modality shared by several tuples, like the MNIST side of
MNIST-SynDigits, is kept once). An image store is ``uint8`` in ``[0, 255]`` (read as the value /
255), ``bool`` or floating point in ``[0, 1]`` (read as it is); anything else is refused when the
data set is made. Item ``i`` is

``{"data": {name: tensor}, "mask": bool [M], "label": int}``

with images as ``float32`` in ``[0, 1]`` (Bernoulli likelihood) and categorical modalities — a
class label (one id per sample, event shape ``()``) or a token sequence (``(L,)``) — as ``int64``
ids in ``[0, K)`` (categorical likelihood, ``K = num_categories[name]``), as
:func:`pyro_mm.batch.collate_multimodal` expects. A modality that
the observation mask hides is returned as zeros, so the hidden half of an unpaired sample never
leaves the data set.
"""

from __future__ import annotations

import copy
import hashlib
import os
import warnings
from typing import Dict, Mapping, Optional, Tuple

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from pyro_mm.batch import MultimodalBatch, collate_multimodal

__all__ = [
    "show_progress",
    "LIKELIHOODS",
    "SPLITS",
    "MultimodalDataset",
    "split_id",
    "make_rng",
    "check_size",
    "to_tensors",
    "quantise",
    "above",
    "BOUNDARY_SHIFT",
]

LIKELIHOODS = ("bernoulli", "categorical")


def show_progress() -> bool:
    """Whether data set builds show progress bars: yes unless ``PYRO_MM_PROGRESS=0`` (``pyro-mm
    --no-progress`` sets it)."""
    return os.environ.get("PYRO_MM_PROGRESS", "1") != "0"
SPLITS = ("train", "test")


def split_id(split: str) -> int:
    """Index of ``split`` in :data:`SPLITS` (used to derive per-split random streams)."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {list(SPLITS)}")
    return SPLITS.index(split)


def make_rng(seed: int, split: str, tag: str) -> np.random.Generator:
    """The random stream of data set ``tag``, split ``split``, seed ``seed``.

    Different tags, splits or seeds give independent streams.
    """
    tag_id = int.from_bytes(tag.encode(), "little")
    return np.random.default_rng([int(seed), split_id(split), tag_id])


def check_size(size: Optional[int], available: int, what: str) -> int:
    """``size`` or ``available`` when ``size`` is ``None``; a clear error when out of range."""
    if size is None:
        return available
    size = int(size)
    if not 1 <= size <= available:
        raise ValueError(f"{what}: size must be between 1 and {available}, got {size}")
    return size


class MultimodalDataset(Dataset):
    """In-memory multimodal data set with per-sample observation masks.

    :param dict stores: modality name -> tensor ``[S, *event_shape]`` of its samples (the order
        fixes :attr:`names` and the mask columns): images ``uint8`` in ``[0, 255]``, ``bool`` or
        floating point in ``[0, 1]``; categorical modalities integer ids (a label ``[S]``, tokens
        ``[S, L]``).
    :param dict likelihoods: modality name -> ``"bernoulli"`` (returned as float32 in ``[0, 1]``)
        or ``"categorical"`` (returned as ``int64`` ids).
    :param labels: ``[N]`` integer class labels of the samples (what the metrics judge against;
        not a modality — a label the model sees is a categorical modality of its own, which may
        be the same tensor).
    :param dict rows: optional modality name -> ``[N]`` index into that modality's store
        (identity when absent).
    :param observation: ``None`` (all observed), a boolean ``[N, M]`` tensor, or an object with a
        ``masks(n, num_modalities)`` method such as
        :class:`~pyro_mm.data.observation.PairedFraction` or
        :class:`~pyro_mm.data.observation.MissingAtRandom`,
        :class:`~pyro_mm.data.observation.PairedCount`.
    :param dict num_categories: categorical modality name -> K, its number of categories (ids
        lie in ``[0, K)``; e.g. 10 for a digit label). A categorical modality not named gets one
        more than its largest stored id: name it when a class may be absent from these samples.
    """

    def __init__(
        self,
        stores: Mapping[str, torch.Tensor],
        likelihoods: Mapping[str, str],
        labels: torch.Tensor,
        rows: Optional[Mapping[str, torch.Tensor]] = None,
        observation=None,
        num_categories: Optional[Mapping[str, int]] = None,
    ):
        if not isinstance(stores, Mapping) or not stores:
            raise TypeError("stores must be a non-empty mapping of modality name -> tensor of its samples")
        self.names: Tuple[str, ...] = tuple(stores)
        self._stores: Dict[str, torch.Tensor] = {}
        for name, store in stores.items():
            if not isinstance(name, str) or not name:
                raise ValueError(f"modality names must be non-empty strings, got {name!r}")
            if not torch.is_tensor(store):
                if not isinstance(store, np.ndarray):
                    raise TypeError(f"modality {name!r}: its store must be a tensor (or numpy array) of samples, got "
                                    f"{type(store).__name__}")
                store = torch.from_numpy(np.ascontiguousarray(store))
            if store.dim() < 1:
                raise ValueError(f"modality {name!r}: its store must hold samples along its first dimension, got a "
                                 "scalar")
            self._stores[name] = store
        missing = [n_ for n_ in self.names if n_ not in likelihoods]
        if missing:
            raise ValueError(f"no likelihood given for modalities {missing}; likelihoods maps each modality to one of "
                             f"{list(LIKELIHOODS)}")
        labels = torch.as_tensor(labels)
        if labels.is_floating_point() or labels.dtype == torch.bool or labels.dim() != 1:
            raise TypeError(f"labels must be a 1-D tensor of integer class labels [N], got {labels.dtype} of shape "
                            f"{list(labels.shape)}")
        self.labels: torch.Tensor = labels.to(torch.long)
        n = len(self.labels)
        rows = dict(rows or {})
        declared = dict(num_categories or {})
        strange = sorted(k for k in declared if k not in self.names or likelihoods[k] != "categorical")
        if strange:
            raise ValueError(f"num_categories given for {strange}, which are not categorical modalities of the data "
                             f"set (its categorical modalities: "
                             f"{[n_ for n_ in self.names if likelihoods[n_] == 'categorical']})")
        self._rows: Dict[str, torch.Tensor] = {}
        self.num_categories: Dict[str, int] = {}
        for name in self.names:
            if likelihoods[name] not in LIKELIHOODS:
                raise ValueError(
                    f"modality {name!r}: unknown likelihood {likelihoods[name]!r}; "
                    f"choose one of {list(LIKELIHOODS)}"
                )
            _check_store(name, self._stores[name], likelihoods[name])
            self._rows[name] = _row_index(name, rows.get(name), len(self._stores[name]), n)
            if likelihoods[name] == "categorical":
                self.num_categories[name] = _categories(name, self._stores[name], declared.get(name))
        self.likelihoods: Dict[str, str] = {n_: likelihoods[n_] for n_ in self.names}
        self.event_shapes: Dict[str, Tuple[int, ...]] = {
            n_: tuple(self._stores[n_].shape[1:]) for n_ in self.names
        }
        self.masks: torch.Tensor = self._make_masks(observation)

    # --- observation --------------------------------------------------------------------------
    def _make_masks(self, observation) -> torch.Tensor:
        n, m = len(self), len(self.names)
        if observation is None:
            return torch.ones(n, m, dtype=torch.bool)
        if torch.is_tensor(observation) or isinstance(observation, np.ndarray):
            masks = observation
        elif getattr(observation, "needs_labels", False):  # e.g. class-balanced pairing
            masks = observation.masks(n, m, labels=self.labels)
        else:
            masks = observation.masks(n, m)
        masks = torch.as_tensor(masks)
        if masks.dtype != torch.bool or tuple(masks.shape) != (n, m):
            raise ValueError(
                f"observation mask must be a boolean tensor of shape [{n}, {m}] for modalities "
                f"{list(self.names)}, got {masks.dtype} {tuple(masks.shape)}"
            )
        if not masks.any(1).all():
            raise ValueError("observation mask has rows with no observed modality")
        _warn_unobserved(self.names, masks)
        return masks.clone()

    def with_observation(self, observation) -> "MultimodalDataset":
        """The same samples (tensors shared, not copied) under another observation mask."""
        other = copy.copy(self)
        other.masks = self._make_masks(observation)
        return other

    def only(self, names) -> "MultimodalDataset":
        """The data set restricted to the modalities ``names`` (tensors shared, not copied),
        without the samples that observe none of them."""
        names = tuple(names)
        unknown = [n for n in names if n not in self.names]
        if unknown or not names:
            raise KeyError(f"unknown modalities {unknown}; the data set has {list(self.names)}")
        cols = [self.names.index(n) for n in names]
        keep = self.masks[:, cols].any(1)
        other = copy.copy(self)
        other.names = names
        other._stores = {n: self._stores[n] for n in names}
        other._rows = {n: self._rows[n][keep] for n in names}
        other.likelihoods = {n: self.likelihoods[n] for n in names}
        other.num_categories = {n: k for n, k in self.num_categories.items() if n in names}
        other.event_shapes = {n: self.event_shapes[n] for n in names}
        other.labels = self.labels[keep]
        other.masks = self.masks[keep][:, cols].clone()
        _warn_unobserved(other.names, other.masks)
        return other

    @property
    def content_hash(self) -> str:
        """SHA-256 (hex) of what the samples hold: every modality's store and row index and the
        labels, in the order of :attr:`names`, each with its name, dtype and shape. The observation
        masks are not part of it (a resumed run checks them separately), so the same data under
        another observation scheme has the same hash; restricting to fewer modalities changes it."""
        digest = hashlib.sha256()
        parts = [(f"store:{n}", self._stores[n]) for n in self.names]
        parts += [(f"rows:{n}", self._rows[n]) for n in self.names] + [("labels", self.labels)]
        for name, tensor in parts:
            array = np.ascontiguousarray(tensor.detach().cpu().numpy())
            digest.update(f"{name}|{array.dtype.str}|{array.shape}|".encode())
            digest.update(array.tobytes())
        return digest.hexdigest()

    # --- access -------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.labels)

    def modality(self, name: str, index) -> torch.Tensor:
        """Samples ``index`` of modality ``name`` as the model sees them (ignores the mask)."""
        x = self._stores[name][self._rows[name][index]]
        if self.likelihoods[name] == "bernoulli":
            return x.to(torch.float32).div_(255.0) if x.dtype == torch.uint8 else x.to(torch.float32)
        return x.to(torch.long)

    def __getitem__(self, i: int) -> dict:
        data = {}
        for j, name in enumerate(self.names):
            x = self.modality(name, i)
            data[name] = x if self.masks[i, j] else torch.zeros_like(x)
        return {"data": data, "mask": self.masks[i], "label": int(self.labels[i])}

    def batch(self, index, complete: bool = False) -> MultimodalBatch:
        """Samples ``index`` as one :class:`~pyro_mm.batch.MultimodalBatch` (vectorised, no
        per-item collation), under the data set's masks or, with ``complete=True``, with every
        modality observed."""
        mask = None if complete else self.masks[index]
        return MultimodalBatch({n: self.modality(n, index) for n in self.names}, mask, self.labels[index], self.names)

    def loader(self, batch_size: int, shuffle: bool = True, seed: int = 0, **kwargs) -> DataLoader:
        """A ``DataLoader`` of :class:`~pyro_mm.batch.MultimodalBatch` (shuffled with ``seed``)."""
        generator = torch.Generator().manual_seed(seed)
        return DataLoader(
            self,
            batch_size=batch_size,
            shuffle=shuffle,
            generator=generator,
            collate_fn=collate_multimodal,
            **kwargs,
        )

    def __repr__(self) -> str:
        shapes = ", ".join(f"{n}: {self.event_shapes[n]}" for n in self.names)
        observed = self.masks.float().mean(0).tolist()
        frac = ", ".join(f"{n}: {f:.2f}" for n, f in zip(self.names, observed))
        return f"{type(self).__name__}(n={len(self)}; {shapes}; observed fraction {frac})"


def _row_index(name: str, index, store_size: int, n: int) -> torch.Tensor:
    """Modality ``name``'s row index into its store of ``store_size`` samples, one per label
    (``None``: the store holds exactly one sample per label, in order); ``ValueError`` naming
    what does not fit."""
    if index is None:
        if store_size != n:
            raise ValueError(f"modality {name!r}: its store holds {store_size} samples and there are {n} labels; give "
                             f"one label per sample, or rows={{{name!r}: index}} to pick the samples of a shared store")
        return torch.arange(n)
    index = torch.as_tensor(index)
    if index.is_floating_point() or index.dtype == torch.bool:
        raise TypeError(f"modality {name!r}: row indices must be integers, got {index.dtype}")
    index = index.to(torch.long)
    if index.shape != (n,):
        raise ValueError(f"modality {name!r}: its row index has shape {list(index.shape)}, expected [{n}] (one row per "
                         "label)")
    if n and int(index.min()) < 0:
        raise ValueError(f"modality {name!r}: negative row index {int(index.min())}; rows count from 0 (they do not "
                         "wrap around from the end)")
    if n and int(index.max()) >= store_size:
        raise ValueError(f"modality {name!r}: row index {int(index.max())} is beyond its store of {store_size} samples")
    return index


def _warn_unobserved(names, masks: torch.Tensor) -> None:
    """Warn about the modalities that no sample observes: their networks would get no training
    signal (an observation scheme that hides them everywhere, e.g. fraction 0 of scheme 's')."""
    if not len(masks):
        return
    unobserved = [n for n, seen in zip(names, masks.any(0).tolist()) if not seen]
    if unobserved:
        warnings.warn(f"no sample observes modality {unobserved[0]!r}" + (f" (nor {unobserved[1:]})" if unobserved[1:]
                      else "") + f" in this data set of {len(masks)} samples: its networks get no training signal; "
                      "check the observation scheme", UserWarning, stacklevel=4)


def _categories(name: str, store: torch.Tensor, declared) -> int:
    """K of categorical modality ``name``: ``declared`` (checked against the stored ids), else one
    more than the largest stored id (at least 2)."""
    if declared is not None:
        if isinstance(declared, bool) or not isinstance(declared, (int, np.integer)) or declared < 2:
            raise ValueError(f"modality {name!r}: num_categories must be an integer >= 2, got {declared!r}")
        declared = int(declared)
    if not store.numel():
        if declared is None:
            raise ValueError(f"modality {name!r}: an empty categorical store says nothing of its categories; give "
                             f"num_categories={{{name!r}: K}}")
        return declared
    low, high = int(store.min()), int(store.max())
    if low < 0:
        raise ValueError(f"modality {name!r}: category ids (labels or tokens) must be >= 0, got {low}")
    if declared is not None and high >= declared:
        raise ValueError(f"modality {name!r}: category ids must lie in [0, {declared}) (num_categories={declared}), "
                         f"got {high}")
    return declared if declared is not None else max(high + 1, 2)


def _check_store(name: str, store: torch.Tensor, likelihood: str) -> None:
    """Refuse a store whose values the modality's likelihood cannot read, naming what is wrong."""
    if likelihood == "categorical":
        if store.is_floating_point() or store.dtype == torch.bool or store.is_complex():
            hint = (" (one-hot or probability vectors? store the class ids: x.argmax(-1))"
                    if store.is_floating_point() and store.dim() >= 2 else " (x.long())")
            raise TypeError(f"modality {name!r}: a categorical modality stores integer category ids (labels or "
                            f"tokens), got {store.dtype}{hint}")
        return
    if store.dtype in (torch.uint8, torch.bool):
        return
    if not store.is_floating_point():
        raise TypeError(f"modality {name!r}: images must be uint8 in [0, 255], bool, or floating point in [0, 1]; "
                        f"got {store.dtype}")
    if store.numel():
        low, high = torch.aminmax(store)
        if not (bool(low >= 0) and bool(high <= 1)):
            raise ValueError(f"modality {name!r}: floating-point images must lie in [0, 1], got values in "
                             f"[{float(low):.4g}, {float(high):.4g}] (uint8 images in [0, 255] are read as x / 255)")


#: how far above a rounding or threshold boundary :func:`quantise` and :func:`above` move it: far more
#: than the float64 error of a build (~1e-13), far less than the 1/255 step of a pixel
BOUNDARY_SHIFT = 1e-7


def quantise(x: torch.Tensor) -> np.ndarray:
    """Float64 intensities in ``[0, 1]`` as ``uint8`` ``0..255``, the same on every CPU.

    Rounding half up, ``floor(255 x + 0.5 + BOUNDARY_SHIFT)``: an intensity that is a tie by
    construction (a blend of two multiples of 1/255 with weight 1/2, say) comes out of different
    vector kernels a last bit above or below the tie, and plain rounding would then split it
    between two values; moved by :data:`BOUNDARY_SHIFT`, every such value rounds the same way.
    """
    return torch.floor(x.clamp(0, 1) * 255 + (0.5 + BOUNDARY_SHIFT)).to(torch.uint8).numpy()


def above(x, threshold: float):
    """``x >= threshold`` robust to the last bits of ``x``: ``x > threshold - BOUNDARY_SHIFT``
    (see :func:`quantise`)."""
    return x > threshold - BOUNDARY_SHIFT


def to_tensors(arrays: Mapping[str, np.ndarray]) -> Dict[str, torch.Tensor]:
    """``torch.from_numpy`` of every array (shares memory)."""
    return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in arrays.items()}
