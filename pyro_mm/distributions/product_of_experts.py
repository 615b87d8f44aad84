"""Mask-aware product of Gaussian experts, computed in log-precision space.

For experts N(μ_m, σ_m²) (diagonal) and a set of included experts S, the product with an optional
standard-normal prior expert is the Gaussian with

.. math::

    T_S = [\\text{prior}] + \\sum_{m \\in S} \\sigma_m^{-2}, \\qquad
    \\mu_S = T_S^{-1} \\sum_{m \\in S} \\sigma_m^{-2} \\mu_m .

We work with log-precisions: :math:`\\log T_S = \\mathrm{logsumexp}_m(-2\\log\\sigma_m)` and the
weights :math:`\\sigma_m^{-2}/T_S = \\exp(-2\\log\\sigma_m - \\log T_S)`, which neither overflow
nor underflow for extreme scales. An excluded expert contributes exactly nothing: its
log-precision is replaced (``torch.where``) by the most negative finite number, so its value and
its gradient are exactly zero. A product with no expert at all (possible only for padding strata)
is returned as the standard normal, finite, so that zero weights keep gradients exact.

Reference: Wu & Goodman, *Multimodal Generative Models for Scalable Weakly-Supervised Learning*,
NeurIPS 2018.
"""

from __future__ import annotations

from typing import Optional, Sequence, Tuple, Union

import torch
from pyro.distributions import TorchDistribution, constraints

from .families import NORMAL, latent_family
from .gaussian import normal_entropy, normal_log_prob
from .stratified import StratifiedPosterior

__all__ = ["product_of_experts", "single_expert", "ExpertPosterior", "ProductOfExperts"]


