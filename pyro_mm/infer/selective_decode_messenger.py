"""A Pyro effect handler that decodes and scores each modality only where the objective uses its
likelihood.

The stratified ELBOs run the model on ``z [K, S, B, D]`` (particles × strata × data), and the
model decodes every modality at every (particle, stratum) cell of every sample. An objective uses
a modality's likelihood at fewer places:

* only on the samples that observe the modality: the model masks the likelihood of a missing
  modality out (with a paired fraction f = 0.5, a quarter of each modality's samples);
* MVAE's subset terms: stratum s reconstructs only its subset S_s, so log p(x_m | z_{k,s}) is
  multiplied by zero on every stratum whose subset lacks m;
* MEME: in the direction m → others, the likelihood of m itself is needed for the main sample
  z_{0,m} only (all K + 1 when Rao–Blackwellised, and then for the paired samples only), the
  others' (the classifier q̂) for all K + 1 samples of the paired samples only: cells chosen per
  sample. Rao–Blackwellised with λ = 1, the classifier's net gradient is exactly zero, and those
  cells are decoded outside autograd (``no_grad``);
* the importance-sampled likelihoods: the joint estimate on the samples observing the modality,
  the conditional one on its target alone.

Inside :class:`SelectiveDecodeMessenger`, the model's :func:`~pyro_mm.modality.decode` effect of
modality m — when the model passes its likelihood, ``decode(m, net, z, likelihood)`` — decodes
only the used entries of ``z``'s leading dimensions ``[*cells, B]``, as a few rectangles (cells
that use the same samples decode and score them together, so the data of a sample is read
once per rectangle and broadcast over its cells, never copied per particle), and returns a
distribution over all ``[*cells, B]`` whose log-density is the likelihood's on the used entries
and zero on the others — values the objective never uses. The bound and its gradients are
unchanged; the decoder and the likelihood of m cost what the entries they need cost, in time and
in memory. A ``decode`` without a likelihood is left alone (decoded everywhere).

The contract with the model: the distribution ``decode(name, ..., likelihood)`` returns is the
likelihood of the observed site ``name`` and used nowhere else, and that site is masked out on
the samples that do not observe ``name`` (as in :class:`~pyro_mm.models.SharedLatentModel`).
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import torch
from pyro.distributions import TorchDistribution
from pyro.poutine.messenger import Messenger

from ..modality import apply_flat

__all__ = ["SelectiveDecodeMessenger", "observed_rows"]


def observed_rows(observed: torch.Tensor, names: Sequence[str]) -> Optional[Dict[str, torch.Tensor]]:
    """The ``rows`` of :class:`SelectiveDecodeMessenger` for an observation mask ``[B, M]``
    (columns ``names``): modality name -> boolean ``[B]`` (CPU) of the samples that observe it,
    for every modality some sample lacks; ``None`` when every sample observes every modality.
    Reads the mask back to the host once."""
    on_host = observed.cpu()
    rows = {name: on_host[:, i] for i, name in enumerate(names) if not bool(on_host[:, i].all())}
    return rows or None


class _Rectangle:
    """The likelihood at the decoded entries ``cells × samples`` (device indices into the
    flattened cells and the data; ``samples=None``: all of them), batch shape ``[n, b]``."""

    def __init__(self, likelihood, cells: torch.Tensor, samples: Optional[torch.Tensor]):
        self.likelihood, self.cells, self.samples = likelihood, cells, samples


class _OnEntries(TorchDistribution):
    """A likelihood decoded on some entries of ``[*cells, B]`` only, seen with that batch shape:
    its log-density is the rectangles' own on their entries and zero elsewhere."""

    arg_constraints = {}

    def __init__(self, rectangles: List[_Rectangle], batch_shape: torch.Size, event_shape: torch.Size, support,
                 zero: torch.Tensor):
        self.rectangles, self._support, self._zero = rectangles, support, zero
        super().__init__(batch_shape, event_shape, validate_args=False)

    @property
    def support(self):
        return self._support

    def expand(self, batch_shape, _instance=None):
        if torch.Size(batch_shape) != self.batch_shape:
            raise ValueError(f"cannot expand a selectively decoded likelihood {tuple(self.batch_shape)} "
                             f"to {tuple(batch_shape)}")
        return self

    def log_prob(self, value):
        """``value [B, *event]`` (the observed data; leading singleton dimensions allowed) ->
        ``[*cells, B]``."""
        data_dim = value.dim() - len(self.event_shape) - 1
        if data_dim < 0 or any(s != 1 for s in value.shape[:data_dim]):
            raise ValueError(f"a selectively decoded likelihood scores data [B, *event], got {tuple(value.shape)}")
        value = value.reshape(value.shape[data_dim:])
        full = self._zero.new_zeros((self.batch_shape[:-1].numel(), self.batch_shape[-1]))
        for r in self.rectangles:
            if r.samples is None:
                full = full.index_copy(0, r.cells, r.likelihood.log_prob(value))
            else:
                log_p = r.likelihood.log_prob(value.index_select(0, r.samples))  # [n, b]
                full = full.index_put((r.cells[:, None], r.samples[None, :]), log_p)
        return full.reshape(self.batch_shape)


