"""The common part of the multimodal guides: run every encoder, stack the experts.

Each encoder maps its modality to a diagonal Gaussian expert q_φ(z | x_m). Encoders run on the
whole batch (missing entries hold zeros), so they must treat samples independently (no batch
normalisation in training mode); the posterior then ignores the experts of missing modalities.
Before any encoder runs, every modality's data is checked against its specification (shape and
dtype, :meth:`~pyro_mm.modality.Modality.check_input`); with Pyro's validation on, every returned
scale is checked to be positive (an encoder returning a log-variance is named).
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
from pyro_mm.modality import Modality, apply_flat, check_modalities, check_scale, network_dtype

__all__ = ["ExpertsGuide"]


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
            loc, scale = apply_flat(encoders[m.name], batch[m.name], m.event_dim)
            if loc.shape != scale.shape or loc.dim() != 2 or loc.shape[0] != batch.batch_size:
                raise ValueError(
                    f"encoder of modality {m.name!r} must return (loc, scale) of shape [batch, z_dim], "
                    f"got {tuple(loc.shape)} and {tuple(scale.shape)}"
                )
            if validate:
                check_scale(m.name, scale)
            locs.append(loc)
            scales.append(scale)
        mask = torch.stack([batch.observed(n) for n in self.names], -1)
        return torch.stack(locs, -2), torch.stack(scales, -2), mask

    def posterior(self, batch: MultimodalBatch) -> ExpertPosterior:
        raise NotImplementedError

    def forward(self, batch: MultimodalBatch) -> torch.Tensor:
        posterior = self.posterior(batch)
        with pyro.plate("data", batch.batch_size, dim=-1):
            return pyro.sample(self.latent, posterior)
