"""The first half of pyro_mm's objectives: running a model and a guide under particle and strata
plates.

For a guide whose shared latent site is a multimodal posterior (a product or a mixture of
experts), :class:`StratifiedObjective` stratifies that site
(:class:`~pyro_mm.infer.stratify_messenger.StratifyMessenger`) into strata s with weights
ω_{s,b} — every latent site that follows it (modality-private latents) stratified alike — and
draws K particles from every stratum, all as tensor dimensions::

    particles (dim -3)  ×  strata (dim -2)  ×  data (dim -1)

(with K = 1 there is no particle plate: the sites keep no particle dimension). The model is then
replayed against the guide's draws under the same plates, decoding each modality only where the
objective uses its likelihood (:class:`~pyro_mm.infer.SelectiveDecodeMessenger`), and every sample
site's scaled, masked log-density is recorded. :meth:`StratifiedObjective.traces` returns both
traces as :class:`StratifiedTraces`; the second half — a bound from them — is each objective's
:meth:`StratifiedObjective.per_datapoint` (the importance-weighted bounds of
:class:`~pyro_mm.infer.StratifiedELBO`, MEME's mutual supervision in
:class:`~pyro_mm.infer.TraceMEME_ELBO`).

Subclasses choose, through public hooks called on the guide's shared posterior: the strata
(:meth:`~StratifiedObjective.strata`), the cells each modality is decoded at
(:meth:`~StratifiedObjective.decoded_cells`, :meth:`~StratifiedObjective.decoded_rows`) and those
decoded outside autograd (:meth:`~StratifiedObjective.zero_gradient_cells`). Training state that
an objective keeps between steps (e.g. MVAE's annealing step) is exposed by
:meth:`~StratifiedObjective.state_dict` and restored by
:meth:`~StratifiedObjective.load_state_dict`.

.. warning:: The bounds are per datapoint: every sample site of the model and the guide must lie
   in a plate over the data at ``dim=-1`` (the models and guides of pyro_mm do), and no other
   plate may be used; dims -2 and -3 belong to the strata and the particles.
"""

from __future__ import annotations

from contextlib import ExitStack, nullcontext
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Tuple

import pyro
import torch
from pyro import poutine
from pyro.distributions.util import scale_and_mask
from pyro.infer import Trace_ELBO
from pyro.infer.util import is_validation_enabled
from pyro.poutine.trace_messenger import TraceMessenger
from pyro.poutine.trace_struct import Trace
from pyro.poutine.util import prune_subsample_sites
from pyro.util import check_model_guide_match, check_site_shape, warn_if_nan

from ..distributions import ExpertPosterior, StratifiedPosterior
from .contract import ContractCheck
from .selective_decode_messenger import SelectiveDecodeMessenger, observed_rows
from .stratify_messenger import StratifyMessenger

__all__ = ["StratifiedObjective", "StratifiedTraces", "PARTICLE_DIM", "STRATA_DIM", "DATA_DIM"]

PARTICLE_DIM, STRATA_DIM, DATA_DIM = -3, -2, -1


class _SampleTraceMessenger(TraceMessenger):
    """A trace of the sample sites only: the bounds read nothing else. Parameter statements
    (``pyro.module`` issues one per parameter, every step) still reach the handlers outside, e.g.
    the parameter capture of :class:`pyro.infer.SVI`; they are just not recorded here."""

    def _pyro_post_param(self, msg) -> None:
        pass


@dataclass
class StratifiedTraces:
    """The model and guide traces of one evaluation, run under the particle and strata plates.

    :ivar model: the model that was run.
    :ivar guide: the guide that was run.
    :ivar model_trace: every model sample site, with ``"log_prob"`` its scaled, masked
        log-density ``[K, S, B]`` (broadcastable).
    :ivar guide_trace: every guide sample site (log-densities are the objective's to compute).
    :ivar site: the guide's shared multimodal site (``None``: the guide has none).
    :ivar num_strata: S (0: the shared site was not stratified).
    :ivar num_particles: K.
    :ivar followers: guide sites stratified with the shared one (modality-private latents).
    """

    model: Callable
    guide: Callable
    model_trace: Trace
    guide_trace: Trace
    site: Optional[str]
    num_strata: int
    num_particles: int
    followers: List[str] = field(default_factory=list)

    @property
    def posterior(self) -> Optional[StratifiedPosterior]:
        """The stratified shared posterior (``None`` when unstratified)."""
        return self.guide_trace.nodes[self.site]["fn"] if self.num_strata else None


