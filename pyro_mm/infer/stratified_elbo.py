"""The machinery shared by pyro_mm's ELBOs: per-datapoint, stratified, importance-weighted bounds.

For a model p_θ(z, X) and a guide whose latent site is a multimodal posterior, the guide's site is
stratified (:class:`~pyro_mm.infer.stratify_messenger.StratifyMessenger`) into strata s with
weights ω_{s,b}; K particles are drawn from every stratum, all as tensor dimensions::

    particles (dim -3)  ×  strata (dim -2)  ×  data (dim -1)

(with K = 1 there is no particle plate: the sites keep no particle dimension, which costs
nothing to expand and to differentiate, and ``lw`` broadcasts to ``[1, S, B]``), and every
sample site's log-density becomes a log-weight ``lw[k, s, b]``:

.. math::

    lw_{k,s,b} = \\sum_{x\\ \\text{observed}} \\log p_\\theta(x_b \\mid z_{k,s,b})
        + \\beta \\Big[\\log p(z_{k,s,b}) - \\log q(z_{k,s,b} \\mid X_b)\\Big],

    \\mathcal{L}_b = \\sum_s \\omega_{s,b}\\ \\mathrm{LME}_k\\, lw_{k,s,b},
    \\qquad \\mathrm{LME}_k(a) = \\log \\tfrac{1}{K}\\textstyle\\sum_k e^{a_k},

with the log-mean-exp over particles taken separately for every datapoint and every stratum (the
"looser" stratified bound of MMVAE). The loss is ``-Σ_b L_b``. Which density of z goes into
``log q`` (a stratum's own component or the whole mixture), how the strata are chosen and which
modalities a stratum reconstructs are decided by the subclasses.

Site scales and masks (``poutine.scale``, ``poutine.mask``, the model's per-modality masks and
likelihood rescaling) are applied to each site's log-density before it enters ``lw``. With K = 1
the bound is linear in them; with K > 1 a scale acts inside the importance weight.

Estimators: ``"iwae"`` differentiates the bound itself; ``"dreg"`` (doubly reparameterised
gradients, Tucker et al. 2019) rebuilds every guide density in ``lw`` from detached parameters and
uses the normalised weights w̃_k = softmax_k(lw) (no gradient): the model's parameters get
Σ_k w̃_k ∇lw_k and the guide's, through the reparameterised z, Σ_k w̃_k² ∂lw_k/∂z ∂z/∂φ.

.. warning:: The bounds are per datapoint: every sample site of the model and the guide must lie
   in a plate over the data at ``dim=-1`` (the models and guides of pyro_mm do), and no other
   plate may be used; dims -2 and -3 belong to the strata and the particles.

References:
[1] Burda, Grosse, Salakhutdinov, *Importance Weighted Autoencoders*, ICLR 2016.
[2] Shi, Siddharth, Paige, Torr, *Variational Mixture-of-Experts Autoencoders for Multi-Modal Deep
    Generative Models*, NeurIPS 2019 (stratified "looser" bound).
[3] Tucker, Lawson, Gu, Maddison, *Doubly Reparameterized Gradient Estimators for Monte Carlo
    Objectives*, ICLR 2019.
"""

from __future__ import annotations

import math
from contextlib import ExitStack, nullcontext
from typing import Dict, Optional, Tuple

import pyro
import pyro.distributions as dist
import torch
from pyro import poutine
from pyro.distributions.util import scale_and_mask
from pyro.infer import Trace_ELBO
from pyro.infer.util import is_validation_enabled
from pyro.poutine.trace_messenger import TraceMessenger
from pyro.poutine.util import prune_subsample_sites
from pyro.util import check_model_guide_match, check_site_shape, warn_if_nan

from ..distributions import ExpertPosterior, StratifiedPosterior
from .selective_decode_messenger import SelectiveDecodeMessenger, observed_rows
from .stratify_messenger import StratifyMessenger

__all__ = ["StratifiedELBO"]

PARTICLE_DIM, STRATA_DIM, DATA_DIM = -3, -2, -1
ESTIMATORS = ("iwae", "dreg")


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


class _SampleTraceMessenger(TraceMessenger):
    """A trace of the sample sites only: the bound reads nothing else. Parameter statements
    (``pyro.module`` issues one per parameter, every step) still reach the handlers outside, e.g.
    the parameter capture of :class:`pyro.infer.SVI`; they are just not recorded here."""

    def _pyro_post_param(self, msg) -> None:
        pass


