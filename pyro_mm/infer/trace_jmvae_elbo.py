"""JMVAE-KL: joint multimodal VAE whose unimodal encoders are drawn to the joint one (Suzuki,
Nakayama & Matsuo 2016).

The guide has a joint encoder q_φ(z | X) and one unimodal encoder q_φ(z | x_m) per modality
(:class:`~pyro_mm.guides.joint_encoder.JointEncoderGuide`). For a sample b that observes every
modality (a complete row) the objective is the ELBO of the joint encoder minus α times the KL
from it to every unimodal posterior,

.. math::

    \\mathcal{L}(X) = \\mathbb{E}_{q_\\phi(z|X)}\\Big[\\sum_{m} s_m \\log p_\\theta(x_m \\mid z)\\Big]
        - \\beta\\,\\mathrm{KL}\\big(q_\\phi(z|X) \\,\\|\\, p(z)\\big)
        - \\alpha \\sum_{m=1}^{M} \\mathrm{KL}\\big(q_\\phi(z|X) \\,\\|\\, q_\\phi(z|x_m)\\big),

with s_m the modality's likelihood scale (:attr:`~pyro_mm.modality.Modality.likelihood_scale`).
Both sides of each KL(q(z|X) ‖ q(z|x_m)) get its gradient (the references detach neither): on
complete data the unimodal encoders learn through it alone.

**Missing modalities** (pyro_mm's rule; the paper trains on complete pairs only, and multivae's
JMVAE refuses incomplete data): a row with a missing modality uses the product of its observed
unimodal experts, q(z | X_o) = Π_{m∈o} q_φ(z | x_m) (no prior expert), reconstructs its observed
modalities and has no α term — its objective is the plain ELBO of that product, which trains the
unimodal encoders directly:

.. math:: \\mathcal{L}(X_o) = \\mathbb{E}_{q(z|X_o)}\\Big[\\sum_{m \\in o} s_m \\log p_\\theta(x_m \\mid z)\\Big]
          - \\beta\\,\\mathrm{KL}\\big(q(z|X_o) \\,\\|\\, p(z)\\big).

The ELBO part of either row is pyro_mm's importance-weighted bound of that posterior, one
stratum of weight one (:func:`~pyro_mm.infer.importance_weighted.importance_weighted_bound`): the
log-weight Σ_m s_m log p_θ(x_m | z) + β (log p(z) − log q(z | ·)) of the guide's draw (K = 1:
the ELBO, with the KL to the prior estimated from the draw; K > 1: the IWAE bound, log-mean-exp
over the K draws). The α term is the closed-form KL of diagonal Gaussians. At β = 1 the objective
is a lower bound on log p_θ(X_o) for every sample; a linear-Gaussian model has it in closed
form (``tests/infer/test_jmvae.py``).

.. warning:: With more than two modalities the product of unimodal posteriors that each
   approximate p(z | x_m) counts the prior once per expert (multivae's ``encode`` shares this).
   With α = 0 the unimodal encoders get no gradient from complete rows.

Defaults (ours against the references): α = 0.1 (multivae's; the official script's ``--gamma``
is 1), β = 1 (the paper's objective; multivae's ``beta`` weighs the prior KL alike), no KL
annealing (off in the official script), K = 1 (one draw, as the references).

Example — plain :class:`pyro.infer.SVI`, "sound" missing for about a third of the samples::

    import pyro, torch
    from pyro.infer import SVI
    from pyro_mm.batch import MultimodalBatch
    from pyro_mm.guides.joint_encoder import JointEncoderGuide
    from pyro_mm.infer import initialise
    from pyro_mm.infer.trace_jmvae_elbo import TraceJMVAE_ELBO
    from pyro_mm.modality import Modality
    from pyro_mm.models import SharedLatentModel
    from pyro_mm.nets import MLPDecoder, MLPEncoder

    mods = [Modality(n, (8,), MLPEncoder((8,), 4, (16,)), MLPDecoder(4, (8,), (16,)), "bernoulli")
            for n in ("image", "sound")]
    model = SharedLatentModel(mods, z_dim=4)
    guide = JointEncoderGuide(mods, z_dim=4, hidden=(16,))  # a copy of each encoder and an MLP
    mask = torch.rand(64, 2) > torch.tensor([-1.0, 0.33])
    batch = MultimodalBatch({n: torch.rand(64, 8).round() for n in ("image", "sound")}, mask)
    initialise(model, guide, batch)  # nothing to set here (MEME's pseudo-samples need it)
    svi = SVI(model, guide, pyro.optim.Adam({"lr": 1e-3}), loss=TraceJMVAE_ELBO(alpha=0.1))
    losses = [svi.step(batch) for _ in range(3)]

References:
[1] Suzuki, Nakayama, Matsuo, *Joint Multimodal Learning with Deep Generative Models*, ICLR 2017
    workshop (arXiv:1611.01891), JMVAE-kl.
[2] Senellart et al., *MultiVae: A Python package for Multimodal Variational Autoencoders on
    Partial Datasets*, JOSS 2024 (``JMVAE``: α, β, the joint encoder's architecture).
"""

