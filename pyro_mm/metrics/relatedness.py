"""Relatedness of two modalities' posteriors, after MEME (Joy et al., 2022, "Learning Multimodal
VAEs through Mutual Supervision", ICLR).

For diagonal Gaussians ``N(mu_1, diag sigma_1^2)`` and ``N(mu_2, diag sigma_2^2)`` the
2-Wasserstein distance has the closed form

``W_2^2 = ||mu_1 - mu_2||^2 + ||sigma_1 - sigma_2||^2``

(the Gaussian formula ``||mu_1 - mu_2||^2 + tr(S_1 + S_2 - 2 (S_1^{1/2} S_2 S_1^{1/2})^{1/2})`` with
commuting diagonal ``S``). MEME compares the distance between the posteriors ``q(z | x_i)`` and
``q(z | y_i)`` of *paired* samples with that of *unpaired* ones ``q(z | x_i)``, ``q(z | y_j)``,
``j != i``: a model that relates the modalities puts paired posteriors closer. It also reports
the mean distance between the posteriors of class ``r`` of one modality and class ``c`` of the
other, a ``C x C`` matrix whose diagonal should be the smallest.

Since ``W_2^2`` is the squared Euclidean distance between the stacked vectors ``[mu, sigma]``,
all-pairs distances are computed with :func:`torch.cdist`, in row chunks, in float64.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch

__all__ = [
    "wasserstein2_diag",
    "PairedDistances",
    "paired_unpaired_distances",
    "histogram_data",
    "class_distance_matrix",
    "expert_posteriors",
]


def _gaussians(loc, scale, what: str):
    loc, scale = torch.as_tensor(loc), torch.as_tensor(scale)
    if loc.shape != scale.shape or loc.dim() < 1:
        raise ValueError(f"{what}: loc and scale must have the same shape [..., D], got "
                         f"{tuple(loc.shape)} and {tuple(scale.shape)}")
    if (scale < 0).any():
        raise ValueError(f"{what}: scales must be non-negative")
    return loc.detach().to(torch.float64), scale.detach().to(torch.float64)


def wasserstein2_diag(loc_1, scale_1, loc_2, scale_2, squared: bool = False) -> torch.Tensor:
    """Closed-form ``W_2`` between diagonal Gaussians, batched over the leading dimensions.

    :param loc_1, scale_1: ``[..., D]`` mean and standard deviation of the first Gaussians.
    :param loc_2, scale_2: ``[..., D]`` of the second (broadcast against the first).
    :param bool squared: return ``W_2^2`` instead of ``W_2``.
    :returns: float64 tensor ``[...]``.
    """
    loc_1, scale_1 = _gaussians(loc_1, scale_1, "first Gaussians")
    loc_2, scale_2 = _gaussians(loc_2, scale_2, "second Gaussians")
    if loc_1.shape[-1] != loc_2.shape[-1]:
        raise ValueError(f"latent sizes differ: {loc_1.shape[-1]} and {loc_2.shape[-1]}")
    loc_2, scale_2 = loc_2.to(loc_1.device), scale_2.to(loc_1.device)
    w2 = (loc_1 - loc_2).square().sum(-1) + (scale_1 - scale_2).square().sum(-1)
    return w2 if squared else w2.sqrt()


@dataclass
class PairedDistances:
    """``W_2`` between the posteriors of paired samples ``(i, i)`` and unpaired ones ``(i, j)``.

    :ivar paired: ``[N]`` distances. :ivar unpaired: ``[N]`` distances to a partner ``j != i``.
    :ivar partners: ``[N]`` the index ``j`` used for each ``i``.
    """

    paired: torch.Tensor
    unpaired: torch.Tensor
    partners: torch.Tensor


def paired_unpaired_distances(loc_a, scale_a, loc_b, scale_b, labels=None,
                              generator: Optional[torch.Generator] = None) -> PairedDistances:
    """Distances between ``q(z | a_i)`` and ``q(z | b_i)`` (paired) and ``q(z | b_j)`` (unpaired).

    :param loc_a, scale_a: ``[N, D]`` posteriors of modality ``a``; ``loc_b, scale_b`` of ``b``,
        row ``i`` of both from the same sample.
    :param labels: optional ``[N]`` classes; when given the unpaired partner ``j`` is drawn from
        another class (so "unpaired" means unrelated, not just another sample of the same digit).
    :param generator: random source of the partners.
    """
    loc_a, scale_a = _gaussians(loc_a, scale_a, "modality a")
    loc_b, scale_b = _gaussians(loc_b, scale_b, "modality b")
    if loc_a.dim() != 2 or loc_a.shape != loc_b.shape:
        raise ValueError(f"expected paired posteriors [N, D] of equal shape, got "
                         f"{tuple(loc_a.shape)} and {tuple(loc_b.shape)}")
    n = loc_a.shape[0]
    if n < 2:
        raise ValueError("unpaired distances need at least two samples")
    if labels is None:  # a random non-zero cyclic shift of a random order: never j == i
        order = torch.randperm(n, generator=generator)
        shift = int(torch.randint(1, n, (), generator=generator))
        partners = torch.empty(n, dtype=torch.long)
        partners[order] = order.roll(shift)
    else:
        labels = torch.as_tensor(labels).cpu()
        if labels.shape != (n,):
            raise ValueError(f"labels must have shape [{n}], got {tuple(labels.shape)}")
        if len(labels.unique()) < 2:
            raise ValueError("unpaired partners from another class need at least two classes")
        partners = torch.randint(n, (n,), generator=generator)
        clash = labels[partners] == labels
        while clash.any():
            partners[clash] = torch.randint(n, (int(clash.sum()),), generator=generator)
            clash = labels[partners] == labels
    partners = partners.to(loc_b.device)
    return PairedDistances(
        wasserstein2_diag(loc_a, scale_a, loc_b, scale_b),
        wasserstein2_diag(loc_a, scale_a, loc_b[partners], scale_b[partners]),
        partners,
    )


def histogram_data(paired, unpaired, bins: int = 50):
    """Histogram densities of the paired and unpaired distances over shared bin edges.

    :returns: ``(edges [bins + 1], paired_density [bins], unpaired_density [bins])`` numpy arrays.
    """
    paired, unpaired = np.asarray(paired, dtype=np.float64), np.asarray(unpaired, dtype=np.float64)
    if paired.size == 0 or unpaired.size == 0:
        raise ValueError("histograms need non-empty paired and unpaired distances")
    edges = np.histogram_bin_edges(np.concatenate([paired.ravel(), unpaired.ravel()]), bins=bins)
    return (edges, np.histogram(paired, edges, density=True)[0],
            np.histogram(unpaired, edges, density=True)[0])


def class_distance_matrix(loc_a, scale_a, labels_a, loc_b, scale_b, labels_b,
                          num_classes: int = 10, chunk: int = 1024) -> torch.Tensor:
    """``[C, C]`` mean ``W_2`` between the posteriors of class ``r`` of ``a`` and class ``c`` of ``b``.

    Entry ``(r, c)`` averages ``W_2(q(z | a_i), q(z | b_j))`` over every ``i`` with label ``r``
    and every ``j`` with label ``c`` (NaN where a class is absent).
    """
    loc_a, scale_a = _gaussians(loc_a, scale_a, "modality a")
    loc_b, scale_b = _gaussians(loc_b, scale_b, "modality b")
    if loc_a.dim() != 2 or loc_b.dim() != 2 or loc_a.shape[1] != loc_b.shape[1]:
        raise ValueError(f"expected posteriors [N, D] with one D, got {tuple(loc_a.shape)} and "
                         f"{tuple(loc_b.shape)}")
    device = loc_a.device
    one_hot = []
    for labels, loc in ((labels_a, loc_a), (labels_b, loc_b)):
        labels = torch.as_tensor(labels, device=device)
        if labels.shape != loc.shape[:1] or labels.numel() == 0:
            raise ValueError(f"labels must have shape [{loc.shape[0]}] (non-empty), got {tuple(labels.shape)}")
        if labels.min() < 0 or labels.max() >= num_classes:
            raise ValueError(f"labels must lie in [0, {num_classes})")
        one_hot.append(torch.nn.functional.one_hot(labels.long(), num_classes).to(torch.float64))
    stack_a = torch.cat([loc_a, scale_a], -1)
    stack_b = torch.cat([loc_b, scale_b], -1).to(device)
    sums = torch.zeros(num_classes, num_classes, dtype=torch.float64, device=device)
    for i in range(0, len(stack_a), chunk):
        dist = torch.cdist(stack_a[i : i + chunk], stack_b)  # W_2 of every pair in the chunk
        sums += one_hot[0][i : i + chunk].T @ dist @ one_hot[1]
    counts = one_hot[0].sum(0)[:, None] * one_hot[1].sum(0)[None, :]
    return torch.where(counts > 0, sums / counts.clamp_min(1), torch.full_like(sums, float("nan")))


def expert_posteriors(guide, batches):
    """``(loc, scale)`` ``[N, M, D]`` of every modality's own posterior ``q(z | x_m)`` over
    ``batches`` (a guide with ``experts``, such as every mixture or product guide and MEME's)."""
    locs, scales = [], []
    for batch in batches:
        with torch.no_grad():
            loc, scale, _ = guide.experts(batch)
        locs.append(loc)
        scales.append(scale)
    return torch.cat(locs), torch.cat(scales)
