"""The sub-sampled mixture bound of the mixture-based multimodal VAEs (MMVAE, MoPoE-VAE).

For a guide whose posterior is a mixture over a subset family 𝒮 (a
:class:`~pyro_mm.distributions.SubsetMixture`), one reparameterised draw (K with importance
weighting) is taken from every available component — the strata — and the bound is

.. math::

    \\mathcal{L}(X) = \\sum_{S\\ \\mathrm{avail}} \\tilde\\omega_S(o)\\;
        \\mathrm{LME}_{k=1..K}\\Big[\\log p_\\theta(X_o \\mid z_{S,k}) + \\beta\\big(\\log p(z_{S,k})
        - \\log q(z_{S,k})\\big)\\Big], \\qquad z_{S,k} \\sim q(z \\mid x_S),

where every observed modality X_o is reconstructed from every stratum, and ``log q`` is

* ``density="mixture"``: the mixture density log q(z | X) (MMVAE's stratified IWAE, "looser");
* ``density="subset"``: the stratum's own log q(z | x_S); with K = 1 this is
  E_{q(z|x_S)} log p_θ(X_o | z) − KL(q(z | x_S) ‖ p(z)) per subset — the sub-sampled mixture
  bound of Daunhawer et al. and MoPoE-VAE.

β (default 1) weighs the latent terms: β > 1 presses the posteriors towards the prior (better
unconditional samples, worse reconstructions; the trade-off Daunhawer et al. 2022 chart). With
``num_subsets=k`` only k available subsets per sample are drawn (i.i.d. from ω̃, each weighted
1/k), an unbiased estimate of the bound whose cost does not grow with the size of the family.

The strata are the mixture's own (any :class:`~pyro_mm.protocols.MixturePosterior`,
:func:`mixture_plan`) and the bound the importance-weighted bound of
:mod:`~pyro_mm.infer.importance_weighted`. A guide without a mixture (a product of experts, a
unimodal Normal) gives the ordinary per-datapoint IWAE bound (K = 1: the ELBO).

.. warning:: Sub-sampled mixture bounds are capped below log p_θ(X) whenever the modalities not
   in S carry information x_S cannot predict (Daunhawer et al. 2022); see
   :func:`pyro_mm.linear_gaussian.LinearGaussianModel.subsampling_gap` for the closed form.

Example — plain :class:`pyro.infer.SVI`, your own Pyro model with pyro_mm's MMVAE guide, "sound"
missing for about a third of the samples::

    import pyro, torch
    import pyro.distributions as dist
    from pyro import poutine
    from pyro.infer import SVI
    from pyro_mm.batch import MultimodalBatch
    from pyro_mm.guides import MixtureOfExpertsGuide
    from pyro_mm.infer import TraceMixture_ELBO, initialise
    from pyro_mm.modality import Modality, decode
    from pyro_mm.nets import MLPDecoder, MLPEncoder

    mods = [Modality(n, (8,), MLPEncoder((8,), 4, (16,)), MLPDecoder(4, (8,), (16,)), "bernoulli")
            for n in ("image", "sound")]
    decoders = torch.nn.ModuleDict({m.name: m.decoder for m in mods})

    def model(batch):  # the contract: a data plate, one masked site per modality, named after it
        pyro.module("decoders", decoders)
        with pyro.plate("data", batch.batch_size, dim=-1):
            z = pyro.sample("z", dist.Normal(torch.zeros(4), 1.0).to_event(1))
            for m in mods:
                with poutine.mask(mask=batch.observed(m.name)):
                    likelihood = decode(m.name, m.decoder, z, lambda p, m=m: m.likelihood(p, m.event_dim))
                    pyro.sample(m.name, likelihood, obs=batch[m.name])

    guide = MixtureOfExpertsGuide(mods)
    mask = torch.rand(64, 2) > torch.tensor([-1.0, 0.33])
    batch = MultimodalBatch({n: torch.rand(64, 8).round() for n in ("image", "sound")}, mask)
    initialise(model, guide, batch)  # nothing to set here (MEME's pseudo-samples need it)
    svi = SVI(model, guide, pyro.optim.Adam({"lr": 1e-3}), loss=TraceMixture_ELBO(num_particles=2))
    losses = [svi.step(batch) for _ in range(3)]

References:
[1] Shi, Siddharth, Paige, Torr, NeurIPS 2019 (MMVAE).
[2] Sutter, Daunhawer, Vogt, *Generalized Multimodal ELBO*, ICLR 2021 (MoPoE-VAE).
[3] Daunhawer, Sutter, Chin-Cheong, Palumbo, Vogt, *On the Limitations of Multimodal VAEs*,
    ICLR 2022.
"""

