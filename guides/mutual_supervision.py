"""MEME's guide: every observed modality's encoder on its own, q_φ(z | x_m) (Joy et al. 2022).

It is the mixture-of-experts guide of MMVAE seen differently: :class:`~pyro_mm.infer.TraceMEME_ELBO`
draws from each unimodal posterior separately (the strata of the singleton family) and never uses
the mixture density; the partner encoders act as conditional priors in
:class:`~pyro_mm.models.MutualSupervisionModel`.
"""

from __future__ import annotations

from .subset_mixture import MixtureOfExpertsGuide

__all__ = ["MutualSupervisionGuide"]


class MutualSupervisionGuide(MixtureOfExpertsGuide):
    """The unimodal posteriors q_φ(z | x_m) of every observed modality (MEME's guide)."""
