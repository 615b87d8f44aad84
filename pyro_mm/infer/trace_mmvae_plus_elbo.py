"""MMVAE+: the stratified mixture bound with modality-private latents and auxiliary priors.

With a shared latent z (a mixture-of-experts posterior), a private latent w_m per modality with
posterior q(w_m | x_m), prior p(w_m) and a learned auxiliary prior r_m, stratum m draws
z_k ~ q(z | x_m), w_{m,k} ~ q(w_m | x_m) and every other w̃_{n,k} ~ r_n, and

.. math::

    lw_{m,k} = \\log p_\\theta(x_m \\mid z_k, w_{m,k})
        + \\sum_{n \\ne m,\\ \\text{observed}} \\log p_\\theta(x_n \\mid z_k, \\tilde w_{n,k})
        + \\beta\\Big[\\log p(z_k) + \\log p(w_{m,k}) - \\log q(z_k \\mid X) - \\log q(w_{m,k} \\mid x_m)\\Big],

    \\mathcal{L}(X) = \\frac{1}{|o|}\\sum_{m\\ \\mathrm{observed}} \\mathrm{LME}_k\\, lw_{m,k},

with q(z | X) the mixture of the observed modalities' experts. The cross-modal reconstructions
use private codes from r_n, not from x_n's own posterior: the shared z must carry everything the
modalities have in common, and w_n whatever x_n has that no other modality can predict — the
remedy for the generative-quality gap of mixture-based bounds (Daunhawer et al. 2022). The draws
w̃_n are not part of the bound's posterior: their densities are not in the weight (they only
feed the reconstructions, and r_n learns through them).

When r_n = p(w_n) (e.g. at initialisation), E_{r_n} p(x_n | z, w̃_n) = p(x_n | z) and 𝓛 is a lower
bound on log p_θ(X) for any K (Jensen's inequality in the particles, then in the strata); a
learned r_n ≠ p(w_n) makes the cross terms an objective rather than a bound. With private latents
of size 0 it is MMVAE's bound exactly.

This is :class:`~pyro_mm.infer.TraceMixture_ELBO` with ``density="mixture"`` run on a guide with
one private site per modality (:class:`~pyro_mm.guides.PrivateLatentGuide`): the strata of the
shared posterior extend to the private sites (:class:`~pyro_mm.infer.StratifyMessenger`), and the
weight leaves out the cells drawn from r_n (:class:`~pyro_mm.infer.StratifiedELBO`). The class
checks that the guide has those sites.

Reference: Palumbo, Daunhawer, Vogt, *MMVAE+: Enhancing the Generative Quality of Multimodal VAEs
without Compromises*, ICLR 2023. (The reference code's DReG hook is registered on a tensor the
loss does not depend on, so it trains with IWAE gradients; ``estimator="dreg"`` here is the
doubly reparameterised estimator over z and w_m.)
"""

from __future__ import annotations

from typing import Optional

from .stratified_elbo import LogWeights
from .stratified_objective import StratifiedTraces
from .trace_mixture_elbo import TraceMixture_ELBO

__all__ = ["TraceMMVAEPlus_ELBO"]


class TraceMMVAEPlus_ELBO(TraceMixture_ELBO):
    """MMVAE+'s stratified bound, per datapoint.

    :param int num_particles: K particles per stratum.
    :param str estimator: ``"iwae"`` or ``"dreg"``.
    :param int num_subsets: draw this many observed modalities per sample per step (``None``: all).
    :param float beta: β ≥ 0, the weight of the latent terms.
    """

    def __init__(self, num_particles: int = 1, estimator: str = "iwae", num_subsets: Optional[int] = None,
                 beta: float = 1.0):
        super().__init__(num_particles=num_particles, num_subsets=num_subsets, estimator=estimator,
                         density="mixture", beta=beta)

    def log_weights(self, traces: StratifiedTraces) -> LogWeights:
        strat = traces.posterior
        if strat is not None and len(traces.followers) < len(strat.names):
            raise ValueError(
                f"TraceMMVAEPlus_ELBO needs a guide with one private latent site per modality, following the shared "
                f"posterior (PrivateLatentGuide); the guide has {traces.followers or 'none'} for modalities "
                f"{list(strat.names)}"
            )
        return super().log_weights(traces)
