"""The shared-latent multimodal generative model  p(z) Π_m p_θ(x_m | z).

One latent ``z ~ N(0, I)`` per sample generates every modality through its decoder. Each
modality's likelihood site (named after the modality) lies inside the data plate under that
modality's observation mask, so a missing modality contributes exactly nothing, and under
``poutine.scale(likelihood_scale)``. Every tensor broadcasts over leading particle and strata
dimensions: ``z`` may be ``[K, S, B, D]``; decoders see it as one flat batch, called through the
:func:`~pyro_mm.modality.decode` effect (an objective may restrict where it decodes).
"""

from __future__ import annotations

from typing import Sequence

import pyro
import pyro.distributions as dist
import torch
from pyro import poutine
from pyro.infer.util import is_validation_enabled
from pyro.nn import PyroModule
from torch import nn

from pyro_mm.batch import MultimodalBatch, check_batch
from pyro_mm.modality import Modality, check_modalities, decode

__all__ = ["SharedLatentModel"]


class SharedLatentModel(PyroModule):
    """p(z) Π_m p_θ(x_m | z) with z ~ N(0, I) of size ``z_dim``.

    :param modalities: the :class:`~pyro_mm.modality.Modality` specifications; the model owns
        their decoders and likelihoods (the generative parameters θ).
    :param int z_dim: latent size.
    :param str latent: name of the latent site.

    Call it with a :class:`~pyro_mm.batch.MultimodalBatch`; it returns ``z``.
    """

    def __init__(self, modalities: Sequence[Modality], z_dim: int, latent: str = "z"):
        super().__init__()
        self.modalities = check_modalities(modalities, reserved=(latent,))
        self.names = tuple(m.name for m in self.modalities)
        self.z_dim = int(z_dim)
        self.latent = latent
        self.decoders = nn.ModuleDict({m.name: m.decoder for m in self.modalities})
        self.likelihoods = nn.ModuleDict({m.name: m.likelihood for m in self.modalities})
        self.register_buffer("prior_loc", torch.zeros(self.z_dim))
        self.register_buffer("prior_scale", torch.ones(self.z_dim))

    def prior(self) -> dist.Distribution:
        # fixed buffers N(0, I): nothing to validate, and its values are the guide's (validated) draws
        return dist.Normal(self.prior_loc, self.prior_scale, validate_args=False).to_event(1)

    def likelihood(self, name: str, z: torch.Tensor) -> dist.Distribution:
        """p_θ(x_name | z) for ``z [..., D]`` (batch shape ``[...]``)."""
        return self._likelihood(self.modalities[self.names.index(name)], z, self.decoders, self.likelihoods)

    @staticmethod
    def _likelihood(spec: Modality, z: torch.Tensor, decoders: nn.ModuleDict,
                    likelihoods: nn.ModuleDict) -> dist.Distribution:
        # the module dicts are passed in: each attribute access of a PyroModule's plain submodule
        # is a pyro.module statement (one pyro.param per parameter), wanted once per call
        likelihood = likelihoods[spec.name]
        return decode(spec.name, decoders[spec.name], z, lambda params: likelihood(params, spec.event_dim))

    def check(self, batch: MultimodalBatch) -> None:
        """The batch holds this model's modalities; with validation on, valid data for each."""
        check_batch(batch, self.names, type(self).__name__)
        if is_validation_enabled():
            for m in self.modalities:
                m.check_data(batch[m.name], batch.observed(m.name))

    def forward(self, batch: MultimodalBatch) -> torch.Tensor:
        self.check(batch)
        decoders, likelihoods = self.decoders, self.likelihoods
        with pyro.plate("data", batch.batch_size, dim=-1):
            z = pyro.sample(self.latent, self.prior())
            for m in self.modalities:
                code = self.decoder_input(m, z)
                with poutine.mask(mask=batch.observed(m.name)), poutine.scale(scale=m.likelihood_scale):
                    pyro.sample(m.name, self._likelihood(m, code, decoders, likelihoods), obs=batch[m.name])
        return z

    def decoder_input(self, modality: Modality, z: torch.Tensor) -> torch.Tensor:
        """What the decoder of ``modality`` reads (here z; a subclass may sample more latents for
        it, inside the data plate)."""
        return z
