"""MVTCAE: multi-view total-correlation autoencoder (Hwang, Kim, Lee, Kim, Kim & Kim 2021).

The posterior q(z | X) is the product of the observed modalities' experts without the prior
expert (the reference's inverse-variance-weighted fusion;
:class:`~pyro_mm.guides.ProductOfExpertsGuide` with ``prior_expert=False``). With α the
total-correlation ratio ("tc_ratio") and M the number of modalities the objective of a sample is

.. math::

    \\mathcal{L}(X) = \\frac{M - \\alpha}{M}\\,\\mathbb{E}_q\\Big[\\sum_{m} s_m \\log p_\\theta(x_m \\mid z)\\Big]
        - \\beta\\Big[\\frac{\\alpha}{M} \\sum_{m} \\mathrm{KL}\\big(q(z|X) \\,\\|\\, q_\\phi(z|x_m)\\big)
        + (1 - \\alpha)\\,\\mathrm{KL}\\big(q(z|X) \\,\\|\\, p(z)\\big)\\Big],

with s_m the modality's likelihood scale. At β = 1 it is the convex combination of an ELBO and M
conditional variational information bottlenecks,

.. math:: \\mathcal{L} = (1 - \\alpha)\\big[\\mathbb{E}_q \\log p_\\theta(X|z) - \\mathrm{KL}(q \\| p)\\big]
          + \\frac{\\alpha}{M}\\sum_m \\big[\\mathbb{E}_q \\log p_\\theta(X_{-m}|z) - \\mathrm{KL}(q \\| q_m)\\big].

The reconstruction is the mean over K draws from q(z | X); the KLs are closed forms of diagonal
Gaussians, each with its gradient to both sides. β weighs the whole bracket.

**Missing modalities** (multivae's rule; the reference trains on complete data): q(z | X_o) is the
product of the observed experts, the reconstruction and the sum over m run over the observed
modalities, KL(q ‖ p) applies to every row, and **M stays the model's number of modalities** in
(M − α)/M and α/M. A row observing m alone has q = q_m, KL(q ‖ q_m) = 0, and
L = (M − α)/M · E log p(x_m | z) − β (1 − α) KL(q_m ‖ p).

.. warning:: For α > 0 this is not a lower bound on log p_θ(X): the conditional terms
   E_q log p(X_{−m} | z) − KL(q ‖ q_m) approach log p(X_{−m} | x_m), which can exceed log p(X).
   At α = 0 and β = 1 it is the ELBO of the product of experts. A linear-Gaussian model has its
   expectation in closed form for any encoders (``tests/infer/test_mvtcae.py``).

Defaults (ours against the references): α = 5/6 (the reference's PolyMNIST setting, and
multivae's examples; multivae's ``MVTCAEConfig`` says 0.1), β = 1 (the objective itself; both
references use 2.5 on PolyMNIST), K = 1 (one draw, as the references).

Example — plain :class:`pyro.infer.SVI` with a product of experts without the prior expert,
"sound" missing for about a third of the samples::

    import pyro, torch
    from pyro.infer import SVI
    from pyro_mm.batch import MultimodalBatch
    from pyro_mm.guides import ProductOfExpertsGuide
    from pyro_mm.infer import initialise
    from pyro_mm.infer.trace_mvtcae_elbo import TraceMVTCAE_ELBO
    from pyro_mm.modality import Modality
    from pyro_mm.models import SharedLatentModel
    from pyro_mm.nets import MLPDecoder, MLPEncoder

    mods = [Modality(n, (8,), MLPEncoder((8,), 4, (16,)), MLPDecoder(4, (8,), (16,)), "bernoulli")
            for n in ("image", "sound")]
    model, guide = SharedLatentModel(mods, z_dim=4), ProductOfExpertsGuide(mods, prior_expert=False)
    mask = torch.rand(64, 2) > torch.tensor([-1.0, 0.33])
    batch = MultimodalBatch({n: torch.rand(64, 8).round() for n in ("image", "sound")}, mask)
    initialise(model, guide, batch)  # nothing to set here (MEME's pseudo-samples need it)
    svi = SVI(model, guide, pyro.optim.Adam({"lr": 1e-3}), loss=TraceMVTCAE_ELBO(alpha=5 / 6))
    losses = [svi.step(batch) for _ in range(3)]

References:
[1] Hwang, Kim, Lee, Kim, Kim, Kim, *Multi-View Representation Learning via Total Correlation
    Objective*, NeurIPS 2021 (MVTCAE; reference code ``gr8joo/MVTCAE``).
[2] Senellart et al., *MultiVae*, JOSS 2024 (``MVTCAE``: the treatment of missing modalities).
"""