def product_of_experts(
    loc: torch.Tensor,
    scale: torch.Tensor,
    include: torch.Tensor,
    prior_expert: Union[bool, torch.Tensor] = True,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Combine Gaussian experts.

    :param loc: expert means ``[..., M, D]``.
    :param scale: expert standard deviations ``[..., M, D]``.
    :param include: boolean ``[..., M]`` (broadcastable): which experts enter the product.
    :param prior_expert: whether the N(0, I) expert enters (a bool or a boolean tensor
        broadcastable to the batch shape ``[...]``).
    :returns: ``(loc, scale)`` of the product, ``[..., D]``.
    """
    floor = torch.finfo(loc.dtype).min
    zero = torch.zeros((), dtype=loc.dtype, device=loc.device)
    lowest = torch.full((), floor, dtype=loc.dtype, device=loc.device)
    log_prec = torch.where(include[..., None], -2.0 * scale.log(), lowest)  # [..., M, D]
    prior = torch.as_tensor(prior_expert, device=loc.device)
    batch = torch.broadcast_shapes(log_prec.shape[:-2], prior.shape)
    log_prec = log_prec.expand(batch + log_prec.shape[-2:])
    prior = prior.expand(batch)[..., None, None]  # [..., 1, 1]
    prior_logit = torch.where(prior, zero, lowest).expand(batch + (1, log_prec.shape[-1]))
    log_total = torch.cat([log_prec, prior_logit], dim=-2).logsumexp(-2)  # log T_S, [..., D]
    mean = ((log_prec - log_total[..., None, :]).exp() * loc).sum(-2)
    empty = ~(include.any(-1) | prior[..., 0, 0])[..., None]  # no expert at all: padding
    log_total = torch.where(empty, zero, log_total)
    mean = torch.where(empty, zero, mean)
    return mean, (-0.5 * log_total).exp()


def single_expert(loc: torch.Tensor, scale: torch.Tensor, include: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """The one expert of ``loc, scale [..., M, D]`` that ``include [..., M]`` selects (at most one
    per row: families without a closed-form product, e.g. Laplace); a row selecting none gives
    the standard distribution (0, 1), finite, for padding strata."""
    pick = include[..., None].to(loc.dtype)
    chosen = include.any(-1, keepdim=True).to(loc.dtype)  # [..., 1]
    return (pick * loc).sum(-2), (pick * scale).sum(-2) + (1.0 - chosen)


class ExpertPosterior(TorchDistribution):
    """Base class of posteriors built from per-modality experts ``[B, M, D]`` of one
    :class:`~pyro_mm.distributions.families.LatentFamily` (``expert_family``, Normal by default) and an observation
    mask ``[B, M]``: each can give q(z | x_S) for any subset S (:meth:`component_params`), which is
    what the stratified ELBOs draw from (:meth:`stratify`) — a
    :class:`~pyro_mm.protocols.StratifiablePosterior`."""

    arg_constraints = {}
    support = constraints.real_vector
    has_rsample = True

    def __init__(self, expert_loc, expert_scale, observed, names: Optional[Sequence[str]] = None,
                 batch_shape=None, validate_args=None, expert_family="normal"):
        if expert_loc.shape != expert_scale.shape or expert_loc.dim() < 2:
            raise ValueError(
                f"expert loc and scale must share a shape [..., M, D], got {tuple(expert_loc.shape)}"
                f" and {tuple(expert_scale.shape)}"
            )
        if observed.shape != expert_loc.shape[:-1]:
            raise ValueError(
                f"observed mask {tuple(observed.shape)} does not match experts {tuple(expert_loc.shape[:-1])}"
            )
        self.expert_loc = expert_loc
        self.expert_scale = expert_scale
        self.observed = observed
        self.names = tuple(names) if names is not None else tuple(str(i) for i in range(observed.shape[-1]))
        self.expert_family = latent_family(expert_family)
        if batch_shape is None:
            batch_shape = observed.shape[:-1]
        super().__init__(torch.Size(batch_shape), expert_loc.shape[-1:], validate_args=validate_args)

    def _experts(self, detach: bool):
        if detach:
            return self.expert_loc.detach(), self.expert_scale.detach()
        return self.expert_loc, self.expert_scale

    def subset_prior_expert(self, subsets: torch.Tensor):
        """Whether the prior expert enters the product for each subset (overridden)."""
        raise NotImplementedError

    def component_params(self, subsets: torch.Tensor, detach: bool = False):
        """``(loc, scale) [..., B, D]`` of q(z | x_S) for boolean subsets ``[..., B, M]``.

        Only observed members enter; ``detach=True`` rebuilds from detached experts (DReG). A
        Normal family multiplies the experts (:func:`product_of_experts`); any other family takes
        the subset's single expert (:func:`single_expert`)."""
        loc, scale = self._experts(detach)
        if self.expert_family is NORMAL:
            return product_of_experts(loc, scale, subsets & self.observed, self.subset_prior_expert(subsets))
        return single_expert(loc, scale, subsets & self.observed)

    def stratify(self, subsets: torch.Tensor, weights: torch.Tensor):
        """Independent draws from q(z | x_S) for the strata ``subsets [S, B, M]`` with
        ``weights [S, B]`` (:class:`~pyro_mm.distributions.StratifiedPosterior`)."""
        return StratifiedPosterior(self, subsets, weights)


class ProductOfExperts(ExpertPosterior):
    """q(z | X) ∝ [p(z)] Π_{m observed} q_m(z | x_m): the MVAE posterior, as a Pyro distribution.

    :param expert_loc: ``[B, M, D]`` expert means.
    :param expert_scale: ``[B, M, D]`` expert standard deviations.
    :param observed: boolean ``[B, M]`` observation mask; missing experts contribute nothing.
    :param bool prior_expert: include the N(0, I) prior expert (MVAE does).
    :param names: modality names of the M columns.

    :meth:`component_params` restricts the product to given subsets of modalities (used by
    :class:`~pyro_mm.infer.TraceMVAE_ELBO` for its subset terms).
    """

    def __init__(self, expert_loc, expert_scale, observed, prior_expert: bool = True, names=None,
                 validate_args=None):
        self.prior_expert = bool(prior_expert)
        super().__init__(expert_loc, expert_scale, observed, names, validate_args=validate_args)
        self.loc, self.scale = self.component_params(observed)

    def subset_prior_expert(self, subsets):
        return self.prior_expert

    def expand(self, batch_shape, _instance=None):
        batch_shape = torch.Size(batch_shape)
        new = self._get_checked_instance(ProductOfExperts, _instance)
        new.prior_expert = self.prior_expert
        ExpertPosterior.__init__(new, self.expert_loc, self.expert_scale, self.observed,
                                            self.names, batch_shape, validate_args=False)
        new.loc = self.loc.expand(batch_shape + self.event_shape)
        new.scale = self.scale.expand(batch_shape + self.event_shape)
        return new

    @property
    def mean(self):
        return self.loc

    @property
    def variance(self):
        return self.scale.pow(2)

    def rsample(self, sample_shape=torch.Size()):
        shape = self._extended_shape(sample_shape)
        eps = torch.randn(shape, dtype=self.loc.dtype, device=self.loc.device)
        return self.loc + self.scale * eps

    def log_prob(self, value, detach: bool = False):
        loc, scale = (self.loc, self.scale)
        if detach:
            loc, scale = self.component_params(self.observed, detach=True)
        return normal_log_prob(value, loc, scale)

    def entropy(self):
        return normal_entropy(self.scale)
