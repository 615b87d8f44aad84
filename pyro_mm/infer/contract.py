"""The contract between pyro_mm's objectives and the model, guide and batch they are given, checked
once per model, guide and batch layout, on the first step.

Every objective of pyro_mm (a :class:`~pyro_mm.infer.MultimodalELBO`) reads the model and the
guide through their traces, and a model or guide that breaks the contract of docs/extending.md
would otherwise train silently on a wrong bound or fail deep inside Pyro or torch. Before its
first evaluation on a new (model, guide, layout), the objective runs both once more, plainly (no
particle or strata plates, no gradient, its own random numbers: the training's are untouched),
and raises a :class:`ContractError` — one line saying what to fix — when

* a sample site of the model or the guide is not inside a plate over the data at ``dim=-1``;
* a latent site of the model has no site of the same name in the guide (the model's ``u``
  against the guide's ``z``);
* a latent site's size in the guide (the encoders' output) differs from the model's prior, or a
  decoder cannot read the latent it is given (through the :func:`~pyro_mm.modality.decode` effect);
* a modality of the batch has no observed model site named after it;
* a modality's model site is not masked where the batch says the modality is missing: it would
  learn the zeros that stand in for missing entries as data.

The guides of pyro_mm check their encoders' output on every call, at no cost (a pair
``(loc, scale)`` of equal shapes ``[batch, z_dim]``, agreeing across modalities), with the same
error.

**When.** The key of a check is the model, the guide and the layout of the arguments
(:func:`layout`: a :class:`~pyro_mm.batch.MultimodalBatch`'s modality names, event shapes, dtypes
and device — not its size or mask —, any other tensor's shape, dtype and device), so it runs
again for a new model, guide, modality set, shape or device, never for another batch of the same
kind — except that a modality can be seen unmasked only in a batch that lacks it: while some
modality has been observed in every sample of the checked batches, each later batch's mask is
read (on the CPU: a few microseconds) and the first batch that lacks such a modality is checked
too. A mask on an accelerator is never read for this (a read would stall the device every step):
there only the modalities missing in the first batch are checked for masking. Once a key has no
modality pending, a step costs a dictionary look-up (``benchmarks/step_overhead.py`` measures
it). ``objective.contract.enabled = False`` turns the checks off; a copied or pickled objective
checks again.
"""

from __future__ import annotations

import inspect
from contextlib import ExitStack
from typing import Any, Dict, Optional, Sequence, Tuple

import torch
from pyro import poutine
from pyro.distributions.util import scale_and_mask
from pyro.poutine.messenger import Messenger
from pyro.poutine.trace_messenger import TraceMessenger
from pyro.poutine.util import site_is_subsample

from ..batch import MultimodalBatch
from ..protocols import ExpertGuide

__all__ = ["ContractError", "ContractCheck", "check_contract", "layout"]

#: the dimension of the data plate
DATA_DIM = -1


class ContractError(ValueError):
    """A model, a guide or a batch breaks the contract of pyro_mm's objectives (docs/extending.md);
    the message says, in one line, what to fix."""


def _shape(t) -> list:
    return list(t.shape)


# --- the key ---------------------------------------------------------------------------------------
def _layout(value) -> Any:
    if isinstance(value, MultimodalBatch):
        return (MultimodalBatch, value.names, value.mask.device,
                tuple((t.shape[1:], t.dtype) for t in value.data.values()))
    if torch.is_tensor(value):
        return (value.shape, value.dtype, value.device)
    return type(value)


def layout(args: Sequence, kwargs: Dict) -> Tuple:
    """What the checks depend on in a call's arguments (cheap: no tensor is read): a
    :class:`MultimodalBatch`'s modality names, device and event shapes and dtypes (not its size or
    mask), any other tensor's shape, dtype and device, any other value's type."""
    return tuple(_layout(a) for a in args) + tuple((k, _layout(v)) for k, v in sorted(kwargs.items()))


def _identity(fn) -> Tuple[Any, Any]:
    """A key for a model or guide and the object to keep alive for it (so that its id is not
    reused): a bound method is known by its object and function (a new method object every
    attribute access)."""
    if inspect.ismethod(fn):
        return (id(fn.__self__), fn.__func__), fn.__self__
    return id(fn), fn


