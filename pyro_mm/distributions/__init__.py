"""Distributions usable at Pyro sample sites: mask-aware products and mixtures of experts, their
stratified draws, and modality-private posteriors with auxiliary priors."""

from .families import FAMILIES, LatentFamily, laplace_log_prob, latent_family
from .gaussian import normal_entropy, normal_kl, normal_log_prob
from .private import PrivatePosterior
from .product_of_experts import ExpertPosterior, ProductOfExperts, product_of_experts, single_expert
from .stratified import StratifiedPosterior
from .subset_mixture import SubsetMixture

__all__ = [
    "FAMILIES",
    "ExpertPosterior",
    "LatentFamily",
    "PrivatePosterior",
    "ProductOfExperts",
    "StratifiedPosterior",
    "SubsetMixture",
    "laplace_log_prob",
    "latent_family",
    "normal_entropy",
    "normal_kl",
    "normal_log_prob",
    "product_of_experts",
    "single_expert",
]
