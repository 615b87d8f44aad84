"""Distributions usable at Pyro sample sites: mask-aware products and mixtures of experts."""

from .gaussian import normal_entropy, normal_kl, normal_log_prob
from .product_of_experts import ExpertPosterior, ProductOfExperts, product_of_experts
from .stratified import StratifiedPosterior
from .subset_mixture import SubsetMixture

__all__ = [
    "ExpertPosterior",
    "ProductOfExperts",
    "StratifiedPosterior",
    "SubsetMixture",
    "normal_entropy",
    "normal_kl",
    "normal_log_prob",
    "product_of_experts",
]
