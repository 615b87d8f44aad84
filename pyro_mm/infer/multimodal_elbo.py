"""The base class of pyro_mm's objectives: Pyro's ELBO interface around the strata runner.

Every objective of pyro_mm is a :class:`MultimodalELBO`, a :class:`pyro.infer.ELBO` that
:class:`pyro.infer.SVI` (and ``elbo(model, guide)``, a :class:`torch.nn.Module`) trains like any
other. A step runs in two parts:

1. **The traces** (:meth:`MultimodalELBO.traces`): on the first step for a model, a guide and a
   batch layout the contract is checked (:class:`~pyro_mm.infer.ContractCheck`); then the strata
   runner (:func:`~pyro_mm.infer.stratified_traces.run_strata`) runs the guide under a
   particle plate and the model against its draws, with the guide's shared posterior (a
   :class:`~pyro_mm.protocols.StratifiablePosterior`) stratified and the model decoding as the
   objective's :meth:`~MultimodalELBO.plan` says.
2. **The bound** (:meth:`MultimodalELBO.per_datapoint`): the objective's, per datapoint, from the
   traces, as an :class:`Estimate`.

An objective subclasses :class:`MultimodalELBO` directly and implements

* :meth:`~MultimodalELBO.plan` — the one way it configures the runner: given the shared
  posterior, a :class:`~pyro_mm.infer.StrataPlan` (the strata, the cells the model decodes, those
  decoded outside autograd, the rows that observe each modality) or ``None`` to leave it
  unstratified;
* :meth:`~MultimodalELBO.per_datapoint` — the bound, and when its gradient is not the
  estimator's, a surrogate whose gradient is;
* :meth:`~MultimodalELBO.state_dict` / :meth:`~MultimodalELBO.load_state_dict` when it keeps
  training state between steps (e.g. MVAE's annealing step).

Pyro's interface (:meth:`~MultimodalELBO.loss`, :meth:`~MultimodalELBO.differentiable_loss`,
:meth:`~MultimodalELBO.loss_and_grads`) and :meth:`~MultimodalELBO.bound` are this class's.
"""

from __future__ import annotations

from typing import Dict, NamedTuple, Optional

import torch
from pyro.infer import ELBO
from pyro.util import warn_if_nan

from ..options import NUM_PARTICLES
from ..protocols import StratifiablePosterior
from .contract import ContractCheck
from .selective_decode_messenger import observed_rows
from .strata_plan import StrataPlan
from .stratified_traces import StratifiedTraces, run_strata

__all__ = ["MultimodalELBO", "Estimate"]


class Estimate(NamedTuple):
    """An objective's bound on one batch.

    :ivar value: the bound of every datapoint, ``[B]``.
    :ivar surrogate: ``None`` when the gradient of :attr:`value` is the objective's gradient
        estimator; else a tensor ``[B]`` whose gradient is (e.g. DReG's), with the value of
        :attr:`value` left to report.
    """

    value: torch.Tensor
    surrogate: Optional[torch.Tensor] = None


class MultimodalELBO(ELBO):
    """Base class of pyro_mm's objectives: the strata runner, the contract check and Pyro's ELBO
    interface around a per-datapoint bound (module docstring).

    :param int num_particles: K ≥ 1 particles per stratum, vectorised.
    """

    def __init__(self, num_particles: int = 1):
        super().__init__(num_particles=NUM_PARTICLES.validate(num_particles), max_plate_nesting=3, vectorize_particles=True)
        #: the terms of the bound at the last evaluation, name -> detached scalar tensor (a mean per
        #: sample), for loggers; set by :meth:`per_datapoint`
        self.last_terms: Dict[str, torch.Tensor] = {}
        #: the contract checks, run on the first evaluation of every (model, guide, batch layout)
        #: (:mod:`pyro_mm.infer.contract`; ``contract.enabled = False`` turns them off)
        self.contract = ContractCheck()

    # --- what an objective decides ---------------------------------------------------------------
    def plan(self, posterior: StratifiablePosterior) -> Optional[StrataPlan]:
        """The strata of the guide's shared posterior and where the model decodes
        (:class:`~pyro_mm.infer.StrataPlan`), or ``None`` to leave it unstratified (one stratum
        of weight one; the default). Called once per step, while the guide runs, before the shared
        site is drawn; random draws made here (sampled subsets) come before the site's."""
        return None

    def per_datapoint(self, traces: StratifiedTraces, surrogate: bool) -> Estimate:
        """The bound of every datapoint from the traces; when ``surrogate``, with the surrogate
        whose gradient is the objective's estimator where that is not the bound's own gradient."""
        raise NotImplementedError

    def state_dict(self) -> Dict:
        """What the objective keeps between training steps (default: nothing)."""
        return {}

    def load_state_dict(self, state: Dict) -> None:
        """Restore :meth:`state_dict`."""
        unknown = sorted(set(state) - set(self.state_dict()))
        if unknown:
            raise ValueError(f"{type(self).__name__} keeps no training state {unknown}")

    def decoded_rows(self, posterior: StratifiablePosterior) -> Optional[Dict[str, torch.Tensor]]:
        """A plan's ``rows`` (:class:`~pyro_mm.infer.StrataPlan`): modality name -> boolean ``[B]``
        (CPU) of the samples that observe it, for every modality some sample lacks (the model masks
        a missing modality's likelihood out: its decoder need not run there); ``None`` when every
        sample observes every modality or when the mask is not on the CPU (reading it back would
        stall the device every step)."""
        observed = posterior.observed
        return observed_rows(observed, posterior.names) if observed.device.type == "cpu" else None

    # --- the traces ------------------------------------------------------------------------------
    def traces(self, model, guide, *args, **kwargs) -> StratifiedTraces:
        """The traces of ``guide`` and ``model`` under the particle and strata plates, stratified
        and decoded by :meth:`plan`. On the first call for a model, guide and batch layout, the
        contract checks run first (:attr:`contract`)."""
        owner = type(self).__name__
        self.contract(owner, model, guide, args, kwargs)
        return run_strata(model, guide, args, kwargs, self.plan, self.num_particles, self.max_plate_nesting,
                                 owner)

    def _get_trace(self, model, guide, args, kwargs):
        """Pyro's hook for one particle's traces: here the model and guide traces of
        :meth:`traces` (every particle, vectorised)."""
        traces = self.traces(model, guide, *args, **kwargs)
        return traces.model_trace, traces.guide_trace

    # --- Pyro's ELBO interface -------------------------------------------------------------------
    def loss(self, model, guide, *args, **kwargs) -> float:
        """:returns: the negative bound, summed over the batch (a float)."""
        loss = -self.bound(model, guide, *args, **kwargs).sum().item()
        warn_if_nan(loss, "loss")
        return loss

    def differentiable_loss(self, model, guide, *args, **kwargs) -> torch.Tensor:
        """The negative bound, summed over the batch, as a tensor whose gradient is the
        objective's estimator."""
        estimate = self.per_datapoint(self.traces(model, guide, *args, **kwargs), surrogate=True)
        loss = -estimate.value.sum()
        if estimate.surrogate is not None:
            surrogate = -estimate.surrogate.sum()
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
            return self.per_datapoint(self.traces(model, guide, *args, **kwargs), surrogate=False).value