class SelectiveDecodeMessenger(Messenger):
    """Decode, and score, each named modality only on some cells of ``z`` and some samples.

    :param dict cells: modality name -> boolean ``[K, S]`` (on the CPU): the (particle, stratum)
        cells whose likelihood the objective uses (``[S]`` when the ELBO runs one particle without
        a particle dimension); or ``[K, S, B]``: the cells each sample uses (``rows`` is then not
        read for it). A modality not named, or a ``z`` whose leading dimensions are not the cells'
        shape, is decoded at every cell.
    :param dict rows: modality name -> boolean ``[B]`` (on the CPU): the samples that observe it;
        a modality not named is decoded for every sample.
    :param dict no_grad: modality name -> boolean ``[K, S, B]``, a subset of its per-sample
        ``cells``: the entries whose likelihood enters the objective with a net gradient of exactly
        zero (MEME's classifier at λ = 1, Rao–Blackwellised). They are decoded outside autograd —
        no activations kept, no backward pass through the decoder — and the gradients are those
        of decoding them with autograd.
    """

    def __init__(self, cells: Dict[str, torch.Tensor], rows: Optional[Dict[str, torch.Tensor]] = None,
                 no_grad: Optional[Dict[str, torch.Tensor]] = None):
        super().__init__()
        self.cells = cells
        self.rows = rows or {}
        self.no_grad = no_grad or {}

    def _used(self, name: str, lead: torch.Size) -> Tuple[Optional[torch.Tensor], Optional[torch.Tensor]]:
        """``(used, frozen)``, boolean ``[C, B]`` (CPU) over the flattened cells of ``lead =
        [*cells, B]``, or ``(None, None)``: decode everything."""
        C, B = lead[:-1].numel(), lead[-1]
        cells, rows, frozen = self.cells.get(name), self.rows.get(name), self.no_grad.get(name)
        if cells is not None and tuple(cells.shape) == tuple(lead):  # per sample
            used = cells.reshape(C, B)
            frozen = frozen.reshape(C, B) if frozen is not None else None
        else:
            frozen = None
            if cells is not None and tuple(cells.shape) != tuple(lead[:-1]):
                cells = None
            if cells is None and rows is None:
                return None, None
            used = torch.ones(C, B, dtype=torch.bool)
            if cells is not None:
                used &= cells.reshape(C, 1)
            if rows is not None:
                used &= rows.reshape(1, B)
        if bool(used.all()) and (frozen is None or not bool(frozen.any())):
            return None, None
        return used, frozen

    @staticmethod
    def _rectangles(used: torch.Tensor, frozen: Optional[torch.Tensor]):
        """``(cells, samples, differentiable)`` rectangles covering exactly the true entries of
        ``used``: the cells that use the same samples form one (frozen entries their own);
        ``samples=None`` when those are all the samples."""
        parts = [(used, True)] if frozen is None else [(used & ~frozen, True), (used & frozen, False)]
        for part, differentiable in parts:
            cells = part.any(-1).nonzero().flatten()
            if len(cells):
                patterns, group = torch.unique(part[cells], dim=0, return_inverse=True)
                for g, pattern in enumerate(patterns):
                    yield cells[group == g], None if bool(pattern.all()) else pattern.nonzero().flatten(), differentiable

    def _pyro_decode(self, msg) -> None:
        net, z, likelihood = msg["args"]
        lead = z.shape[:-1]
        if likelihood is None or not lead:
            return
        used, frozen = self._used(msg["name"], lead)
        if used is None:
            return
        flat = z.reshape((lead[:-1].numel(), lead[-1], z.shape[-1]))  # [C, B, D]
        rectangles = []
        for cells, samples, differentiable in self._rectangles(used, frozen):
            cells = cells.to(z.device, non_blocking=True)
            entries = flat.index_select(0, cells)
            if samples is not None:
                samples = samples.to(z.device, non_blocking=True)
                entries = entries.index_select(1, samples)
            with torch.set_grad_enabled(differentiable and torch.is_grad_enabled()):
                rectangles.append(_Rectangle(likelihood(apply_flat(net, entries, 1)), cells, samples))
        if rectangles:
            first = rectangles[0].likelihood
        else:  # nothing used: one entry, never scored, gives the likelihood's shapes
            with torch.no_grad():
                first = likelihood(apply_flat(net, flat[:1, :1], 1))
        zero = z.new_zeros(())  # the log-densities' dtype and device
        msg["value"] = _OnEntries(rectangles, lead, first.event_shape, first.support, zero)
        msg["done"] = True
