"""Families of modality subsets 𝒮 with weights ω, and their availability under a mask.

For a sample with observation mask o ∈ {0,1}^M a subset S is *available* when every member of S
is observed; the weights are renormalised over the available subsets:

.. math:: \\tilde\\omega_S(o) = \\omega_S\\,[S \\subseteq o] \\,/\\, \\sum_{S' \\subseteq o} \\omega_{S'}

:meth:`SubsetFamily.sample` draws ``k`` available subsets per sample i.i.d. from ω̃ and gives each
the weight ``1/k``, so that ``Σ_j f(S_j)/k`` is an unbiased estimate of ``Σ_S ω̃_S f(S)``.
:class:`PowerSet` does this without enumerating its 2^M − 1 members, so the cost of a sub-sampled
step does not grow with 2^M.
"""

from __future__ import annotations

from typing import Optional, Sequence, Tuple

import torch

from .options import integer

__all__ = ["SubsetFamily", "PowerSet", "singletons", "full_set", "power_set"]

#: k, the subsets :meth:`SubsetFamily.sample` draws per sample (a mixture bound's ``num_subsets``)
K = integer("k", 1, "subsets drawn per sample", minimum=1)


class SubsetFamily:
    """A family of non-empty subsets of ``M`` modalities with positive weights.

    :param members: boolean ``[C, M]`` (or a list of index tuples) — the subsets.
    :param weights: optional positive ``[C]`` weights ω (default uniform).
    :param int num_modalities: ``M`` (needed when ``members`` is a list of tuples).
    """

    def __init__(self, members, weights: Optional[Sequence[float]] = None,
                 num_modalities: Optional[int] = None):
        if not torch.is_tensor(members):
            if num_modalities is None:
                raise ValueError("num_modalities is needed when members are index tuples")
            rows = torch.zeros(len(members), num_modalities, dtype=torch.bool)
            for i, subset in enumerate(members):
                rows[i, list(subset)] = True
            members = rows
        members = members.to(torch.bool)
        if members.dim() != 2 or members.shape[0] == 0:
            raise ValueError(f"members must be a non-empty [C, M] boolean table, got {tuple(members.shape)}")
        if not members.any(-1).all():
            raise ValueError("every subset of a family must be non-empty")
        self._members = members
        w = torch.ones(members.shape[0]) if weights is None else torch.as_tensor(weights, dtype=torch.float64)
        if w.shape != (members.shape[0],) or not (w > 0).all():
            raise ValueError("weights must be positive, one per subset")
        self._weights = w.to(torch.float64) / w.sum()

    @property
    def num_modalities(self) -> int:
        return self._members.shape[1]

    def __len__(self) -> int:
        return self._members.shape[0]

    def members(self, device=None) -> torch.Tensor:
        """Boolean ``[C, M]`` table of the subsets."""
        return self._members.to(device)

    def largest_subset(self) -> int:
        """The number of modalities in the family's largest subset."""
        return int(self._members.sum(-1).max())

    def weights(self, dtype=torch.float32, device=None) -> torch.Tensor:
        """The normalised weights ω, ``[C]``."""
        return self._weights.to(dtype=dtype, device=device)

    def available(self, observed: torch.Tensor) -> torch.Tensor:
        """Boolean ``[C, B]``: subset ``c`` is available for sample ``b`` (all members observed)."""
        members = self.members(observed.device)  # [C, M]
        return ~(members[:, None, :] & ~observed[None, :, :]).any(-1)

    def renormalised_weights(self, observed: torch.Tensor, dtype=torch.float32) -> torch.Tensor:
        """ω̃ ``[C, B]``: weights renormalised over the available subsets (zero elsewhere)."""
        avail = self.available(observed)
        w = self.weights(dtype, observed.device)[:, None] * avail
        return w / w.sum(0, keepdim=True).clamp_min(torch.finfo(dtype).tiny)

    def sample(self, observed: torch.Tensor, k: int, dtype=torch.float32) -> Tuple[torch.Tensor, torch.Tensor]:
        """Draw ``k`` available subsets per sample i.i.d. from ω̃.

        :returns: ``(subsets [k, B, M] bool, weights [k, B])`` with every weight ``1/k``.
        """
        k = self._check_k(k)
        probs = self.renormalised_weights(observed, torch.float64).T  # [B, C]
        idx = torch.multinomial(probs, k, replacement=True).T  # [k, B]
        subsets = self.members(observed.device)[idx]
        return subsets, torch.full(idx.shape, 1.0 / k, dtype=dtype, device=observed.device)

    def _check_k(self, k: int) -> int:
        k = K.validate(k)
        if k > len(self):
            raise ValueError(
                f"{k} subsets requested per sample but the family has only {len(self)} subsets"
            )
        return k

    def __repr__(self) -> str:
        return f"{type(self).__name__}(num_subsets={len(self)}, num_modalities={self.num_modalities})"


class PowerSet(SubsetFamily):
    """All 2^M − 1 non-empty subsets with uniform weights (the MoPoE family).

    Sampling draws a uniform non-empty subset of each sample's observed modalities from a uniform
    integer r ∈ [1, 2^n − 1] (n = number observed), whose bits select observed modalities:
    O(k·B·M) work, no enumeration.
    """

    def __init__(self, num_modalities: int):
        if not 1 <= num_modalities <= 52:
            raise ValueError(f"PowerSet supports 1 to 52 modalities, got {num_modalities}")
        self._num_modalities = int(num_modalities)
        self._cached = None

    @property
    def num_modalities(self) -> int:
        return self._num_modalities

    def __len__(self) -> int:
        return 2 ** self._num_modalities - 1

    @property
    def _members(self) -> torch.Tensor:  # enumerated lazily, only when needed
        if self._cached is None:
            m = self._num_modalities
            rows = [[bool(r >> i & 1) for i in range(m)] for r in range(1, 2 ** m)]
            self._cached = torch.tensor(rows, dtype=torch.bool)
        return self._cached

    def largest_subset(self) -> int:
        return self._num_modalities

    @property
    def _weights(self) -> torch.Tensor:
        return torch.full((len(self),), 1.0 / len(self), dtype=torch.float64)

    def sample(self, observed, k, dtype=torch.float32):
        k = self._check_k(k)
        n = observed.sum(-1)  # [B]
        u = torch.rand((k,) + n.shape, dtype=torch.float64, device=observed.device)
        count = (2.0 ** n.to(torch.float64)) - 1.0
        r = (u * count).floor().to(torch.int64).clamp_max(count.to(torch.int64) - 1) + 1  # [k, B]
        rank = observed.to(torch.int64).cumsum(-1) - 1  # position among the observed, [B, M]
        bits = (r[..., None] >> rank.clamp_min(0)) & 1
        subsets = observed & bits.to(torch.bool)
        return subsets, torch.full(r.shape, 1.0 / k, dtype=dtype, device=observed.device)


def singletons(num_modalities: int) -> SubsetFamily:
    """The M singletons {m} with uniform weights (the MMVAE family)."""
    return SubsetFamily(torch.eye(num_modalities, dtype=torch.bool))


def full_set(num_modalities: int) -> SubsetFamily:
    """The single subset of all modalities (no sub-sampling)."""
    return SubsetFamily(torch.ones(1, num_modalities, dtype=torch.bool))


def power_set(num_modalities: int) -> PowerSet:
    """All non-empty subsets with uniform weights (the MoPoE family)."""
    return PowerSet(num_modalities)
