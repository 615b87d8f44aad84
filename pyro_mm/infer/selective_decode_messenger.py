"""A Pyro effect handler that decodes each modality only where the objective uses its likelihood.

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
  cells are decoded outside autograd (``no_grad``).

Inside :class:`SelectiveDecodeMessenger`, the model's :func:`~pyro_mm.modality.decode` effect of
modality m runs the decoder on the cells ``cells[m]`` and the samples ``rows[m]`` only and returns
the parameters of those cells alone (``[n, B, ...]``, n = the number of cells used; the samples
not observing m read zeros, which the model's mask discards); the observed sample site of the
same name then evaluates its log-density on those cells and reads zero elsewhere — values the
objective never uses. The bound and its gradients are unchanged; the decoder of m costs what the
places it needs cost, in time and in memory (the likelihood itself still runs on every sample of
the cells used: the data plate must see all of them).

The contract with the model: the value of ``decode(name, ...)`` goes into the likelihood of the
observed site ``name`` and nowhere else, and that site is masked out on the samples that do not
observe ``name`` (as in :class:`~pyro_mm.models.SharedLatentModel`).
"""

from __future__ import annotations

from typing import Dict, Optional, Sequence

import torch
from pyro.distributions import TorchDistribution
from pyro.poutine.messenger import Messenger

from ..modality import apply_flat

__all__ = ["SelectiveDecodeMessenger", "observed_rows"]


def observed_rows(observed: torch.Tensor, names: Sequence[str]) -> Optional[Dict[str, torch.Tensor]]:
    """The ``rows`` of :class:`SelectiveDecodeMessenger` for an observation mask ``[B, M]``
    (columns ``names``): modality name -> index of the samples that observe it, for every modality
    some sample lacks; ``None`` when every sample observes every modality. Reads the mask back to
    the host once."""
    on_host = observed.cpu()
    rows = {name: on_host[:, i].nonzero().flatten().to(observed.device, non_blocking=True)
            for i, name in enumerate(names) if not bool(on_host[:, i].all())}
    return rows or None


class _OnCells(TorchDistribution):
    """A likelihood over the used cells ``[n, B]`` seen with batch shape ``[K, S, B]``: its
    log-density is the base's on the used cells and zero on the others."""

    arg_constraints = {}

    def __init__(self, base, index: torch.Tensor, cells: torch.Size):
        self.base, self.index, self.cells = base, index, cells
        super().__init__(cells + base.batch_shape[1:], base.event_shape, validate_args=False)

    @property
    def support(self):
        return self.base.support

    def expand(self, batch_shape, _instance=None):
        if torch.Size(batch_shape) != self.batch_shape:
            raise ValueError(f"cannot expand a selectively decoded likelihood {tuple(self.batch_shape)} "
                             f"to {tuple(batch_shape)}")
        return self

    def log_prob(self, value):
        used = self.base.log_prob(value)  # [n, B]
        full = used.new_zeros((self.cells.numel(),) + used.shape[1:]).index_copy(0, self.index, used)
        return full.reshape(self.batch_shape)


class SelectiveDecodeMessenger(Messenger):
    """Decode, and score, each named modality only on some cells of ``z`` and some samples.

    :param dict cells: modality name -> boolean ``[K, S]`` (on the CPU): the (particle, stratum)
        cells whose likelihood the objective uses (``[S]`` when the ELBO runs one particle without
        a particle dimension); or ``[K, S, B]``: the cells each sample uses (the modality is then
        decoded on those (cell, sample) entries only, and ``rows`` is not read for it). A modality
        not named, or a ``z`` whose leading dimensions are not the cells' shape, is decoded at
        every cell.
    :param dict rows: modality name -> index ``[b]`` (on the data's device) of the samples that
        observe it; a modality not named is decoded for every sample.
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
        self._selected: Dict[str, tuple] = {}  # name -> (index of the decoded cells, their shape)

    def _pyro_decode(self, msg) -> None:
        name = msg["name"]
        net, z, event_dims = msg["args"]
        lead = z.shape[: z.dim() - event_dims]
        cells, rows, frozen = self.cells.get(name), self.rows.get(name), self.no_grad.get(name)
        if cells is not None and tuple(cells.shape) == tuple(lead) and not (
                bool(cells.all()) and (frozen is None or not bool(frozen.any()))):
            return self._decode_entries(msg, name, net, z, lead, cells, frozen)
        if cells is not None and (tuple(lead[:-1]) != tuple(cells.shape) or bool(cells.all())):
            cells = None
        if not lead or (cells is None and rows is None):
            return
        flat = z.reshape((lead[:-1].numel(),) + z.shape[len(lead) - 1:])  # [C, B, D]
        if cells is not None:
            index = cells.flatten().nonzero().flatten().to(z.device)
            flat = flat.index_select(0, index)  # [n, B, D]
            self._selected[name] = (index, cells.shape)
        if rows is None:
            value = apply_flat(net, flat, event_dims)
        else:  # decode the samples observing the modality; the others read zeros, masked out
            decoded = apply_flat(net, flat.index_select(1, rows), event_dims)  # [n, b, ...]
            value = decoded.new_zeros(decoded.shape[:1] + flat.shape[1:2] + decoded.shape[2:])
            value = value.index_copy(1, rows, decoded)
        msg["value"] = value if cells is not None else value.reshape(lead + value.shape[2:])
        msg["done"] = True

    def _decode_entries(self, msg, name, net, z, lead, cells, frozen) -> None:
        """Decode the (cell, sample) entries of per-sample ``cells [*cells, B]`` only, those of
        ``frozen`` (or ``None``) outside autograd; the parameters of the cells used by some sample
        come back ``[n, B, ...]``, zeros elsewhere."""
        per_cell = cells.reshape(-1, lead[-1])  # [C, B]
        index = per_cell.any(-1).nonzero().flatten()
        if not len(index):  # nothing used: one cell of zeros keeps the site's shapes valid
            index = index.new_zeros(1)
        cell, sample = per_cell[index].nonzero(as_tuple=True)  # entries of the n used cells
        frozen = (frozen.reshape(-1, lead[-1])[index][cell, sample] if frozen is not None
                  else torch.zeros(len(cell), dtype=torch.bool))
        flat = z.reshape((-1,) + z.shape[len(lead) - 1:])  # [C, B, D]
        index = index.to(z.device, non_blocking=True)
        used = flat.index_select(0, index)  # [n, B, D]
        # with autograd, then without; a group with no entries is skipped (unless both are empty)
        groups = [(g, d) for g, d in ((~frozen, True), (frozen, False)) if bool(g.any())] or [(~frozen, True)]
        value = None
        for group, differentiable in groups:
            entries = tuple(t[group].to(z.device, non_blocking=True) for t in (cell, sample))
            with torch.set_grad_enabled(differentiable and torch.is_grad_enabled()):
                decoded = net(used[entries])  # [n_entries, ...]
            if value is None:
                value = decoded.new_zeros((len(index), lead[-1]) + decoded.shape[1:])
            value = value.index_put(entries, decoded)
        msg["value"] = value
        msg["done"] = True
        self._selected[name] = (index, lead[:-1])

    def _pyro_sample(self, msg) -> None:
        selected = self._selected.pop(msg["name"], None)
        if selected is not None and msg["is_observed"]:
            msg["fn"] = _OnCells(msg["fn"], *selected)
