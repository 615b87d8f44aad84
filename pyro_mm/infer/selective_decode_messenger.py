"""A Pyro effect handler that decodes each modality only where the objective uses its likelihood.

The stratified ELBOs run the model on ``z [K, S, B, D]`` (particles × strata × data), and the
model decodes every modality at every (particle, stratum) cell. Some objectives use a modality's
likelihood at only some cells:

* MVAE's subset terms: stratum s reconstructs only its subset S_s, so log p(x_m | z_{k,s}) is
  multiplied by zero on every stratum whose subset lacks m;
* MEME: in the direction m → others, the likelihood of m itself is needed for the main sample
  z_{0,m} only, the others' (the classifier q̂) for all K + 1 samples.

Inside :class:`SelectiveDecodeMessenger`, the model's :func:`~pyro_mm.modality.decode` effect of
modality m runs the decoder on the cells ``cells[m]`` only and returns those parameters alone
(``[n, B, ...]``, n = the number of cells used); the observed sample site of the same name then
evaluates its log-density on those cells and reads zero elsewhere — values the objective never
uses. The bound and its gradients are unchanged; the decoder and the likelihood of m cost what the
cells it needs cost, in time and in memory.

The contract with the model: the value of ``decode(name, ...)`` goes into the likelihood of the
observed site ``name`` and nowhere else (as in :class:`~pyro_mm.models.SharedLatentModel`).
"""

from __future__ import annotations

from typing import Dict

import torch
from pyro.distributions import TorchDistribution
from pyro.poutine.messenger import Messenger

from ..modality import apply_flat

__all__ = ["SelectiveDecodeMessenger"]


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
    """Decode, and score, each named modality only on some leading cells of ``z``.

    :param dict cells: modality name -> boolean ``[K, S]`` (on the CPU): the (particle, stratum)
        cells whose likelihood the objective uses (``[S]`` when the ELBO runs one particle without
        a particle dimension). A modality not named, or a ``z`` whose leading dimensions (left of
        the data dimension) are not the cells' shape, is decoded everywhere.
    """

    def __init__(self, cells: Dict[str, torch.Tensor]):
        super().__init__()
        self.cells = cells
        self._selected: Dict[str, torch.Tensor] = {}  # name -> index of the decoded cells

    def _pyro_decode(self, msg) -> None:
        cells = self.cells.get(msg["name"])
        net, z, event_dims = msg["args"]
        lead = z.shape[: z.dim() - event_dims]
        if cells is None or tuple(lead[:-1]) != tuple(cells.shape) or bool(cells.all()):
            return
        index = cells.flatten().nonzero().flatten().to(z.device)
        flat = z.reshape((cells.numel(),) + z.shape[cells.dim():])  # [K·S, B, D]
        msg["value"] = apply_flat(net, flat.index_select(0, index), event_dims)  # [n, B, ...]
        msg["done"] = True
        self._selected[msg["name"]] = index

    def _pyro_sample(self, msg) -> None:
        index = self._selected.pop(msg["name"], None)
        if index is not None and msg["is_observed"]:
            msg["fn"] = _OnCells(msg["fn"], index, self.cells[msg["name"]].shape)