class StratifiedObjective(Trace_ELBO):
    """Base class of pyro_mm's objectives: the traces of a step under particle and strata plates
    (this class) and a per-datapoint bound from them (:meth:`per_datapoint`, the subclass's).

    :param int num_particles: K ≥ 1 particles per stratum, vectorised.
    """

    def __init__(self, num_particles: int = 1):
        if isinstance(num_particles, bool) or not isinstance(num_particles, int) or num_particles < 1:
            raise ValueError(f"num_particles must be an integer >= 1, got {num_particles!r}")
        super().__init__(num_particles=num_particles, max_plate_nesting=3, vectorize_particles=True)
        #: the terms of the bound at the last evaluation, name -> detached scalar tensor (a mean per
        #: sample), for loggers; filled by the subclasses
        self.last_terms: Dict[str, torch.Tensor] = {}
        #: the contract checks, run on the first evaluation of every (model, guide, batch layout)
        #: (:mod:`pyro_mm.infer.contract`; ``contract.enabled = False`` turns them off)
        self.contract = ContractCheck()

    # --- what subclasses decide: the strata and where the model decodes ------------------------
    def strata(self, posterior: ExpertPosterior) -> Optional[Tuple[torch.Tensor, torch.Tensor]]:
        """``(subsets [S, B, M], weights [S, B])`` for the guide's shared posterior, or ``None`` to
        leave it unstratified (one stratum of weight one)."""
        return None

    def decoded_cells(self, posterior: StratifiedPosterior) -> Optional[Dict[str, torch.Tensor]]:
        """Modality name -> boolean ``[K, S]`` (CPU), or ``[K, S, B]`` per sample: the cells whose
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
        decoder need not run there); ``None`` when every sample observes every modality or when
        the mask is not on the CPU (reading it back would stall the device every step)."""
        observed = posterior.source.observed
        return observed_rows(observed, posterior.names) if observed.device.type == "cpu" else None

    # --- the bound: the subclass's -------------------------------------------------------------
    def per_datapoint(self, traces: StratifiedTraces, surrogate: bool) -> Tuple[torch.Tensor, torch.Tensor]:
        """The bound of every datapoint ``[B]`` from the traces and, if ``surrogate``, a tensor
        ``[B]`` whose gradient is the objective's estimator (else the bound again)."""
        raise NotImplementedError

    # --- training state ------------------------------------------------------------------------
    def state_dict(self) -> Dict:
        """What the objective keeps between training steps (default: nothing)."""
        return {}

    def load_state_dict(self, state: Dict) -> None:
        """Restore :meth:`state_dict`."""
        unknown = sorted(set(state) - set(self.state_dict()))
        if unknown:
            raise ValueError(f"{type(self).__name__} keeps no training state {unknown}")

    # --- the traces ----------------------------------------------------------------------------
    def _particles(self):
        """The particle plate; with K = 1 none: every site keeps a size-one particle dimension
        implicitly (log-densities broadcast), and no site is expanded to it, forward or backward."""
        K = self.num_particles
        return pyro.plate("particles", K, dim=PARTICLE_DIM) if K > 1 else nullcontext()

    def traces(self, model, guide, *args, **kwargs) -> StratifiedTraces:
        """Run the guide under the particle plate and the stratifier, then the model replayed
        against it under the particle and strata plates, decoding selectively. On the first call for
        a model, guide and batch layout, the contract checks run first (:attr:`contract`)."""
        self.contract(type(self).__name__, model, guide, args, kwargs)
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

        replayed = poutine.replay(stratified_model, trace=guide_trace)
        model_trace = _SampleTraceMessenger()(replayed).get_trace(*args, **kwargs)
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
        return StratifiedTraces(model, guide, model_trace, guide_trace, stratifier.site, stratifier.num_strata, self.num_particles,
                                list(stratifier.followers))

    def _check_site(self, in_guide: bool, name: str, site, validate: bool) -> None:
        where = "guide" if in_guide else "model"
        if not any(f.dim == DATA_DIM for f in site["cond_indep_stack"]):
            raise ValueError(
                f"{where} site {name!r} is not inside a plate over the data at dim=-1; "
                f"{type(self).__name__} computes per-datapoint bounds"
            )
        if validate and "log_prob" in site:
            check_site_shape(site, self.max_plate_nesting)

    # --- Pyro's ELBO interface ----------------------------------------------------------------
    def loss(self, model, guide, *args, **kwargs) -> float:
        """:returns: the negative bound, summed over the batch (a float)."""
        loss = -self.bound(model, guide, *args, **kwargs).sum().item()
        warn_if_nan(loss, "loss")
        return loss

    def differentiable_loss(self, model, guide, *args, **kwargs) -> torch.Tensor:
        """The negative bound, summed over the batch, as a tensor whose gradient is the
        objective's estimator."""
        bound, surrogate = self.per_datapoint(self.traces(model, guide, *args, **kwargs), surrogate=True)
        loss = -bound.sum()
        if surrogate is not bound:
            surrogate = -surrogate.sum()
            loss = loss.detach() + (surrogate - surrogate.detach())
        # no NaN check here: it would read the value back from the device every step; the
        # callers that read it anyway check it (loss_and_grads, the trainer)
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
            return self.per_datapoint(self.traces(model, guide, *args, **kwargs), surrogate=False)[0]
