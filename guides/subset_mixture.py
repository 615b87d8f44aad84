"""Mixture guides: q(z | X) = Σ_{S avail} ω̃_S q(z | x_S) over a subset family.

* :class:`MixtureOfExpertsGuide` — MMVAE (Shi et al. 2019): the singletons, a uniform mixture of
  the observed modalities' experts.
* :class:`MixtureOfProductsGuide` — MoPoE-VAE (Sutter et al. 2021): every non-empty subset of the
  observed modalities, each component the subset's product of experts.
* :class:`SubsetMixtureGuide` — any :class:`~pyro_mm.subsets.SubsetFamily` and any
  :class:`~pyro_mm.distributions.SubsetMixture` subclass (e.g. the optimal linear-Gaussian
  encoders of :class:`~pyro_mm.linear_gaussian.OptimalSubsetMixture`).
"""

from __future__ import annotations

from typing import Type

from pyro_mm.distributions import SubsetMixture
from pyro_mm.subsets import SubsetFamily, power_set, singletons

from .experts import ExpertsGuide

__all__ = ["SubsetMixtureGuide", "MixtureOfExpertsGuide", "MixtureOfProductsGuide"]


class SubsetMixtureGuide(ExpertsGuide):
    """Mixture over a subset family of products of the modalities' experts.

    :param modalities: the modality specifications (the guide owns their encoders).
    :param SubsetFamily family: subsets and weights (its size must match the modalities).
    :param str prior_expert: ``"never"``, ``"full"`` or ``"always"`` (see
        :class:`~pyro_mm.distributions.SubsetMixture`).
    :param mixture: the :class:`~pyro_mm.distributions.SubsetMixture` class to build.
    """

    def __init__(self, modalities, family: SubsetFamily, prior_expert: str = "never",
                 mixture: Type[SubsetMixture] = SubsetMixture, latent: str = "z"):
        super().__init__(modalities, latent)
        if family.num_modalities != len(self.names):
            raise ValueError(
                f"the subset family covers {family.num_modalities} modalities, the guide has {len(self.names)}"
            )
        self.family = family
        self.prior_expert = prior_expert
        self.mixture = mixture

    def posterior(self, batch) -> SubsetMixture:
        loc, scale, observed = self.experts(batch)
        return self.mixture(loc, scale, observed, self.family, self.prior_expert, self.names)


class MixtureOfExpertsGuide(SubsetMixtureGuide):
    """MMVAE's guide: uniform mixture of the observed modalities' experts."""

    def __init__(self, modalities, latent: str = "z"):
        super().__init__(modalities, singletons(len(modalities)), "never", latent=latent)


class MixtureOfProductsGuide(SubsetMixtureGuide):
    """MoPoE-VAE's guide: uniform mixture over the power set of products of experts.

    :param str prior_expert: ``"full"`` (default: only in the product of all M modalities, as the
        reference implementation), ``"never"`` or ``"always"``.
    """

    def __init__(self, modalities, prior_expert: str = "full", latent: str = "z"):
        super().__init__(modalities, power_set(len(modalities)), prior_expert, latent=latent)
