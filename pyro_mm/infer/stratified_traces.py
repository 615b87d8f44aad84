"""The strata runner: a model and a guide run under particle and strata plates.

For a guide whose shared latent site is a :class:`~pyro_mm.protocols.StratifiablePosterior` (a
product or a mixture of experts), :func:`run_strata` stratifies that site
(:class:`~pyro_mm.infer.StratifyMessenger`) into the strata s with weights ω_{s,b} of the
objective's :class:`~pyro_mm.infer.StrataPlan` — every latent site that follows it
(modality-private latents) stratified alike — and draws K particles from every stratum, all as
tensor dimensions::

    particles (dim -3)  ×  strata (dim -2)  ×  data (dim -1)

(with K = 1 there is no particle plate: the sites keep no particle dimension). The model is then
replayed against the guide's draws under the same plates, decoding each modality only where the
plan says the objective uses its likelihood (:class:`~pyro_mm.infer.SelectiveDecodeMessenger`),
and every model sample site's scaled, masked log-density is recorded. Without a plan (a guide
with no stratifiable site, or an objective that leaves it as it is) there is no strata plate: one
stratum of weight one.

.. warning:: The bounds are per datapoint: every sample site of the model and the guide must lie
   in a plate over the data at ``dim=-1`` (the models and guides of pyro_mm do), and no other
   plate may be used; dims -2 and -3 belong to the strata and the particles.
"""

from __future__ import annotations

from contextlib import ExitStack, nullcontext
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence

import pyro
from pyro import poutine
from pyro.distributions.util import scale_and_mask
from pyro.infer.util import is_validation_enabled
from pyro.poutine.trace_messenger import TraceMessenger
from pyro.poutine.trace_struct import Trace
from pyro.poutine.util import prune_subsample_sites
from pyro.util import check_model_guide_match, check_site_shape

from ..distributions import StratifiedPosterior
from .selective_decode_messenger import SelectiveDecodeMessenger
from .strata_plan import StrataPlan
from .stratify_messenger import Planner, StratifyMessenger

__all__ = ["StratifiedTraces", "run_strata", "PARTICLE_DIM", "STRATA_DIM", "DATA_DIM"]

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
    :ivar plan: the plan the shared site was stratified by; ``None`` exactly when it was not
        (no shared site, or the objective left it as it is): then :attr:`stratified` is false,
        :attr:`num_strata` 0 and :attr:`posterior` ``None``.
    :ivar num_particles: K.
    :ivar followers: guide sites stratified with the shared one (modality-private latents).
    """

    model: Callable
    guide: Callable
    model_trace: Trace
    guide_trace: Trace
    site: Optional[str]
    plan: Optional[StrataPlan]
    num_particles: int
    followers: List[str] = field(default_factory=list)

    @property
    def stratified(self) -> bool:
        """Whether the shared site was stratified (there is a plan)."""
        return self.plan is not None

    @property
    def num_strata(self) -> int:
        """S (0: not stratified)."""
        return self.plan.num_strata if self.plan is not None else 0

    @property
    def posterior(self) -> Optional[StratifiedPosterior]:
        """The stratified shared posterior (``None`` when not :attr:`stratified`)."""
        return self.guide_trace.nodes[self.site]["fn"] if self.plan is not None else None


def _particles(num_particles: int):
    """The particle plate; with K = 1 none: every site keeps a size-one particle dimension
    implicitly (log-densities broadcast), and no site is expanded to it, forward or backward."""
    return pyro.plate("particles", num_particles, dim=PARTICLE_DIM) if num_particles > 1 else nullcontext()


def _decoding(plan: Optional[StrataPlan], num_particles: int):
    """``(decoded, rows, zero_gradient)`` of the plan for the model's decoding; with K = 1 the
    cells are over the strata alone (``z [S, B, D]``)."""
    if plan is None:
        return None, None, None
    decoded, rows = plan.decoded, plan.rows
    no_grad = plan.zero_gradient if decoded else None
    if decoded and num_particles == 1:
        decoded = {name: cells[0] for name, cells in decoded.items()}
        no_grad = {name: cells[0] for name, cells in (no_grad or {}).items()}
    return decoded, rows, no_grad


def run_strata(model, guide, args: Sequence, kwargs: Dict, planner: Planner, num_particles: int,
                      max_plate_nesting: int, owner: str) -> StratifiedTraces:
    """Run ``guide`` under the particle plate and the stratifier (asking ``planner`` for the plan of
    its shared posterior), then ``model`` replayed against it under the particle and strata
    plates, decoding selectively, and score every model sample site. ``owner`` names the
    objective in errors."""
    stratifier = StratifyMessenger(planner, dim=STRATA_DIM)

    def stratified_guide(*args, **kwargs):
        with _particles(num_particles), stratifier:
            return guide(*args, **kwargs)

    guide_trace = _SampleTraceMessenger()(stratified_guide).get_trace(*args, **kwargs)
    plan = stratifier.plan
    decoded, rows, no_grad = _decoding(plan, num_particles)

    def stratified_model(*args, **kwargs):
        # the plates sit inside the replay, so that they broadcast the model's sites
        with ExitStack() as stack:
            stack.enter_context(_particles(num_particles))
            if plan is not None:
                stack.enter_context(pyro.plate("strata", plan.num_strata, dim=STRATA_DIM))
            if decoded or rows:
                stack.enter_context(SelectiveDecodeMessenger(decoded or {}, rows, no_grad))
            return model(*args, **kwargs)

    replayed = poutine.replay(stratified_model, trace=guide_trace)
    model_trace = _SampleTraceMessenger()(replayed).get_trace(*args, **kwargs)
    guide_trace = prune_subsample_sites(guide_trace)
    model_trace = prune_subsample_sites(model_trace)
    validate = is_validation_enabled()
    if validate:
        check_model_guide_match(model_trace, guide_trace, max_plate_nesting)
    for trace in (model_trace, guide_trace):
        for name, site in trace.nodes.items():
            if site["type"] == "sample":
                if trace is model_trace:  # the scaled, masked log-density (no sums, no host syncs)
                    log_p = site["fn"].log_prob(site["value"], *site["args"], **site["kwargs"])
                    site["log_prob"] = scale_and_mask(log_p, site["scale"], site["mask"])
                _check_site(owner, trace is guide_trace, name, site, validate, max_plate_nesting)
    return StratifiedTraces(model, guide, model_trace, guide_trace, stratifier.site, plan, num_particles,
                            list(stratifier.followers))


def _check_site(owner: str, in_guide: bool, name: str, site, validate: bool, max_plate_nesting: int) -> None:
    where = "guide" if in_guide else "model"
    if not any(f.dim == DATA_DIM for f in site["cond_indep_stack"]):
        raise ValueError(
            f"{where} site {name!r} is not inside a plate over the data at dim=-1; "
            f"{owner} computes per-datapoint bounds"
        )
    if validate and "log_prob" in site:
        check_site_shape(site, max_plate_nesting)