class ContractCheck:
    """The contract checks of one objective and the layouts that passed them.

    Calling it checks ``model`` and ``guide`` on the call's arguments (:func:`check_contract`)
    unless this (model, guide, :func:`layout`) passed before or :attr:`enabled` is false.
    """

    #: the most (model, guide, layout) entries remembered; more empty the memory
    max_entries = 64

    def __init__(self, enabled: bool = True):
        #: run the checks (``False``: never)
        self.enabled = enabled
        self._passed: Dict[Tuple, Tuple] = {}

    def __call__(self, owner: str, model, guide, args: Sequence, kwargs: Dict) -> None:
        if not self.enabled:
            return
        (model_key, model_ref), (guide_key, guide_ref) = _identity(model), _identity(guide)
        key = (model_key, guide_key, layout(args, kwargs))
        pending = self._passed.get(key, (None, None, True))[2]
        if pending is False:
            return
        batch = _find_batch(args, kwargs)[1]
        if pending is not True:  # passed, with modalities never yet seen missing: is one missing now?
            if batch is None or batch.mask.device.type != "cpu" or not (_missing(batch) & pending):
                return
        check_contract(owner, model, guide, args, kwargs)
        if batch is None or batch.mask.device.type != "cpu":  # nothing to wait for / a mask never read again
            pending = False
        else:  # the modalities not yet seen missing, hence not yet seen masked
            pending = (set(range(len(batch.names))) if pending is True else pending) - _missing(batch)
        if len(self._passed) >= self.max_entries:
            self._passed.clear()
        self._passed[key] = (model_ref, guide_ref, pending or False)

    def clear(self) -> None:
        """Forget the layouts that passed: the next call checks again."""
        self._passed.clear()

    def __getstate__(self) -> Dict:  # a copy checks again (and pickles without the models)
        return {"enabled": self.enabled}

    def __setstate__(self, state: Dict) -> None:
        self.enabled = state["enabled"]
        self._passed = {}


def _missing(batch: MultimodalBatch) -> set:
    """The columns of the modalities that some sample of ``batch`` lacks (reads the mask)."""
    return {i for i, lacks in enumerate((~batch.mask).any(0).tolist()) if lacks}


# --- the checks ------------------------------------------------------------------------------------
def _find_batch(args: Sequence, kwargs: Dict) -> Tuple[Optional[Any], Optional[MultimodalBatch]]:
    """``(position or keyword, batch)`` of the first :class:`MultimodalBatch` among the arguments."""
    for i, a in enumerate(args):
        if isinstance(a, MultimodalBatch):
            return i, a
    for k, v in kwargs.items():
        if isinstance(v, MultimodalBatch):
            return k, v
    return None, None


def _in_data_plate(site) -> bool:
    return any(f.dim == DATA_DIM for f in site["cond_indep_stack"])


def _plate_error(owner: str, where: str, name: str) -> ContractError:
    return ContractError(
        f"{where} site {name!r} is not inside a plate over the data at dim=-1; put every sample statement of the "
        f"{where} inside `with pyro.plate(\"data\", batch.batch_size, dim=-1):` ({owner} computes per-datapoint bounds)"
    )


class _SiteChecks(Messenger):
    """Checks every sample site of the model as it is run (replayed against the guide), so that a
    violation is named before it fails further on (e.g. in a decoder's matrix product)."""

    def __init__(self, owner: str, guide, guide_sites: Dict[str, Any]):
        super().__init__()
        self.owner, self.guide, self.guide_sites = owner, guide, guide_sites

    def _pyro_decode(self, msg) -> None:
        net, z, likelihood = msg["args"]
        try:
            msg["value"] = msg["fn"](net, z, likelihood)
        except RuntimeError as error:
            reason = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise ContractError(
                f"the decoder of modality {msg['name']!r} cannot read the latent it is given, of shape {_shape(z)} "
                f"({reason}); make its input size {z.shape[-1]}, the size of the model's latent (z_dim)"
            ) from error
        msg["done"] = True

    def _pyro_post_sample(self, msg) -> None:
        if site_is_subsample(msg):
            return
        name = msg["name"]
        if not _in_data_plate(msg):
            raise _plate_error(self.owner, "model", name)
        if msg["is_observed"]:
            return
        if name not in self.guide_sites:
            latent = sorted(n for n, s in self.guide_sites.items() if not s["is_observed"])
            raise ContractError(
                f"the model's latent site {name!r} is not sampled by the guide (its latent sites: {latent}); "
                f"give the latent sites the same names in the model and the guide"
            )
        event = msg["fn"].event_shape
        value = msg["value"]
        if len(event) > value.dim() or value.shape[value.dim() - len(event):] != event:
            given = list(value.shape[value.dim() - len(event):]) if len(event) else list(value.shape[-1:])
            source = (" (the encoders' output)" if isinstance(self.guide, ExpertGuide) else "")
            raise ContractError(
                f"latent site {name!r} has size {given} in the guide{source} but event shape {list(event)} in the "
                f"model's prior; give the encoders' (loc, scale) and the prior the same latent size"
            )


