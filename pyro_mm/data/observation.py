"""Partial observation: which modalities of which samples a model may see.

Three kinds of masks (boolean ``[N, M]``, true = observed):

* :class:`PairedFraction` - the MEME protocol for two modalities ``s`` (first) and ``t``
  (second). Exactly ``round(f * N)`` samples are paired (both observed); every other sample is
  observed in one modality only: always ``s`` (scheme ``"s"``), always ``t`` (scheme ``"t"``),
  or half ``s``-only and half ``t``-only (scheme ``"alternate"``). Each row is a distinct
  original tuple, so the ``s``-only and ``t``-only samples come from disjoint originals and the
  pairing of the unpaired part is destroyed: a dataset never hands out the hidden half of an
  unpaired sample (it is zeroed in the item).
* :class:`PairedCount` - the same with exactly ``count`` paired samples, optionally
  ``count / C`` of each of the C classes of the data set's labels (``balanced=True``). On an
  image + label data set (:class:`~pyro_mm.data.MNISTLabel`) with scheme ``"s"`` these are the
  labelled samples of semi-supervised learning: every image is seen, ``count`` labels.
* :class:`MissingAtRandom` - every modality is missing independently with its own
  probability; a row that would observe nothing gets one modality (chosen uniformly) back, so
  no sample is empty.

Both are deterministic given their ``seed``.
"""

from __future__ import annotations

from typing import Sequence, Union

import numpy as np
import torch

from pyro_mm.options import integer

__all__ = [
    "SCHEMES",
    "PairedFraction",
    "PairedCount",
    "MissingAtRandom",
    "paired_masks",
    "paired_count_masks",
    "missing_at_random_masks",
]

SCHEMES = ("s", "t", "alternate")


def _check_scheme(scheme: str) -> None:
    if scheme not in SCHEMES:
        raise ValueError(f"unknown observation scheme {scheme!r}; choose one of {list(SCHEMES)}")


def _masks(n: int, paired: np.ndarray, unpaired: np.ndarray, scheme: str) -> torch.Tensor:
    """``[n, 2]`` masks: rows ``paired`` observe both modalities, rows ``unpaired`` (in that order)
    one, as ``scheme`` says."""
    masks = np.zeros((n, 2), dtype=bool)
    masks[paired] = True
    if scheme == "s":
        masks[unpaired, 0] = True
    elif scheme == "t":
        masks[unpaired, 1] = True
    else:
        half = (len(unpaired) + 1) // 2
        masks[unpaired[:half], 0] = True
        masks[unpaired[half:], 1] = True
    return torch.from_numpy(masks)


def paired_masks(n: int, fraction: float, scheme: str = "alternate", seed: int = 0) -> torch.Tensor:
    """Boolean ``[n, 2]`` masks, paired fraction ``fraction`` (see :class:`PairedFraction`)."""
    fraction = float(fraction)
    if not 0.0 <= fraction <= 1.0 or np.isnan(fraction):
        raise ValueError(f"paired fraction f must lie in [0, 1], got {fraction}")
    _check_scheme(scheme)
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    n_paired = int(round(fraction * n))
    return _masks(n, order[:n_paired], order[n_paired:], scheme)


#: the paired samples of :class:`PairedCount` and :func:`paired_count_masks`
PAIRED_COUNT = integer("count", 0, "the number of paired samples")


def paired_count_masks(n: int, count: int, scheme: str = "alternate", seed: int = 0, labels=None) -> torch.Tensor:
    """Boolean ``[n, 2]`` masks with exactly ``count`` paired rows (see :class:`PairedCount`);
    given ``labels [n]``, ``count / C`` of each of their C classes (the remainder ``count mod C``
    one more each for classes drawn at random)."""
    count = PAIRED_COUNT.validate(count)
    _check_scheme(scheme)
    if count > n:
        raise ValueError(f"{count} paired samples asked of a data set of {n} samples")
    rng = np.random.default_rng(seed)
    if labels is None:
        order = rng.permutation(n)
        return _masks(n, order[:count], order[count:], scheme)
    labels = np.asarray(labels.cpu() if torch.is_tensor(labels) else labels)
    if labels.shape != (n,):
        raise ValueError(f"class-balanced pairing needs one label per sample ([{n}]), got shape {list(labels.shape)}")
    classes = np.unique(labels)
    share, extra = divmod(count, len(classes))
    wants = np.full(len(classes), share)
    wants[rng.permutation(len(classes))[:extra]] += 1
    paired = []
    for c, want in zip(classes, wants):
        members = np.flatnonzero(labels == c)
        if want > len(members):
            raise ValueError(f"class-balanced pairing of {count} samples needs {want} of class {c}, which has only "
                             f"{len(members)} samples here; ask for fewer paired samples, a larger data set or no "
                             "balance")
        paired.append(rng.permutation(members)[:want])
    paired = np.sort(np.concatenate(paired)) if paired else np.zeros(0, dtype=np.int64)
    rest = np.setdiff1d(np.arange(n), paired)
    return _masks(n, paired, rest[rng.permutation(len(rest))], scheme)


