"""What the objectives with closed-form divergences of Gaussian experts read from the traces.

JMVAE-KL, mmJSD and MVTCAE (:mod:`~pyro_mm.infer.trace_jmvae_elbo`,
:mod:`~pyro_mm.infer.trace_mmjsd_elbo`, :mod:`~pyro_mm.infer.trace_mvtcae_elbo`) share one form,

.. math::

    \\mathcal{L}_b = \\sum_s \\omega_{s,b}\\ \\mathrm{mean}_k\\Big[\\sum_{n\\ \\text{observed}}
        s_n \\log p_\\theta(x_{n,b} \\mid z_{k,s,b})\\Big] - D_b,

a reconstruction estimated from the guide's draws (particles k × strata s × data b, the strata
runner's, :class:`~pyro_mm.infer.StratifiedTraces`) minus divergences D_b between the Gaussian
experts of the guide's shared posterior, in closed form (JMVAE-KL puts its ELBO part through the
importance-weighted bound instead). This module holds what they read: the stratified posterior and
its experts (:class:`GaussianExperts`), the observed sites' scaled, masked log-densities, the
latent site's scale and mask for a closed-form term, and the one-stratum plan of the posterior of
every observed modality.
"""

from __future__ import annotations

from typing import Callable, Dict, Optional, Protocol, runtime_checkable

import torch
from pyro.distributions.util import scale_and_mask

from ..distributions import StratifiedPosterior
from ..protocols import StratifiablePosterior
from .strata_plan import StrataPlan
from .stratified_traces import StratifiedTraces

__all__ = ["GaussianExperts", "whole_posterior_plan", "stratified_posterior", "observed_log_likelihood",
           "latent_scale"]


@runtime_checkable
class GaussianExperts(StratifiablePosterior, Protocol):
    """A stratifiable posterior that exposes its per-modality experts, the arguments of the
    closed-form divergences (e.g. :class:`~pyro_mm.distributions.ProductOfExperts`,
    :class:`~pyro_mm.distributions.SubsetMixture`); they are Gaussian where
    ``expert_family.name == "normal"``.

    :ivar expert_loc: ``[B, M, D]`` the experts' means.
    :ivar expert_scale: ``[B, M, D]`` their standard deviations.
    """

    expert_loc: torch.Tensor
    expert_scale: torch.Tensor


def whole_posterior_plan(posterior: GaussianExperts,
                         rows: Callable[[StratifiablePosterior], Optional[Dict[str, torch.Tensor]]]) -> StrataPlan:
    """One stratum of weight one, the posterior of every observed modality, ``subsets [1, B, M]``,
    decoded for the samples ``rows(posterior)`` that observe each modality."""
    observed = posterior.observed
    return StrataPlan(observed[None], posterior.expert_loc.new_ones(1, observed.shape[0]), rows=rows(posterior))


def stratified_posterior(traces: StratifiedTraces, objective: str) -> StratifiedPosterior:
    """The guide's stratified shared posterior, or a ``TypeError`` naming ``objective`` when the
    guide has none (its latent site is not a posterior built from experts)."""
    if traces.posterior is None:
        raise TypeError(f"{objective} needs a guide whose latent site is a posterior built from the modalities' "
                        f"experts (pyro_mm.guides), got a {type(traces.guide).__name__}")
    return traces.posterior


def observed_log_likelihood(traces: StratifiedTraces) -> torch.Tensor:
    """Σ over the model's observed sites of their scaled, masked log-densities, ``[K, S, B]``."""
    total = 0.0
    for site in traces.model_trace.nodes.values():
        if site["type"] == "sample" and site["is_observed"]:
            total = total + site["log_prob"]
    return total.expand((traces.num_particles,) + traces.posterior.weights.shape)


def latent_scale(traces: StratifiedTraces, value: torch.Tensor) -> torch.Tensor:
    """``value [B]`` (a closed-form latent term) scaled and masked like the guide's shared site."""
    site = traces.guide_trace.nodes[traces.site]
    return scale_and_mask(value, site["scale"], site["mask"])