from __future__ import annotations

from typing import Optional, Protocol, runtime_checkable

import torch

from ..distributions import normal_kl
from ..options import BETA, NUM_PARTICLES, real
from ..protocols import StratifiablePosterior, conforms
from .closed_form_terms import GaussianExperts, latent_scale, stratified_posterior, whole_posterior_plan
from .importance_weighted import importance_weighted_bound
from .multimodal_elbo import Estimate, MultimodalELBO
from .strata_plan import StrataPlan
from .stratified_traces import StratifiedTraces

__all__ = ["TraceJMVAE_ELBO", "JointGaussianPosterior", "ALPHA", "joint_divergence"]

#: α ≥ 0, the weight of Σ_m KL(q(z|X) ‖ q(z|x_m)) on complete rows
ALPHA = real("alpha", 0.1, "α, the weight of the KL from the joint encoder to every unimodal encoder (complete "
             "samples; the official code's default is 1)")


@runtime_checkable
class JointGaussianPosterior(GaussianExperts, Protocol):
    """A posterior of Gaussian unimodal experts with a joint encoder's Gaussian beside them, used on
    the complete rows (e.g. :class:`~pyro_mm.guides.joint_encoder.JointPosterior`).

    :ivar joint_loc: ``[B, D]`` the joint encoder's mean.
    :ivar joint_scale: ``[B, D]`` its standard deviation.
    """

    joint_loc: torch.Tensor
    joint_scale: torch.Tensor


def joint_divergence(posterior: JointGaussianPosterior) -> torch.Tensor:
    """Σ_m KL(q(z|X) ‖ q(z|x_m)) on the complete rows of a joint posterior, zero on the others, ``[B]``."""
    kl = normal_kl(posterior.joint_loc[:, None, :], posterior.joint_scale[:, None, :], posterior.expert_loc,
                   posterior.expert_scale).sum(-1)
    return torch.where(posterior.observed.all(-1), kl, kl.new_zeros(()))


class TraceJMVAE_ELBO(MultimodalELBO):
    """JMVAE-KL's objective, per datapoint (above).

    :param float alpha: α ≥ 0, the weight of Σ_m KL(q(z|X) ‖ q(z|x_m)) on complete rows.
    :param float beta: β ≥ 0, the weight of log p(z) − log q(z) (1: the ELBO).
    :param int num_particles: K ≥ 1 draws (K > 1: the IWAE bound of the ELBO part).
    """

    def __init__(self, alpha: float = ALPHA.default, beta: float = BETA.default,
                 num_particles: int = NUM_PARTICLES.default):
        super().__init__(num_particles=NUM_PARTICLES.validate(num_particles))
        self.alpha = ALPHA.validate(alpha)
        self.beta = BETA.validate(beta)

    def plan(self, posterior: StratifiablePosterior) -> Optional[StrataPlan]:
        """One stratum, the guide's posterior of every observed modality (the joint encoder's on
        complete rows); a ``TypeError`` for a posterior without a joint encoder."""
        if not conforms(posterior, JointGaussianPosterior):
            raise TypeError(
                f"TraceJMVAE_ELBO needs a joint posterior (joint_loc and joint_scale beside the unimodal experts, e.g. "
                f"JointEncoderGuide's), the guide has a {type(posterior).__name__}"
            )
        return whole_posterior_plan(posterior, self.decoded_rows)

    def per_datapoint(self, traces: StratifiedTraces, surrogate: bool) -> Estimate:
        """``LME_k [log-likelihood + β (log p − log q)] − α Σ_m KL`` per datapoint: the
        importance-weighted bound of the one stratum minus the α term (its own gradient)."""
        posterior = stratified_posterior(traces, type(self).__name__).source
        elbo, terms = importance_weighted_bound(traces, surrogate, "iwae", self.beta, owner=type(self).__name__)
        divergence = latent_scale(traces, joint_divergence(posterior))
        with torch.no_grad():
            self.last_terms = {**terms, "joint_kl": divergence.mean()}
        return Estimate(elbo.value - self.alpha * divergence)
