"""Stratified draws from the components of a multimodal posterior.

Given a posterior that gives q(z | x_S) for any subset S (a
:class:`~pyro_mm.protocols.StratifiablePosterior`, e.g. :class:`~pyro_mm.distributions.ProductOfExperts`
or :class:`~pyro_mm.distributions.SubsetMixture`), strata subsets ``S[s, b]`` and weights
``w[s, b]``, the stratified posterior has batch shape ``[S, B]`` and draws, independently,

.. math:: z_{s,b} \\sim q(z \\mid x_{S_{s,b}}) \\quad\\text{(reparameterised)}.

Its ``log_prob`` is the density of that draw (the component density log q(z | x_S)); the density
of the same point under the source posterior (the mixture density that MMVAE puts inside its
importance weight) is :meth:`StratifiedPosterior.source_log_prob`. Both can be rebuilt from
detached experts (``detach=True``), which the DReG estimator needs. The weights say how much each
stratum counts in a bound; strata with weight zero are padding (an unavailable subset) whose
values are finite and whose gradients are exactly zero.
"""

from __future__ import annotations

import torch
from pyro.distributions import TorchDistribution, constraints

from ..protocols import StratifiablePosterior, conforms

__all__ = ["StratifiedPosterior"]


class StratifiedPosterior(TorchDistribution):
    """Independent draws from the subset posteriors q(z | x_S) of ``source``, one per stratum.

    :param source: the posterior whose components are drawn (a
        :class:`~pyro_mm.protocols.StratifiablePosterior`: ``component_params``, ``expert_family``,
        ``observed``, ``names``, ``log_prob``).
    :param subsets: boolean ``[S, B, M]`` subset of each stratum (intersected with the observed).
    :param weights: ``[S, B]`` weight of each stratum in the bound (zero: padding).
    """

    arg_constraints = {}
    support = constraints.real_vector
    has_rsample = True

    def __init__(self, source, subsets: torch.Tensor, weights: torch.Tensor,
                 batch_shape=None, validate_args=None):
        if not conforms(source, StratifiablePosterior):
            raise TypeError(f"cannot stratify a {type(source).__name__}: it has no subset posteriors")
        if subsets.dim() != 3 or subsets.shape[1:] != source.observed.shape:
            raise ValueError(
                f"strata subsets must be [S, B, M] with [B, M] = {tuple(source.observed.shape)}, "
                f"got {tuple(subsets.shape)}"
            )
        if weights.shape != subsets.shape[:2]:
            raise ValueError(f"strata weights must be [S, B] = {tuple(subsets.shape[:2])}, got {tuple(weights.shape)}")
        self.source = source
        self.subsets = subsets & source.observed
        self.weights = weights
        self._requested = subsets  # as given: the source may have computed its components already
        self.loc, self.scale = source.component_params(subsets)
        if batch_shape is None:
            batch_shape = weights.shape
        super().__init__(torch.Size(batch_shape), source.event_shape, validate_args=validate_args)

    @property
    def num_strata(self) -> int:
        return self.weights.shape[0]

    @property
    def names(self):
        return self.source.names

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(StratifiedPosterior, _instance)
        batch_shape = torch.Size(batch_shape)
        new.source, new.subsets, new.weights, new._requested = self.source, self.subsets, self.weights, self._requested
        new.loc = self.loc.expand(batch_shape + self.event_shape)
        new.scale = self.scale.expand(batch_shape + self.event_shape)
        TorchDistribution.__init__(new, batch_shape, self.event_shape, validate_args=False)
        return new

    @property
    def mean(self):
        return self.loc

    @property
    def variance(self):
        return self.scale.pow(2)

    def rsample(self, sample_shape=torch.Size()):
        shape = self._extended_shape(sample_shape)
        return self.source.expert_family.rsample(self.loc, self.scale, shape)

    def log_prob(self, value, detach: bool = False):
        """Component density log q(z_{s,b} | x_{S_{s,b}})."""
        loc, scale = self.loc, self.scale
        if detach:
            loc, scale = self.source.component_params(self._requested, detach=True)
        return self.source.expert_family.log_prob(value, loc, scale)

    def source_log_prob(self, value, detach: bool = False):
        """Density of each draw under the source posterior (the mixture density for a
        :class:`~pyro_mm.distributions.SubsetMixture`)."""
        return self.source.log_prob(value, detach=detach)

    def entropy(self):
        return self.source.expert_family.entropy(self.scale)