def _check_modality_sites(model_trace, batch: MultimodalBatch) -> None:
    """Every modality of ``batch`` has an observed model site named after it, contributing nothing
    where the batch says the modality is missing."""
    observed_sites = [n for n, s in model_trace.nodes.items()
                      if s["type"] == "sample" and s["is_observed"] and not site_is_subsample(s)]
    for i, name in enumerate(batch.names):
        site = model_trace.nodes.get(name)
        if site is None or site["type"] != "sample":
            raise ContractError(
                f"the model has no observed site named after modality {name!r} (its observed sites: {observed_sites}); "
                f"name each modality's likelihood site after it: pyro.sample({name!r}, ..., obs=batch[{name!r}])"
            )
        if not site["is_observed"]:
            raise ContractError(
                f"the model's site {name!r} is not observed; observe the modality there: "
                f"pyro.sample({name!r}, ..., obs=batch[{name!r}])"
            )
        missing = ~batch.mask[:, i].cpu()
        if not bool(missing.any()):
            continue
        fn, value = site["fn"], site["value"]
        B = batch.batch_size
        counts = scale_and_mask(torch.ones(fn.batch_shape, device=value.device), site["scale"], site["mask"])
        log_p = fn.log_prob(value, *site["args"], **site["kwargs"])  # a masked distribution is zero there
        contributes = (counts != 0) & (log_p != 0)
        contributes = torch.broadcast_to(contributes, torch.broadcast_shapes(contributes.shape, (B,)))
        wrong = contributes.reshape(-1, B).any(0).cpu() & missing
        if bool(wrong.any()):
            row = int(wrong.nonzero()[0])
            raise ContractError(
                f"the model's site {name!r} is not masked where the batch says {name!r} is missing "
                f"(e.g. sample {row}), "
                f"so the zeros that stand in for missing entries are learned as data; sample it under "
                f"poutine.mask(mask=batch.observed({name!r}))"
            )


def _forked_rng(batch: Optional[MultimodalBatch]):
    device = batch.device if batch is not None else torch.device("cpu")
    devices = [device.index if device.index is not None else torch.cuda.current_device()] \
        if device.type == "cuda" else []
    return torch.random.fork_rng(devices=devices)


def _trace(fn, args: Sequence, kwargs: Dict):
    """The trace of ``fn(*args, **kwargs)``; an error passes unchanged (``poutine.trace(fn)``
    would append the trace's shapes to its message)."""
    with TraceMessenger() as tracer:
        fn(*args, **kwargs)
    return tracer.get_trace()


def check_contract(owner: str, model, guide, args: Sequence, kwargs: Dict) -> None:
    """Run ``guide`` and ``model`` (replayed against it) once on the call's arguments, without
    gradients, on forked random numbers and hidden from outer handlers, and raise a
    :class:`ContractError` at the first violation of the contract (module docstring). ``owner``
    names the objective."""
    batch = _find_batch(args, kwargs)[1]
    with ExitStack() as stack:
        stack.enter_context(_forked_rng(batch))
        stack.enter_context(torch.no_grad())
        stack.enter_context(poutine.block())
        guide_trace = _trace(guide, args, kwargs)
        guide_sites = {n: s for n, s in guide_trace.nodes.items() if s["type"] == "sample" and not site_is_subsample(s)}
        for name, site in guide_sites.items():
            if not _in_data_plate(site):
                raise _plate_error(owner, "guide", name)
        checked = _SiteChecks(owner, guide, guide_sites)(poutine.replay(model, trace=guide_trace))
        model_trace = _trace(checked, args, kwargs)
        if batch is not None:
            _check_modality_sites(model_trace, batch)
