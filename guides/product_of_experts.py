"""The MVAE guide: q(z | X) ∝ p(z) Π_{m observed} q_φ(z | x_m) (Wu & Goodman 2018)."""

from __future__ import annotations

from pyro_mm.distributions import ProductOfExperts

from .experts import ExpertsGuide

__all__ = ["ProductOfExpertsGuide"]


class ProductOfExpertsGuide(ExpertsGuide):
    """Product-of-experts posterior over the observed modalities.

    :param modalities: the modality specifications (the guide owns their encoders).
    :param bool prior_expert: include the N(0, I) prior expert (default, as MVAE).
    """

    def __init__(self, modalities, prior_expert: bool = True, latent: str = "z"):
        super().__init__(modalities, latent)
        self.prior_expert = prior_expert

    def posterior(self, batch):
        loc, scale, observed = self.experts(batch)
        return ProductOfExperts(loc, scale, observed, self.prior_expert, self.names)
