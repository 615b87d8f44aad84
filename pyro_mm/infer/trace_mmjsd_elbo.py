"""mmJSD: the multimodal Jensen–Shannon divergence objective (Sutter, Daunhawer & Vogt 2020).

The posterior is the uniform mixture of the observed modalities' experts, q(z | X) =
(1/|o|) Σ_{m∈o} q_φ(z | x_m) (:class:`~pyro_mm.guides.MixtureOfExpertsGuide`; the prior is no
component). The ELBO's KL(q(z|X) ‖ p(z)) is replaced by the Jensen–Shannon divergence of the M
unimodal posteriors and the prior towards their *dynamic prior* f, their weighted geometric mean:

.. math::

    \\mathcal{L}(X) = \\sum_{m \\in o} \\tfrac{1}{|o|}\\,\\mathbb{E}_{q_\\phi(z|x_m)}\\Big[\\sum_{n \\in o}
        s_n \\log p_\\theta(x_n \\mid z)\\Big] - \\beta\\,\\mathrm{JS}_\\pi(X),
    \\qquad \\mathrm{JS}_\\pi(X) = \\sum_{k \\in \\{0\\} \\cup o} \\pi_k\\,\\mathrm{KL}(q_k \\,\\|\\, f),

    q_0 = p(z), \\quad q_m = q_\\phi(z \\mid x_m), \\quad \\pi_k = \\frac{1}{|o| + 1}, \\quad
    f \\propto \\prod_{k \\in \\{0\\} \\cup o} q_k^{\\pi_k}
    = N\\Big(\\mu_{PoE},\\ \\frac{|o| + 1}{\\sigma_{PoE}^{-2}}\\Big),

where N(μ_PoE, σ²_PoE) is the product of the prior and the observed experts: the geometric mean
has the product's mean and (|o| + 1) times its variance. s_n is the modality's likelihood scale.
Every observed modality is reconstructed from a draw of every observed expert (stratified
sampling of the mixture: one stratum per expert, weight 1/|o|; the reference draws one expert per
sample), the mean over K draws per expert; the JS is in closed form, with gradients through f
into every expert.

**Missing modalities** (pyro_mm's rule; the reference trains on complete data and infers from the
available experts at test time): the mixture, the reconstruction, the JS and f run over the
prior and the observed modalities only, π renormalised over them (π_k = 1/(|o| + 1)). A row
observing m alone has JS = ½ KL(q_m ‖ f) + ½ KL(p ‖ f).

.. warning:: mmJSD is **not a lower bound on log p_θ(X)**: it is an ELBO only with respect to the
   data-dependent dynamic prior f, and Σ_k π_k KL(q_k ‖ f) can be far smaller than the ELBO's
   KL(q(z|X) ‖ p(z)) — with every q_m the exact posterior it exceeds log p_θ(X) where the data
   are far from the prior's mean. Do not compare its values with the bounds' as likelihoods. Its
   expectation has a closed form on a linear-Gaussian model for any encoders
   (``tests/infer/test_mmjsd.py``); the JS with the arithmetic mixture (the original JS, which
   the paper replaces) has none.

Defaults (ours against the reference): π uniform over the prior and the observed modalities (the
reference's MNIST-SVHN-Text job: 0.25 each of 4), β = 1 (the paper's objective; the reference's
job uses 2.5), K = 1 draw per expert.

Example — plain :class:`pyro.infer.SVI` with the mixture-of-experts guide, "sound" missing for
about a third of the samples::

    import pyro, torch
    from pyro.infer import SVI
    from pyro_mm.batch import MultimodalBatch
    from pyro_mm.guides import MixtureOfExpertsGuide
    from pyro_mm.infer import initialise
    from pyro_mm.infer.trace_mmjsd_elbo import TraceMMJSD_ELBO
    from pyro_mm.modality import Modality
    from pyro_mm.models import SharedLatentModel
    from pyro_mm.nets import MLPDecoder, MLPEncoder

    mods = [Modality(n, (8,), MLPEncoder((8,), 4, (16,)), MLPDecoder(4, (8,), (16,)), "bernoulli")
            for n in ("image", "sound")]
    model, guide = SharedLatentModel(mods, z_dim=4), MixtureOfExpertsGuide(mods)
    mask = torch.rand(64, 2) > torch.tensor([-1.0, 0.33])
    batch = MultimodalBatch({n: torch.rand(64, 8).round() for n in ("image", "sound")}, mask)
    initialise(model, guide, batch)  # nothing to set here (MEME's pseudo-samples need it)
    svi = SVI(model, guide, pyro.optim.Adam({"lr": 1e-3}), loss=TraceMMJSD_ELBO())
    losses = [svi.step(batch) for _ in range(3)]

Reference: Sutter, Daunhawer, Vogt, *Multimodal Generative Learning Utilizing Jensen-Shannon
Divergence*, NeurIPS 2020 (arXiv:2006.08242; reference code ``thomassutter/mmjsd``).
"""

