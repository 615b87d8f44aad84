"""Partial observation: which modalities of which samples a model may see.

Two families of masks (boolean ``[N, M]``, true = observed):

* :class:`PairedFraction` - the MEME protocol for two modalities ``s`` (first) and ``t``
  (second). Exactly ``round(f * N)`` samples are paired (both observed); every other sample is
  observed in one modality only: always ``s`` (scheme ``"s"``), always ``t`` (scheme ``"t"``),
  or half ``s``-only and half ``t``-only (scheme ``"alternate"``). Each row is a distinct
  original tuple, so the ``s``-only and ``t``-only samples come from disjoint originals and the
  pairing of the unpaired part is destroyed: a dataset never hands out the hidden half of an
  unpaired sample (it is zeroed in the item).
* :class:`MissingAtRandom` - every modality is missing independently with its own
  probability; a row that would observe nothing gets one modality (chosen uniformly) back, so
  no sample is empty.

Both are deterministic given their ``seed``.
"""

from __future__ import annotations

from typing import Sequence, Union

import numpy as np
import torch

__all__ = [
    "SCHEMES",
    "PairedFraction",
    "MissingAtRandom",
    "paired_masks",
    "missing_at_random_masks",
]

SCHEMES = ("s", "t", "alternate")


def paired_masks(n: int, fraction: float, scheme: str = "alternate", seed: int = 0) -> torch.Tensor:
    """Boolean ``[n, 2]`` masks, paired fraction ``fraction`` (see :class:`PairedFraction`)."""
    fraction = float(fraction)
    if not 0.0 <= fraction <= 1.0 or np.isnan(fraction):
        raise ValueError(f"paired fraction f must lie in [0, 1], got {fraction}")
    if scheme not in SCHEMES:
        raise ValueError(f"unknown observation scheme {scheme!r}; choose one of {list(SCHEMES)}")
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    n_paired = int(round(fraction * n))
    masks = np.zeros((n, 2), dtype=bool)
    masks[order[:n_paired]] = True
    unpaired = order[n_paired:]
    if scheme == "s":
        masks[unpaired, 0] = True
    elif scheme == "t":
        masks[unpaired, 1] = True
    else:
        half = (len(unpaired) + 1) // 2
        masks[unpaired[:half], 0] = True
        masks[unpaired[half:], 1] = True
    return torch.from_numpy(masks)


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
