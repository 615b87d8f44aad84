"""Distributions usable at Pyro sample sites: mask-aware products and mixtures of experts."""

from .product_of_experts import ExpertPosterior, ProductOfExperts, product_of_experts
from .stratified import StratifiedPosterior
from .subset_mixture import SubsetMixture

__all__ = [
    "ExpertPosterior",
    "ProductOfExperts",
    "StratifiedPosterior",
    "SubsetMixture",
    "product_of_experts",
]