from __future__ import annotations

from typing import Optional, Tuple

import torch

from ..distributions import normal_kl, product_of_experts
from ..options import BETA, NUM_PARTICLES
from ..protocols import MixturePosterior, StratifiablePosterior, conforms
from .closed_form_terms import GaussianExperts, latent_scale, observed_log_likelihood, stratified_posterior
from .multimodal_elbo import Estimate, MultimodalELBO
from .strata_plan import StrataPlan
from .stratified_traces import StratifiedTraces
from .trace_mixture_elbo import mixture_plan

__all__ = ["TraceMMJSD_ELBO", "dynamic_prior", "jensen_shannon"]


def dynamic_prior(loc, scale, observed) -> Tuple[torch.Tensor, torch.Tensor]:
    """f, the geometric mean of p(z) and the observed experts ``[B, M, D]`` with uniform weights
    1/(|o| + 1): the product of experts with the prior, its variance times |o| + 1, ``[B, D]``."""
    f_loc, f_scale = product_of_experts(loc, scale, observed, prior_expert=True)
    count = observed.sum(-1, keepdim=True).to(loc.dtype) + 1.0
    return f_loc, f_scale * count.sqrt()


def jensen_shannon(loc, scale, observed) -> torch.Tensor:
    """Σ_{k ∈ {0} ∪ o} π_k KL(q_k ‖ f) with q_0 = p(z) and π_k = 1/(|o| + 1), ``[B]``."""
    f_loc, f_scale = dynamic_prior(loc, scale, observed)
    to_f = normal_kl(loc, scale, f_loc[:, None, :], f_scale[:, None, :])  # [B, M]
    to_f = torch.where(observed, to_f, to_f.new_zeros(())).sum(-1)
    prior_to_f = normal_kl(f_loc.new_zeros(()), f_loc.new_ones(()), f_loc, f_scale)
    return (prior_to_f + to_f) / (observed.sum(-1).to(loc.dtype) + 1.0)


def _gaussian_mixture_of_experts(posterior: StratifiablePosterior) -> bool:
    """Whether ``posterior`` is a mixture of its unimodal Gaussian experts, without the prior."""
    family = getattr(posterior, "family", None)
    return (conforms(posterior, MixturePosterior) and conforms(posterior, GaussianExperts)
            and posterior.expert_family.name == "normal" and getattr(posterior, "prior_expert", None) == "never"
            and family is not None and family.largest_subset() == 1)


class TraceMMJSD_ELBO(MultimodalELBO):
    """mmJSD's objective, per datapoint (above).

    :param float beta: β ≥ 0, the weight of the JS divergence.
    :param int num_particles: K ≥ 1 draws per expert, averaged in the reconstruction.
    """

    def __init__(self, beta: float = BETA.default, num_particles: int = NUM_PARTICLES.default):
        super().__init__(num_particles=NUM_PARTICLES.validate(num_particles))
        self.beta = BETA.validate(beta)

    def plan(self, posterior: StratifiablePosterior) -> Optional[StrataPlan]:
        """Every observed expert a stratum, weighted 1/|o| (:func:`~pyro_mm.infer.mixture_plan`); a
        ``TypeError`` for any posterior but the mixture of the unimodal Gaussian experts without
        the prior."""
        if not _gaussian_mixture_of_experts(posterior):
            raise TypeError(
                "TraceMMJSD_ELBO needs the mixture of the unimodal Gaussian experts (MixtureOfExpertsGuide), the "
                f"guide has a {type(posterior).__name__}"
            )
        return mixture_plan(posterior, None, self.decoded_rows)

    def per_datapoint(self, traces: StratifiedTraces, surrogate: bool) -> Estimate:
        """``Σ_s ω_s mean_k reconstruction − β JS`` per datapoint (its own gradient)."""
        strat = stratified_posterior(traces, type(self).__name__)
        source = strat.source
        used = strat.weights > 0
        per_stratum = observed_log_likelihood(traces).mean(0)  # [S, B]
        log_likelihood = torch.where(used, strat.weights * per_stratum, per_stratum.new_zeros(())).sum(0)
        divergence = latent_scale(traces, jensen_shannon(source.expert_loc, source.expert_scale, source.observed))
        with torch.no_grad():
            self.last_terms = {"log_likelihood": log_likelihood.mean(), "jensen_shannon": divergence.mean()}
        return Estimate(log_likelihood - self.beta * divergence)
