"""The common part of the multimodal guides: run every encoder, stack the experts.

Each encoder maps its modality to a diagonal Gaussian expert q_φ(z | x_m). Encoders run on the
whole batch (missing entries hold zeros), so they must treat samples independently (no batch
normalisation in training mode); the posterior then ignores the experts of missing modalities.
Before any encoder runs, every modality's data is checked against its specification (shape and
dtype, :meth:`~pyro_mm.modality.Modality.check_input`); every encoder's output must be a pair
``(loc, scale)`` of equal shapes ``[batch, z_dim]``, the same ``z_dim`` for every modality
(:func:`run_encoder`; otherwise a :class:`~pyro_mm.infer.ContractError` naming the modality and
the shapes, at the cost of comparing shapes); with Pyro's validation on, every returned scale is
checked to be positive (an encoder returning a log-variance is named).
"""

from __future__ import annotations

from typing import Sequence, Tuple

import pyro
import torch
from pyro.infer.util import is_validation_enabled
from pyro.nn import PyroModule
from torch import nn

from pyro_mm.batch import MultimodalBatch, check_batch
from pyro_mm.distributions import ExpertPosterior
from pyro_mm.infer.contract import ContractError
from pyro_mm.modality import Modality, apply_flat, check_modalities, check_scale, network_dtype

__all__ = ["ExpertsGuide", "run_encoder"]


def _describe(out) -> str:
    if torch.is_tensor(out):
        return f"one tensor of shape {list(out.shape)}"
    if isinstance(out, (tuple, list)):
        return f"a {type(out).__name__} of {len(out)} values"
    return f"a {type(out).__name__}"


def run_encoder(modality: Modality, encoder: nn.Module, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """``(loc, scale) [B, D]``: ``encoder`` on the data ``x [B, *event_shape]`` of ``modality``,
    or a :class:`~pyro_mm.infer.ContractError` naming the modality and the shapes unless the
    encoder returns a pair of tensors of equal shapes ``[B, D]``."""
    out = apply_flat(encoder, x, modality.event_dim)
    B = x.shape[0]
    if not (isinstance(out, (tuple, list)) and len(out) == 2 and all(torch.is_tensor(t) for t in out)):
        raise ContractError(
            f"the encoder of modality {modality.name!r} returned {_describe(out)}, not a pair (loc, scale); return "
            f"loc and scale > 0, each of shape [batch, z_dim] = [{B}, z_dim] (e.g. loc, raw = h.chunk(2, -1); "
            f"scale = softplus(raw) + 1e-3)"
        )
    loc, scale = out
    if loc.shape != scale.shape or loc.dim() != 2 or loc.shape[0] != B:
        raise ContractError(
            f"the encoder of modality {modality.name!r} returned loc of shape {list(loc.shape)} and scale of shape "
            f"{list(scale.shape)}; both must have shape [batch, z_dim] = [{B}, z_dim]"
        )
    return loc, scale


class ExpertsGuide(PyroModule):
    """Base class of guides built from per-modality Gaussian experts.

    Subclasses implement :meth:`posterior`; :meth:`forward` samples it at the latent site inside
    the data plate, with the same call signature as the model.
    """

    def __init__(self, modalities: Sequence[Modality], latent: str = "z"):
        super().__init__()
        self.modalities = check_modalities(modalities, reserved=(latent,))
        self.names = tuple(m.name for m in self.modalities)
        self.latent = latent
        self.encoders = nn.ModuleDict({m.name: m.encoder for m in self.modalities})

    def experts(self, batch: MultimodalBatch) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(loc, scale) [B, M, D]`` of every modality's expert and the mask ``[B, M]``."""
        check_batch(batch, self.names, type(self).__name__)
        encoders = self.encoders
        for m in self.modalities:
            m.check_input(batch[m.name], network_dtype(m.encoder))
        locs, scales = [], []
        validate = is_validation_enabled()
        for m in self.modalities:
            loc, scale = run_encoder(m, encoders[m.name], batch[m.name])
            if validate:
                check_scale(m.name, scale)
            locs.append(loc)
            scales.append(scale)
        if len({loc.shape[-1] for loc in locs}) > 1:
            shapes = ", ".join(f"{n!r} {list(loc.shape)}" for n, loc in zip(self.names, locs))
            raise ContractError(
                f"the encoders disagree on the latent size: they return loc and scale of shapes {shapes}; every "
                f"encoder returns (loc, scale) of shape [batch, z_dim] with the model's z_dim"
            )
        mask = torch.stack([batch.observed(n) for n in self.names], -1)
        return torch.stack(locs, -2), torch.stack(scales, -2), mask

    def posterior(self, batch: MultimodalBatch) -> ExpertPosterior:
        raise NotImplementedError

    def forward(self, batch: MultimodalBatch) -> torch.Tensor:
        posterior = self.posterior(batch)
        with pyro.plate("data", batch.batch_size, dim=-1):
            return pyro.sample(self.latent, posterior)