from __future__ import annotations

from typing import Callable, Dict, Optional

import torch

from ..protocols import MixturePosterior, StratifiablePosterior, conforms
from ..options import BETA, ESTIMATOR, NUM_SUBSETS
from .importance_weighted import importance_weighted_bound
from .multimodal_elbo import Estimate, MultimodalELBO
from .strata_plan import StrataPlan
from .stratified_traces import StratifiedTraces

__all__ = ["TraceMixture_ELBO", "mixture_plan"]

DENSITIES = ("mixture", "subset")


def mixture_plan(posterior: StratifiablePosterior, num_subsets: Optional[int],
                 rows: Callable[[StratifiablePosterior], Optional[Dict[str, torch.Tensor]]]) -> Optional[StrataPlan]:
    """The strata of a mixture posterior: every available component weighted ω̃ (``num_subsets``
    ``None``) or ``num_subsets`` components per sample drawn from ω̃, each weighted
    ``1 / num_subsets``; every stratum reconstructs every observed modality, decoded for the
    samples ``rows(posterior)`` that observe it. ``None`` (unstratified) for a posterior that is
    not a :class:`~pyro_mm.protocols.MixturePosterior`."""
    if not conforms(posterior, MixturePosterior):
        return None
    subsets, weights = posterior.strata(num_subsets)
    return StrataPlan(subsets, weights, rows=rows(posterior))


class TraceMixture_ELBO(MultimodalELBO):
    """Stratified (sub-sampled) mixture bound, per datapoint.

    :param int num_particles: K particles per stratum (log-mean-exp inside each stratum).
    :param int num_subsets: draw this many available subsets per sample per step (``None``: all).
    :param str estimator: ``"iwae"`` or ``"dreg"``.
    :param str density: ``"mixture"`` (MMVAE) or ``"subset"`` (MoPoE / Daunhawer family).
    :param float beta: β ≥ 0, the weight of log p(z) − log q(z) (1: the bound).
    """

    #: every stratum reconstructs every observed modality
    reconstruct_subset_only = False

    def __init__(self, num_particles: int = 1, num_subsets: Optional[int] = None,
                 estimator: str = "iwae", density: str = "mixture", beta: float = 1.0):
        super().__init__(num_particles=num_particles)
        self.estimator = ESTIMATOR.validate(estimator)
        self.beta = BETA.validate(beta)
        self.num_subsets = NUM_SUBSETS.validate(num_subsets)
        if density not in DENSITIES:
            raise ValueError(f"density must be one of {DENSITIES}, got {density!r}")
        self.density = density

    def plan(self, posterior: StratifiablePosterior) -> Optional[StrataPlan]:
        """The mixture's components as strata (:func:`mixture_plan`)."""
        return mixture_plan(posterior, self.num_subsets, self.decoded_rows)

    def per_datapoint(self, traces: StratifiedTraces, surrogate: bool) -> Estimate:
        """The stratified importance-weighted bound, log q the mixture density or the stratum's own."""
        estimate, self.last_terms = importance_weighted_bound(
            traces, surrogate, self.estimator, self.beta, mixture_density=self.density == "mixture",
            owner=type(self).__name__)
        return estimate
