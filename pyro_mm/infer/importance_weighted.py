"""The stratified, per-datapoint importance-weighted bound, from the log-weights of the traces.

From the traces of the strata runner (:class:`~pyro_mm.infer.StratifiedTraces`: particles k ×
strata s × data b), every latent site's log-densities become a log-weight

.. math::

    lw_{k,s,b} = \\sum_{x\\ \\text{observed}} \\log p_\\theta(x_b \\mid \\cdot)
        + \\beta \\sum_{\\text{latent sites } v} c^v_{s,b}\\Big[\\log p(v_{k,s,b}) - \\log q(v_{k,s,b} \\mid X_b)\\Big],

    \\mathcal{L}_b = \\sum_s \\omega_{s,b}\\ \\mathrm{LME}_k\\, lw_{k,s,b},
    \\qquad \\mathrm{LME}_k(a) = \\log \\tfrac{1}{K}\\textstyle\\sum_k e^{a_k},

with the log-mean-exp over particles taken separately for every datapoint and every stratum (the
"looser" stratified bound of MMVAE) and β the KL weight (β = 1: the bound itself). A latent site
may be the shared z (its guide density is the stratum's own component, or with
``mixture_density`` the whole mixture) or a modality-private w_m that follows the strata;
c^v = 1 except for a private site's cells drawn from its auxiliary prior (``in_bound`` false,
:class:`~pyro_mm.protocols.StratumFollower`), which only feed the reconstructions: MMVAE+'s weight
holds log p(w_m) − log q(w_m | x_m) of its own stratum alone. The loss is ``-Σ_b L_b``. A stratum
reconstructs every observed modality, or with ``reconstruct_subset_only`` (MVAE) only its subset.

Site scales and masks (``poutine.scale``, ``poutine.mask``, the model's per-modality masks and
likelihood rescaling) are applied to each site's log-density before it enters ``lw``. With K = 1
the bound is linear in them; with K > 1 a scale acts inside the importance weight.

Estimators: ``"iwae"`` differentiates the bound itself; ``"dreg"`` (doubly reparameterised
gradients, Tucker et al. 2019) rebuilds every guide density in ``lw`` from detached parameters and
uses the normalised weights w̃_k = softmax_k(lw) (no gradient): the model's parameters get
Σ_k w̃_k ∇lw_k and the guide's, through every reparameterised draw in the bound,
Σ_k w̃_k² ∂lw_k/∂v ∂v/∂φ (a draw from an auxiliary prior, whose density is not in lw, keeps the
path gradient Σ_k w̃_k ∂lw_k/∂v ∂v/∂ψ). Every guide site must be reparameterisable; one that is not
is refused (its gradient would be silently lost).

:func:`importance_weighted_bound` computes the bound for an objective; :class:`StratifiedELBO` says
which objectives are this bound (the estimators :class:`~pyro_mm.infer.TraceMVAE_ELBO`,
:class:`~pyro_mm.infer.TraceMixture_ELBO` and :class:`~pyro_mm.infer.TraceMMVAEPlus_ELBO`).

References:
[1] Burda, Grosse, Salakhutdinov, *Importance Weighted Autoencoders*, ICLR 2016.
[2] Shi, Siddharth, Paige, Torr, *Variational Mixture-of-Experts Autoencoders for Multi-Modal Deep
    Generative Models*, NeurIPS 2019 (stratified "looser" bound).
[3] Tucker, Lawson, Gu, Maddison, *Doubly Reparameterized Gradient Estimators for Monte Carlo
    Objectives*, ICLR 2019.
[4] Higgins et al., *β-VAE: Learning Basic Visual Concepts with a Constrained Variational
    Framework*, ICLR 2017.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, List, Optional, Protocol, Tuple, runtime_checkable

import pyro.distributions as dist
import torch
from pyro.distributions.util import scale_and_mask

from ..protocols import StratifiablePosterior, StratumFollower, conforms
from .multimodal_elbo import Estimate
from .stratified_traces import StratifiedTraces

__all__ = ["StratifiedELBO", "LogWeights", "log_weights", "importance_weighted_bound"]


@runtime_checkable
class StratifiedELBO(Protocol):
    """An objective whose bound is the stratified importance-weighted bound of this module:
    what tells it from the others (MEME) and what the bound reads from it.

    :ivar num_particles: K ≥ 1 particles per stratum.
    :ivar estimator: ``"iwae"`` or ``"dreg"``.
    :ivar beta: β ≥ 0, the weight of the latent terms.
    :ivar reconstruct_subset_only: whether stratum s reconstructs only its subset S_s (MVAE) or
        every observed modality.
    """

    num_particles: int
    estimator: str
    beta: float
    reconstruct_subset_only: bool

    def traces(self, model, guide, *args, **kwargs) -> StratifiedTraces: ...

    def per_datapoint(self, traces: StratifiedTraces, surrogate: bool) -> Estimate: ...


def _detached(fn):
    """The same distribution with detached parameters (for the DReG estimator)."""
    if isinstance(fn, dist.Independent):
        return dist.Independent(_detached(fn.base_dist), fn.reinterpreted_batch_ndims)
    if isinstance(fn, (dist.Normal, dist.Laplace)):
        return type(fn)(fn.loc.detach(), fn.scale.detach())
    raise NotImplementedError(
        f"estimator='dreg' cannot rebuild a {type(fn).__name__} from detached parameters; "
        "use Normal/Laplace/Independent or a pyro_mm posterior in the guide, or estimator='iwae'"
    )


@dataclass
class LogWeights:
    """The log-weights of a step and what their estimators need.

    :ivar lw: ``[K, S, B]``.
    :ivar weights: ω ``[S, B]`` of the strata (zero: padding).
    :ivar draws: ``(name, value, in_bound)`` of every reparameterised guide draw; ``in_bound``
        (boolean ``[S, B]`` or ``None``: all) marks the cells whose density is in ``lw``.
    :ivar terms: the terms of ``lw``, name -> detached scalar (a mean per sample, ω-weighted over
        the strata), for loggers: ``log_likelihood/<site>`` and ``log_p_minus_log_q``.
    """

    lw: torch.Tensor
    weights: torch.Tensor
    draws: List[Tuple[str, torch.Tensor, Optional[torch.Tensor]]]
    terms: Dict[str, torch.Tensor]


def _guide_log_density(traces: StratifiedTraces, name: str, fn, value: torch.Tensor, detach: bool,
                       mixture_density: bool) -> torch.Tensor:
    """log q of a guide draw: the shared site's component (or, ``mixture_density``, the mixture),
    a pyro_mm posterior's own density, or any other distribution's (rebuilt from detached
    parameters for DReG)."""
    if traces.stratified and name == traces.site:
        return fn.source_log_prob(value, detach=detach) if mixture_density else fn.log_prob(value, detach=detach)
    if conforms(fn, StratifiablePosterior) or conforms(fn, StratumFollower):
        return fn.log_prob(value, detach=detach)
    return (_detached(fn) if detach else fn).log_prob(value)


def log_weights(traces: StratifiedTraces, latent_weight: float, detach: bool, mixture_density: bool = False,
                reconstruct_subset_only: bool = False, owner: str = "the objective") -> LogWeights:
    """``lw [K, S, B]``, the strata weights, the reparameterised guide draws and the terms.

    :param float latent_weight: β of this step.
    :param bool detach: rebuild every guide density from detached parameters (DReG).
    :param bool mixture_density: the shared site's log q is the mixture density (MMVAE), not the
        stratum's component.
    :param bool reconstruct_subset_only: stratum s reconstructs only its subset S_s (MVAE).
    :param str owner: the objective, named in errors.
    """
    model_trace, guide_trace = traces.model_trace, traces.guide_trace
    strat = traces.posterior
    recon = None
    if reconstruct_subset_only and strat is not None:
        recon = {n: strat.subsets[..., i].to(strat.loc.dtype) for i, n in enumerate(strat.names)}
    observed_terms, latent_terms = 0.0, 0.0
    per_site = {}
    for name, site in model_trace.nodes.items():
        if site["type"] == "sample" and site["is_observed"]:
            term = site["log_prob"]
            if recon is not None and name in recon:
                term = term * recon[name]
            observed_terms = observed_terms + term
            per_site[f"log_likelihood/{name}"] = term
    draws = []
    guide_latents = {}
    for name, site in guide_trace.nodes.items():
        if site["type"] != "sample" or site["is_observed"]:
            continue
        fn, value = site["fn"], site["value"]
        if not fn.has_rsample:
            raise ValueError(
                f"guide site {name!r} draws from a {type(fn).__name__}, which cannot be reparameterised; "
                f"{owner} estimates gradients through reparameterised draws only, and this "
                "site's gradient would be lost"
            )
        log_q = _guide_log_density(traces, name, fn, value, detach, mixture_density)
        in_bound = getattr(fn, "in_bound", None)
        guide_latents[name] = (scale_and_mask(log_q, site["scale"], site["mask"]), in_bound)
        draws.append((name, value, in_bound))
    for name, site in model_trace.nodes.items():
        if site["type"] != "sample" or site["is_observed"]:
            continue
        log_q, in_bound = guide_latents.pop(name, (0.0, None))
        term = site["log_prob"] - log_q
        latent_terms = latent_terms + (term if in_bound is None else torch.where(in_bound, term, 0.0))
    for log_q, in_bound in guide_latents.values():  # guide-only sites (auxiliary variables)
        latent_terms = latent_terms - (log_q if in_bound is None else torch.where(in_bound, log_q, 0.0))
    lw = observed_terms + latent_weight * latent_terms
    K, B = traces.num_particles, lw.shape[-1]
    S = traces.num_strata or 1
    lw = lw.expand(K, S, B)
    weights = strat.weights if strat is not None else lw.new_ones(1, B)
    per_site["log_p_minus_log_q"] = latent_terms if torch.is_tensor(latent_terms) else lw.new_zeros(())
    with torch.no_grad():  # each term's mean per sample over particles and strata (ω-weighted)
        terms = {name: (weights * t.expand(K, S, B).mean(0)).sum(0).mean() for name, t in per_site.items()}
    return LogWeights(lw, weights, draws, terms)


def importance_weighted_bound(traces: StratifiedTraces, surrogate: bool, estimator: str, latent_weight: float,
                        mixture_density: bool = False, reconstruct_subset_only: bool = False,
                        owner: str = "the objective") -> Tuple[Estimate, Dict[str, torch.Tensor]]:
    """The bound ``Σ_s ω_s LME_k lw`` of every datapoint ``[B]`` and its terms (:class:`LogWeights`).
    For DReG with ``surrogate``, the estimate's surrogate is ``Σ_s ω_s Σ_k w̃ lw`` with every
    in-bound reparameterised draw's gradient scaled by w̃ (its surrogate is ``None`` otherwise:
    the bound's own gradient is the estimator). The keywords are those of :func:`log_weights`."""
    weights = log_weights(traces, latent_weight, estimator == "dreg", mixture_density, reconstruct_subset_only, owner)
    lw = weights.lw
    used = weights.weights > 0
    zero = lw.new_zeros(())
    lme = lw.logsumexp(0) - math.log(traces.num_particles)  # [S, B]
    bound = torch.where(used, weights.weights * lme, zero).sum(0)
    if not surrogate or estimator == "iwae":
        return Estimate(bound), weights.terms
    with torch.no_grad():
        w_tilde = lw.softmax(0)  # [K, S, B]
    if traces.num_particles > 1:  # K = 1: w̃ ≡ 1, the hooks are the identity
        for name, value, in_bound in weights.draws:
            if value.requires_grad:
                value.register_hook(_dreg_hook(name, value, w_tilde, in_bound))
    surrogate_bound = torch.where(used, weights.weights * (w_tilde * lw).sum(0), zero).sum(0)
    return Estimate(bound, surrogate_bound), weights.terms


def _dreg_hook(name: str, value: torch.Tensor, w_tilde: torch.Tensor, in_bound: Optional[torch.Tensor]):
    """Multiply the gradient of a draw ``[K, S, B, D]`` by w̃ where its density is in the bound
    (by one elsewhere)."""
    factor = w_tilde if in_bound is None else torch.where(in_bound, w_tilde, torch.ones((), dtype=w_tilde.dtype,
                                                                                         device=w_tilde.device))
    lead = value.shape[: value.dim() - 1]
    try:
        torch.broadcast_shapes(lead, factor.shape)
    except RuntimeError:
        raise ValueError(
            f"estimator='dreg': guide site {name!r} has batch shape {tuple(lead)}, which does not broadcast "
            f"with the weights {tuple(factor.shape)} (particles, strata, data)"
        ) from None
    factor = factor.reshape(factor.shape + (1,))
    return lambda g: g * factor