from __future__ import annotations

from typing import Optional

import torch

from ..distributions import normal_kl
from ..options import BETA, NUM_PARTICLES, real
from ..protocols import StratifiablePosterior, conforms
from .closed_form_terms import (GaussianExperts, latent_scale, observed_log_likelihood, stratified_posterior,
                                whole_posterior_plan)
from .multimodal_elbo import Estimate, MultimodalELBO
from .strata_plan import StrataPlan
from .stratified_traces import StratifiedTraces

__all__ = ["TraceMVTCAE_ELBO", "ALPHA", "mvtcae_divergence"]

#: α ∈ [0, 1], the total-correlation ratio
ALPHA = real("alpha", 5 / 6, "α, the total-correlation ratio (the reference's 5/6; 0: the product's ELBO)",
             maximum=1.0)


def mvtcae_divergence(loc, scale, expert_loc, expert_scale, observed, alpha: float) -> torch.Tensor:
    """(α/M) Σ_{m observed} KL(q ‖ q_m) + (1 − α) KL(q ‖ p) for q = N(loc, scale²) ``[B, D]`` and
    the experts ``[B, M, D]``, ``[B]``."""
    M = observed.shape[-1]
    to_experts = normal_kl(loc[:, None, :], scale[:, None, :], expert_loc, expert_scale)  # [B, M]
    to_experts = torch.where(observed, to_experts, to_experts.new_zeros(())).sum(-1)
    to_prior = normal_kl(loc, scale, loc.new_zeros(()), loc.new_ones(()))
    return alpha / M * to_experts + (1.0 - alpha) * to_prior


class TraceMVTCAE_ELBO(MultimodalELBO):
    """MVTCAE's objective, per datapoint (above).

    :param float alpha: α ∈ [0, 1], the total-correlation ratio.
    :param float beta: β ≥ 0, the weight of the divergences.
    :param int num_particles: K ≥ 1 draws averaged in the reconstruction.
    """

    def __init__(self, alpha: float = ALPHA.default, beta: float = BETA.default,
                 num_particles: int = NUM_PARTICLES.default):
        super().__init__(num_particles=NUM_PARTICLES.validate(num_particles))
        self.alpha = ALPHA.validate(alpha)
        self.beta = BETA.validate(beta)

    def plan(self, posterior: StratifiablePosterior) -> Optional[StrataPlan]:
        """One stratum, the posterior of every observed modality; a ``TypeError`` for a posterior
        whose experts are not Gaussian."""
        if not conforms(posterior, GaussianExperts) or posterior.expert_family.name != "normal":
            raise TypeError(
                f"TraceMVTCAE_ELBO needs a posterior of Gaussian experts (ProductOfExpertsGuide), the guide has a "
                f"{type(posterior).__name__}"
            )
        return whole_posterior_plan(posterior, self.decoded_rows)

    def per_datapoint(self, traces: StratifiedTraces, surrogate: bool) -> Estimate:
        """``(M − α)/M · reconstruction − β [divergences]`` per datapoint (its own gradient)."""
        strat = stratified_posterior(traces, type(self).__name__)
        source = strat.source
        M = len(source.names)
        log_likelihood = observed_log_likelihood(traces).mean(0)[0]  # [B]
        loc, scale = source.component_params(strat.subsets[0])
        divergence = latent_scale(traces, mvtcae_divergence(loc, scale, source.expert_loc, source.expert_scale,
                                                            source.observed, self.alpha))
        with torch.no_grad():
            self.last_terms = {"log_likelihood": log_likelihood.mean(), "divergence": divergence.mean()}
        return Estimate((M - self.alpha) / M * log_likelihood - self.beta * divergence)
