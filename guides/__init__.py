"""Pyro guides of pyro_mm (installed as ``pyro_mm.guides``), one posterior family per file."""

from .experts import ExpertsGuide
from .mutual_supervision import MutualSupervisionGuide
from .private_latent import PrivateLatentGuide
from .product_of_experts import ProductOfExpertsGuide
from .subset_mixture import MixtureOfExpertsGuide, MixtureOfProductsGuide, SubsetMixtureGuide
from .unimodal import UnimodalGuide

__all__ = [
    "ExpertsGuide",
    "MixtureOfExpertsGuide",
    "MixtureOfProductsGuide",
    "MutualSupervisionGuide",
    "PrivateLatentGuide",
    "ProductOfExpertsGuide",
    "SubsetMixtureGuide",
    "UnimodalGuide",
]
