"""The MMVAE+ guide (Palumbo et al. 2023): a mixture of experts on the shared z and one private
posterior per modality,

.. math:: q(z \\mid X) = \\tfrac{1}{|o|}\\textstyle\\sum_{m\\ \\mathrm{observed}} q_\\phi(z \\mid x_m), \\qquad
          w_m \\sim q_\\phi(w_m \\mid x_m) \\text{ (observed) or } r_m(w_m) \\text{ (missing)}.

Each modality's encoder outputs ``(loc, scale)`` of size ``z_dim + private_dim``: the first
``z_dim`` entries are its expert on the shared z, the rest its private posterior on w_m. The
auxiliary prior r_m is a zero-location distribution of the same family with a learned scale; it
stands in for w_m wherever x_m is missing, and the stratified ELBOs draw every w_n of stratum m
(n ≠ m) from it for the cross-modal reconstructions
(:class:`~pyro_mm.distributions.PrivatePosterior`).

Two posterior families:

* ``"laplace"`` (the reference implementation's): Laplace experts whose scales are
  renormalised per part to sum to the part's size, scale_d = D · s_d / Σ_j s_j + η (the
  reference's softmax scales, with s the encoder's positive output, η = 10⁻⁶), and r_m with
  scales D_w · softmax(ℓ_m) + η, ℓ_m learned (initially zero: unit scales);
* ``"normal"``: Normal experts with the encoder's scales, and r_m with scales exp(ℓ_m).

The logits ℓ_m are parameters of this :class:`~pyro.nn.PyroModule`, registered with Pyro's param
store at every call of the guide: plain :class:`pyro.infer.SVI` trains them as it trains the
encoders. They start at the prior and need no data (:func:`pyro_mm.infer.initialise` sets nothing
here).
"""

from __future__ import annotations

from typing import Dict, List, Tuple

import pyro
import torch
from torch import nn

from pyro_mm.batch import MultimodalBatch
from pyro_mm.distributions import PrivatePosterior, SubsetMixture, latent_family
from pyro_mm.infer.contract import ContractError
from pyro_mm.modality import check_modalities, private_site
from pyro_mm.subsets import singletons

from .experts import ExpertsGuide

__all__ = ["PrivateLatentGuide"]

#: η, the smallest scale of a renormalised ("softmax") Laplace scale
MIN_SCALE = 1e-6


def _softmax_scale(scale: torch.Tensor) -> torch.Tensor:
    """D · s / Σ s + η over the last dimension D (the reference's softmax scales)."""
    if scale.shape[-1] == 0:
        return scale
    return scale.shape[-1] * scale / scale.sum(-1, keepdim=True) + MIN_SCALE


class PrivateLatentGuide(ExpertsGuide):
    """Mixture of experts on the shared latent, a private posterior with an auxiliary prior per
    modality.

    :param modalities: the modality specifications (the guide owns their encoders, each returning
        ``(loc, scale)`` of size ``z_dim + private_dim``).
    :param int z_dim: size of the shared latent.
    :param int private_dim: size of every private latent (0: MMVAE's guide).
    :param str family: ``"laplace"`` (default) or ``"normal"``.
    :param str latent: name of the shared latent site (private sites: ``"w_<name>"``).
    """

    def __init__(self, modalities, z_dim: int, private_dim: int, family: str = "laplace", latent: str = "z"):
        check_modalities(modalities, reserved=(latent, *(private_site(m.name) for m in modalities)))
        super().__init__(modalities, latent)
        self.z_dim, self.private_dim = int(z_dim), int(private_dim)
        self.family = latent_family(family).name
        self.aux_logits = nn.ParameterDict({m.name: nn.Parameter(torch.zeros(self.private_dim)) for m in self.modalities})

    def _encode(self, batch: MultimodalBatch):
        """Shared experts ``(loc, scale) [B, M, z_dim]``, private ``[B, M, private_dim]``, mask."""
        loc, scale, observed = super().experts(batch)
        size = self.z_dim + self.private_dim
        if loc.shape[-1] != size:
            raise ContractError(
                f"the encoders of {list(self.names)} return loc and scale of shape {list(loc[:, 0].shape)}; "
                f"{type(self).__name__} needs [batch, z_dim + private_dim] = [{loc.shape[0]}, {size}] "
                f"(z_dim {self.z_dim}, private_dim {self.private_dim})"
            )
        z_loc, w_loc = loc.split([self.z_dim, self.private_dim], -1)
        z_scale, w_scale = scale.split([self.z_dim, self.private_dim], -1)
        if self.family == "laplace":
            z_scale, w_scale = _softmax_scale(z_scale), _softmax_scale(w_scale)
        return (z_loc, z_scale), (w_loc, w_scale), observed

    def experts(self, batch: MultimodalBatch) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(loc, scale) [B, M, z_dim]`` of every modality's expert on the shared z, and the mask."""
        (loc, scale), _, observed = self._encode(batch)
        return loc, scale, observed

    def auxiliary_scale(self, name: str) -> torch.Tensor:
        """The scale ``[private_dim]`` of r_name."""
        logits = self.aux_logits[name]
        if self.family == "laplace":
            return _softmax_scale(logits.exp())
        return logits.exp()

    def _shared(self, loc, scale, observed) -> SubsetMixture:
        return SubsetMixture(loc, scale, observed, singletons(len(self.names)), "never", self.names,
                             expert_family=self.family)

    def posterior(self, batch: MultimodalBatch) -> SubsetMixture:
        """q(z | X), the mixture of the observed modalities' experts on the shared latent."""
        return self._shared(*self.experts(batch))

    def private_posteriors(self, batch: MultimodalBatch) -> Dict[str, PrivatePosterior]:
        """Modality name -> q(w_m | x_m) where x_m is observed, r_m where it is missing."""
        return self._private(*self._encode(batch)[1:])

    def _private(self, params, observed) -> Dict[str, PrivatePosterior]:
        loc, scale = params
        out = {}
        for i, name in enumerate(self.names):
            aux_scale = self.auxiliary_scale(name)
            out[name] = PrivatePosterior(loc[:, i], scale[:, i], observed[:, i], torch.zeros_like(aux_scale), aux_scale,
                                         i, self.family)
        return out

    def forward(self, batch: MultimodalBatch) -> torch.Tensor:
        shared, private, observed = self._encode(batch)
        posterior = self._shared(*shared, observed)
        privates: List = list(self._private(private, observed).items())
        with pyro.plate("data", batch.batch_size, dim=-1):
            z = pyro.sample(self.latent, posterior)
            for name, fn in privates:
                pyro.sample(private_site(name), fn)
        return z
