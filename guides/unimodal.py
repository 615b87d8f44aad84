"""The unimodal VAE guide q_φ(z | x_m): one encoder, a diagonal Normal (the baseline of the
generative-quality gap)."""

from __future__ import annotations

import pyro
import pyro.distributions as dist
from pyro.infer.util import is_validation_enabled
from pyro.nn import PyroModule

from pyro_mm.batch import check_batch
from pyro_mm.modality import Modality, check_scale, network_dtype

from .experts import run_encoder

__all__ = ["UnimodalGuide"]


class UnimodalGuide(PyroModule):
    """q_φ(z | x_m) for a single modality; use it with ``SharedLatentModel([modality], z_dim)``."""

    def __init__(self, modality: Modality, latent: str = "z"):
        super().__init__()
        self.modality = modality
        self.latent = latent
        self.encoder = modality.encoder

    def posterior(self, batch) -> dist.Distribution:
        check_batch(batch, (self.modality.name,), type(self).__name__)
        self.modality.check_input(batch[self.modality.name], network_dtype(self.modality.encoder))
        loc, scale = run_encoder(self.modality, self.encoder, batch[self.modality.name])
        if is_validation_enabled():
            check_scale(self.modality.name, scale)
        return dist.Normal(loc, scale).to_event(1)

    def forward(self, batch):
        posterior = self.posterior(batch)
        with pyro.plate("data", batch.batch_size, dim=-1):
            return pyro.sample(self.latent, posterior)