def missing_at_random_masks(
    n: int, num_modalities: int, p_missing: Union[float, Sequence[float]], seed: int = 0
) -> torch.Tensor:
    """Boolean ``[n, M]`` masks, entry ``m`` missing with probability ``p_missing[m]``.

    Rows left with no observed modality get one uniformly chosen modality back.
    """
    p = np.broadcast_to(np.asarray(p_missing, dtype=float), (num_modalities,))
    if np.any(~((p >= 0) & (p <= 1))):
        raise ValueError(f"missing probabilities must lie in [0, 1], got {p.tolist()}")
    rng = np.random.default_rng(seed)
    masks = rng.random((n, num_modalities)) >= p
    empty = np.flatnonzero(~masks.any(1))
    masks[empty, rng.integers(0, num_modalities, len(empty))] = True
    return torch.from_numpy(masks)


class PairedFraction:
    """MEME partial pairing for two-modality data sets (see the module docstring).

    :param float fraction: paired fraction ``f`` in ``[0, 1]``.
    :param str scheme: ``"s"``, ``"t"`` or ``"alternate"``: who is observed in unpaired samples.
    :param int seed: seed of the random choice of paired samples.
    """

    def __init__(self, fraction: float, scheme: str = "alternate", seed: int = 0):
        paired_masks(0, fraction, scheme)  # validates the arguments now, not at first use
        self.fraction, self.scheme, self.seed = float(fraction), scheme, seed

    def masks(self, n: int, num_modalities: int) -> torch.Tensor:
        if num_modalities != 2:
            raise ValueError(
                f"PairedFraction is defined for two modalities, the data set has {num_modalities}"
            )
        return paired_masks(n, self.fraction, self.scheme, self.seed)

    def __repr__(self) -> str:
        return f"PairedFraction(fraction={self.fraction}, scheme={self.scheme!r}, seed={self.seed})"


class PairedCount:
    """Exactly ``count`` paired samples of a two-modality data set (both modalities observed), the
    others observed in one modality as ``scheme`` says (see the module docstring).

    :param int count: the number of paired samples (the labelled samples, on an image + label set
        with scheme ``"s"``).
    :param str scheme: ``"s"``, ``"t"`` or ``"alternate"``: who is observed in unpaired samples.
    :param int seed: seed of the random choice of paired samples (another seed, another subset).
    :param bool balanced: ``count / C`` paired samples of each of the C classes of the data set's
        ``labels`` (as the labelled subsets of Pyro's semi-supervised VAE tutorial); when ``C``
        does not divide ``count``, classes drawn at random get one more.
    """

    def __init__(self, count: int, scheme: str = "alternate", seed: int = 0, balanced: bool = False):
        self.count = PAIRED_COUNT.validate(count)
        _check_scheme(scheme)
        self.scheme, self.seed, self.balanced = scheme, seed, bool(balanced)

    @property
    def needs_labels(self) -> bool:
        """Whether :meth:`masks` reads the data set's labels (:class:`MultimodalDataset` passes them)."""
        return self.balanced

    def masks(self, n: int, num_modalities: int, labels=None) -> torch.Tensor:
        if num_modalities != 2:
            raise ValueError(f"PairedCount is defined for two modalities, the data set has {num_modalities}")
        if self.balanced and labels is None:
            raise ValueError("PairedCount(balanced=True) needs the samples' labels: masks(n, 2, labels=...)")
        return paired_count_masks(n, self.count, self.scheme, self.seed, labels if self.balanced else None)

    def __repr__(self) -> str:
        return (f"PairedCount(count={self.count}, scheme={self.scheme!r}, seed={self.seed}, "
                f"balanced={self.balanced})")


class MissingAtRandom:
    """Each modality missing independently with probability ``p_missing`` (one or one each)."""

    def __init__(self, p_missing: Union[float, Sequence[float]], seed: int = 0):
        p = np.asarray(p_missing, dtype=float)
        if np.any(~((p >= 0) & (p <= 1))):
            raise ValueError(f"missing probabilities must lie in [0, 1], got {p.tolist()}")
        self.p_missing, self.seed = p_missing, seed

    def masks(self, n: int, num_modalities: int) -> torch.Tensor:
        p = np.asarray(self.p_missing, dtype=float)
        if p.ndim and p.shape != (num_modalities,):
            raise ValueError(
                f"got {p.shape[0]} missing probabilities for a data set with {num_modalities} "
                "modalities"
            )
        return missing_at_random_masks(n, num_modalities, p, self.seed)

    def __repr__(self) -> str:
        return f"MissingAtRandom(p_missing={self.p_missing}, seed={self.seed})"