class StratifiedELBO(Trace_ELBO):
    """Base class of the stratified, per-datapoint importance-weighted ELBOs.

    :param int num_particles: K ≥ 1 particles per stratum, vectorised.
    :param str estimator: ``"iwae"`` or ``"dreg"``.
    """

    #: modalities reconstructed by a stratum: all observed (False) or only its subset (True)
    reconstruct_subset_only = False

    def __init__(self, num_particles: int = 1, estimator: str = "iwae"):
        if isinstance(num_particles, bool) or not isinstance(num_particles, int) or num_particles < 1:
            raise ValueError(f"num_particles must be an integer >= 1, got {num_particles!r}")
        if estimator not in ESTIMATORS:
            raise ValueError(f"estimator must be one of {ESTIMATORS}, got {estimator!r}")
        super().__init__(num_particles=num_particles, max_plate_nesting=3, vectorize_particles=True)
        self.estimator = estimator

    # --- what subclasses decide ---------------------------------------------------------------
    def strata(self, posterior: ExpertPosterior) -> Optional[Tuple[torch.Tensor, torch.Tensor]]:
        """``(subsets [S, B, M], weights [S, B])`` for the guide's posterior, or ``None`` to
        leave it unstratified (one stratum of weight one)."""
        return None

    def decoded_cells(self, posterior: StratifiedPosterior) -> Optional[Dict[str, torch.Tensor]]:
        """Modality name -> boolean ``[K, S]`` (CPU): the (particle, stratum) cells whose
        likelihood the bound uses, for the model to decode only there
        (:class:`SelectiveDecodeMessenger`); ``None``: every cell uses every modality."""
        return None

    def zero_gradient_cells(self, posterior: StratifiedPosterior,
                            cells: Dict[str, torch.Tensor]) -> Optional[Dict[str, torch.Tensor]]:
        """Modality name -> boolean ``[K, S, B]`` (CPU), a subset of its per-sample decoded
        ``cells`` (:meth:`decoded_cells`): the entries whose likelihood enters the bound with a net
        gradient of exactly zero, for the model to decode outside autograd; ``None``: none."""
        return None

    def decoded_rows(self, posterior: StratifiedPosterior) -> Optional[Dict[str, torch.Tensor]]:
        """Modality name -> boolean ``[B]`` (CPU) of the samples that observe it, for every
        modality some sample lacks (the model masks a missing modality's likelihood out: its
        decoder need not run there); ``None`` when every sample observes every modality. Reads the
        mask back to the host once per step."""
        return observed_rows(posterior.source.observed, posterior.names)

    def guide_log_density(self, fn: StratifiedPosterior, z: torch.Tensor, detach: bool) -> torch.Tensor:
        """log q(z) of the stratified site that enters the weight (default: its component)."""
        return fn.log_prob(z, detach=detach)

    @property
    def beta(self) -> float:
        """Weight of the latent terms log p(z) − log q(z) (KL annealing)."""
        return 1.0

    # --- traces -------------------------------------------------------------------------------
    def _particles(self):
        """The particle plate; with K = 1 none: every site keeps a size-one particle dimension
        implicitly (``lw`` broadcasts), and no site is expanded to it, forward or backward."""
        K = self.num_particles
        return pyro.plate("particles", K, dim=PARTICLE_DIM) if K > 1 else nullcontext()

    def _run_traces(self, model, guide, args, kwargs):
        stratifier = StratifyMessenger(self.strata, dim=STRATA_DIM)

        def stratified_guide(*args, **kwargs):
            with self._particles(), stratifier:
                return guide(*args, **kwargs)

        guide_trace = _SampleTraceMessenger()(stratified_guide).get_trace(*args, **kwargs)
        decoded, rows, no_grad = None, None, None
        if stratifier.num_strata:
            posterior = guide_trace.nodes[stratifier.site]["fn"]
            decoded, rows = self.decoded_cells(posterior), self.decoded_rows(posterior)
            no_grad = self.zero_gradient_cells(posterior, decoded) if decoded else None
        if decoded and self.num_particles == 1:  # z [S, B, D]: cells over the strata alone
            decoded = {name: cells[0] for name, cells in decoded.items()}
            no_grad = {name: cells[0] for name, cells in (no_grad or {}).items()}

        def stratified_model(*args, **kwargs):
            # the plates sit inside the replay, so that they broadcast the model's sites
            with ExitStack() as stack:
                stack.enter_context(self._particles())
                if stratifier.num_strata:
                    stack.enter_context(pyro.plate("strata", stratifier.num_strata, dim=STRATA_DIM))
                if decoded or rows:
                    stack.enter_context(SelectiveDecodeMessenger(decoded or {}, rows, no_grad))
                return model(*args, **kwargs)

        model_trace = _SampleTraceMessenger()(poutine.replay(stratified_model, trace=guide_trace)).get_trace(*args, **kwargs)
        guide_trace = prune_subsample_sites(guide_trace)
        model_trace = prune_subsample_sites(model_trace)
        validate = is_validation_enabled()
        if validate:
            check_model_guide_match(model_trace, guide_trace, self.max_plate_nesting)
        for trace in (model_trace, guide_trace):
            for name, site in trace.nodes.items():
                if site["type"] == "sample":
                    if trace is model_trace:  # the scaled, masked log-density (no sums, no host syncs)
                        log_p = site["fn"].log_prob(site["value"], *site["args"], **site["kwargs"])
                        site["log_prob"] = scale_and_mask(log_p, site["scale"], site["mask"])
                    self._check_site(trace is guide_trace, name, site, validate)
        return model_trace, guide_trace, stratifier

    def _check_site(self, in_guide: bool, name: str, site, validate: bool) -> None:
        where = "guide" if in_guide else "model"
        if not any(f.dim == DATA_DIM for f in site["cond_indep_stack"]):
            raise ValueError(
                f"{where} site {name!r} is not inside a plate over the data at dim=-1; "
                f"{type(self).__name__} computes per-datapoint bounds"
            )
        if validate and "log_prob" in site:
            check_site_shape(site, self.max_plate_nesting)

    # --- the bound ----------------------------------------------------------------------------
    def _log_weights(self, model_trace, guide_trace, stratifier):
        """``lw [K, S, B]``, the strata weights ``[S, B]`` and the reparameterised guide values."""
        strat = guide_trace.nodes[stratifier.site]["fn"] if stratifier.num_strata else None
        detach = self.estimator == "dreg"
        recon = None
        if self.reconstruct_subset_only and strat is not None:
            recon = {n: strat.subsets[..., i].to(strat.loc.dtype) for i, n in enumerate(strat.names)}
        observed_terms, latent_terms = 0.0, 0.0
        for name, site in model_trace.nodes.items():
            if site["type"] != "sample":
                continue
            if site["is_observed"]:
                term = site["log_prob"]
                if recon is not None and name in recon:
                    term = term * recon[name]
                observed_terms = observed_terms + term
            else:
                latent_terms = latent_terms + site["log_prob"]
        values = []
        for name, site in guide_trace.nodes.items():
            if site["type"] != "sample" or site["is_observed"]:
                continue
            fn, z = site["fn"], site["value"]
            if strat is not None and name == stratifier.site:
                log_q = self.guide_log_density(fn, z, detach)
            elif isinstance(fn, ExpertPosterior):
                log_q = fn.log_prob(z, detach=detach)
            else:
                log_q = (_detached(fn) if detach else fn).log_prob(z)
            latent_terms = latent_terms - scale_and_mask(log_q, site["scale"], site["mask"])
            if fn.has_rsample:
                values.append((name, z))
        lw = observed_terms + self.beta * latent_terms
        K, B = self.num_particles, lw.shape[-1]
        S = stratifier.num_strata or 1
        lw = lw.expand(K, S, B)
        weights = strat.weights if strat is not None else lw.new_ones(1, B)
        return lw, weights, values

    def _bound(self, model, guide, args, kwargs, surrogate: bool):
        """Per-datapoint bound ``[B]`` and, if asked, the surrogate whose gradient is the
        estimator's ``[B]``."""
        model_trace, guide_trace, stratifier = self._run_traces(model, guide, args, kwargs)
        lw, weights, values = self._log_weights(model_trace, guide_trace, stratifier)
        used = weights > 0
        zero = lw.new_zeros(())
        lme = lw.logsumexp(0) - math.log(self.num_particles)  # [S, B]
        bound = torch.where(used, weights * lme, zero).sum(0)
        if not surrogate or self.estimator == "iwae":
            return bound, bound
        with torch.no_grad():
            w_tilde = lw.softmax(0)  # [K, S, B]
        for name, z in values:
            if z.requires_grad and self.num_particles > 1:  # K = 1: w̃ ≡ 1, the hook is the identity
                if z.shape[:-1] != w_tilde.shape and stratifier.num_strata > 1:
                    raise ValueError(
                        f"estimator='dreg' with strata supports one latent site; {name!r} is another"
                    )
                z.register_hook(lambda g, w=w_tilde: g * w.reshape(w.shape + (1,) * (g.dim() - w.dim())))
        surrogate_bound = torch.where(used, weights * (w_tilde * lw).sum(0), zero).sum(0)
        return bound, surrogate_bound

    # --- Pyro's ELBO interface ----------------------------------------------------------------
    def loss(self, model, guide, *args, **kwargs) -> float:
        """:returns: the negative bound, summed over the batch (a float)."""
        with torch.no_grad():
            bound, _ = self._bound(model, guide, args, kwargs, surrogate=False)
            loss = -bound.sum().item()
        warn_if_nan(loss, "loss")
        return loss

    def differentiable_loss(self, model, guide, *args, **kwargs) -> torch.Tensor:
        """The negative bound as a tensor whose gradient is the chosen estimator's."""
        bound, surrogate = self._bound(model, guide, args, kwargs, surrogate=True)
        loss = -bound.sum()
        if surrogate is not bound:
            surrogate = -surrogate.sum()
            loss = loss.detach() + (surrogate - surrogate.detach())
        # no NaN check here: it would read the value back from the device every step; the
        # callers that read it anyway check it (loss_and_grads, MultimodalVAE.fit)
        return loss

    def loss_and_grads(self, model, guide, *args, **kwargs) -> float:
        """Computes the loss and back-propagates the estimator's gradient."""
        loss = self.differentiable_loss(model, guide, *args, **kwargs)
        if loss.requires_grad:
            loss.backward(retain_graph=self.retain_graph)
        return warn_if_nan(loss.item(), "loss")

    def bound(self, model, guide, *args, **kwargs) -> torch.Tensor:
        """The bound of every datapoint, ``[B]`` (no gradient)."""
        with torch.no_grad():
            return self._bound(model, guide, args, kwargs, surrogate=False)[0]
