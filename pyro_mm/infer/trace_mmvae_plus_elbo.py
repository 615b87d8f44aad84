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

This is the mixture bound of :class:`~pyro_mm.infer.TraceMixture_ELBO` with ``density="mixture"``
(the same strata, :func:`~pyro_mm.infer.trace_mixture_elbo.mixture_plan`) run on a guide with one
private site per modality (:class:`~pyro_mm.guides.PrivateLatentGuide`): the strata of the shared
posterior extend to the private sites (:class:`~pyro_mm.protocols.StratumFollower`,
:class:`~pyro_mm.infer.StratifyMessenger`), and the importance weight leaves out the cells drawn
from r_n (their ``in_bound`` is false: :mod:`~pyro_mm.infer.importance_weighted`). The class checks
that the guide has those sites.

The auxiliary priors r_m are parameters of the guide (a :class:`pyro.nn.PyroModule`), registered
with Pyro's param store at every call of the guide; they start at the prior and need no data
(:func:`~pyro_mm.infer.initialise` sets nothing for them).

Example — plain :class:`pyro.infer.SVI`, "sound" missing for about a third of the samples::

    import pyro, torch
    from pyro.infer import SVI
    from pyro_mm.batch import MultimodalBatch
    from pyro_mm.guides import PrivateLatentGuide
    from pyro_mm.infer import TraceMMVAEPlus_ELBO, initialise
    from pyro_mm.modality import Modality
    from pyro_mm.models import PrivateLatentModel
    from pyro_mm.nets import MLPDecoder, MLPEncoder

    z_dim, private_dim = 4, 2  # the networks read and write [z, w_m]: 6 entries
    mods = [Modality(n, (8,), MLPEncoder((8,), 6, (16,)), MLPDecoder(6, (8,), (16,)), "bernoulli")
            for n in ("image", "sound")]
    model = PrivateLatentModel(mods, z_dim, private_dim)
    guide = PrivateLatentGuide(mods, z_dim, private_dim)
    mask = torch.rand(64, 2) > torch.tensor([-1.0, 0.33])
    batch = MultimodalBatch({n: torch.rand(64, 8).round() for n in ("image", "sound")}, mask)
    initialise(model, guide, batch)  # nothing to set: r_m starts at the prior
    elbo = TraceMMVAEPlus_ELBO(num_particles=3, estimator="dreg")
    svi = SVI(model, guide, pyro.optim.Adam({"lr": 1e-2}), loss=elbo)
    before = guide.aux_logits["sound"].detach().clone()
    losses = [svi.step(batch) for _ in range(3)]
    assert not torch.equal(guide.aux_logits["sound"], before)  # r_sound trains under SVI

Reference: Palumbo, Daunhawer, Vogt, *MMVAE+: Enhancing the Generative Quality of Multimodal VAEs
without Compromises*, ICLR 2023.
"""

from __future__ import annotations

from typing import Optional

from ..protocols import StratifiablePosterior
from ..options import BETA, ESTIMATOR, NUM_SUBSETS
from .importance_weighted import importance_weighted_bound
from .multimodal_elbo import Estimate, MultimodalELBO
from .strata_plan import StrataPlan
from .stratified_traces import StratifiedTraces
from .trace_mixture_elbo import mixture_plan

__all__ = ["TraceMMVAEPlus_ELBO"]


class TraceMMVAEPlus_ELBO(MultimodalELBO):
    """MMVAE+'s stratified bound, per datapoint.

    :param int num_particles: K particles per stratum.
    :param str estimator: ``"iwae"`` or ``"dreg"`` (doubly reparameterised, over z and every w_m).
    :param int num_subsets: draw this many observed modalities per sample per step (``None``: all).
    :param float beta: β ≥ 0, the weight of the latent terms.
    """

    #: every stratum reconstructs every observed modality
    reconstruct_subset_only = False
    #: log q(z | X) in the weight is the mixture density
    density = "mixture"

    def __init__(self, num_particles: int = 1, estimator: str = "iwae", num_subsets: Optional[int] = None,
                 beta: float = 1.0):
        super().__init__(num_particles=num_particles)
        self.estimator = ESTIMATOR.validate(estimator)
        self.beta = BETA.validate(beta)
        self.num_subsets = NUM_SUBSETS.validate(num_subsets)

    def plan(self, posterior: StratifiablePosterior) -> Optional[StrataPlan]:
        """The mixture's components as strata (:func:`~pyro_mm.infer.trace_mixture_elbo.mixture_plan`),
        which the private sites follow."""
        return mixture_plan(posterior, self.num_subsets, self.decoded_rows)

    def per_datapoint(self, traces: StratifiedTraces, surrogate: bool) -> Estimate:
        """The stratified importance-weighted bound with the mixture density, the private latents'
        terms in the weight of their own stratum only."""
        strat = traces.posterior
        if strat is not None and len(traces.followers) < len(strat.names):
            raise ValueError(
                f"TraceMMVAEPlus_ELBO needs a guide with one private latent site per modality, following the shared "
                f"posterior (PrivateLatentGuide); the guide has {traces.followers or 'none'} for modalities "
                f"{list(strat.names)}"
            )
        estimate, self.last_terms = importance_weighted_bound(
            traces, surrogate, self.estimator, self.beta, mixture_density=True, owner=type(self).__name__)
        return estimate
