"""The shared-plus-private latent model of MMVAE+ (Palumbo et al. 2023):

.. math:: p(z) \\prod_m p(w_m)\\, p_\\theta(x_m \\mid z, w_m),

one shared latent z for every modality and one private latent w_m per modality, which carries
what x_m has that the others cannot predict (its modality-specific variation). The priors p(z),
p(w_m) are standard Laplace (the reference implementation's) or standard Normal; each decoder
reads the concatenation ``[z, w_m]``. Every site lies in the data plate; a modality's likelihood
is masked out where it is missing (its w_m is then sampled but unused), and decoded through the
:func:`~pyro_mm.modality.decode` effect, so an objective may decode only where it needs to.
The private sites are named :func:`~pyro_mm.modality.private_site` (``"w_<name>"``).

Reference: Palumbo, Daunhawer, Vogt, *MMVAE+: Enhancing the Generative Quality of Multimodal VAEs
without Compromises*, ICLR 2023.
"""

from __future__ import annotations

from typing import Sequence

import pyro
import pyro.distributions as dist
import torch

from pyro_mm.distributions import latent_family
from pyro_mm.modality import Modality, check_modalities, private_site

from .shared_latent import SharedLatentModel

__all__ = ["PrivateLatentModel"]

_PRIORS = {"normal": dist.Normal, "laplace": dist.Laplace}


class PrivateLatentModel(SharedLatentModel):
    """p(z) Π_m p(w_m) p_θ(x_m | z, w_m).

    :param modalities: the modality specifications; each decoder maps ``z_dim + private_dim``
        inputs ``[z, w_m]`` to its likelihood's parameters.
    :param int z_dim: size of the shared latent z.
    :param int private_dim: size of every private latent w_m (0: the shared-latent model).
    :param str family: ``"laplace"`` (default, as the reference) or ``"normal"`` priors.
    :param str latent: name of the shared latent site.
    """

    def __init__(self, modalities: Sequence[Modality], z_dim: int, private_dim: int, family: str = "laplace",
                 latent: str = "z"):
        names = [m.name for m in modalities]
        check_modalities(modalities, reserved=(latent, *(private_site(n) for n in names)))
        super().__init__(modalities, z_dim, latent)
        if isinstance(private_dim, bool) or not isinstance(private_dim, int) or private_dim < 0:
            raise ValueError(f"private_dim must be an integer >= 0, got {private_dim!r}")
        self.private_dim = private_dim
        self.family = latent_family(family).name
        self.register_buffer("private_loc", torch.zeros(private_dim))
        self.register_buffer("private_scale", torch.ones(private_dim))

    def prior(self) -> dist.Distribution:
        """p(z), standard Laplace or Normal."""
        return _PRIORS[self.family](self.prior_loc, self.prior_scale, validate_args=False).to_event(1)

    def private_prior(self) -> dist.Distribution:
        """p(w_m), standard Laplace or Normal of size ``private_dim``."""
        return _PRIORS[self.family](self.private_loc, self.private_scale, validate_args=False).to_event(1)

    def decoder_input(self, modality: Modality, z: torch.Tensor) -> torch.Tensor:
        """``[z, w_m]`` with w_m ~ p(w_m) at the private site of ``modality``."""
        w = pyro.sample(private_site(modality.name), self.private_prior())
        return torch.cat([z, w], -1) if self.private_dim else z
