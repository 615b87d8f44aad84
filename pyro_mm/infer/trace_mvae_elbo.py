"""The MVAE sub-sampled training objective.

For a product-of-experts posterior (with the prior expert),

.. math::

    \\mathcal{L}_{MVAE}(X) = \\mathrm{ELBO}_{full}(X) + \\sum_m \\mathrm{ELBO}_{\\{m\\}}(x_m)
        + \\sum_{j=1}^{k} \\mathrm{ELBO}_{S_j}(x_{S_j}),

    \\mathrm{ELBO}_S(x_S) = \\mathbb{E}_{q(z|x_S)}\\Big[\\sum_{m\\in S,\\ \\text{observed}}
        \\log p_\\theta(x_m | z)\\Big] - \\beta\\,\\mathrm{KL}(q(z | x_S) \\,\\|\\, p(z)),

with S_j drawn uniformly from the non-empty subsets of all M modalities at every step. Unlike the
mixture bound, a term reconstructs only its own subset. Each term is one stratum of the
posterior (all terms are computed in one vectorised pass, the importance-weighted bound of
:mod:`~pyro_mm.infer.importance_weighted` with ``reconstruct_subset_only``); a term whose subset
has no observed member is dropped for that sample. With K > 1 each term is an IWAE bound. Since a
term reconstructs only its subset, the model decodes modality m only on the terms that can
contain it (the joint term, {m} and the random subsets;
:class:`~pyro_mm.infer.SelectiveDecodeMessenger`).

β (default 1) weighs every term's KL; with KL annealing the weight rises linearly from 0 to β over
``annealing_steps`` gradient steps (each call of :meth:`loss_and_grads` or
:meth:`differentiable_loss` is one step; :meth:`loss` does not count). The step reached is the
objective's training state (:meth:`TraceMVAE_ELBO.state_dict`), which a resumed training restores.

Example — plain :class:`pyro.infer.SVI` with pyro_mm's model and product-of-experts guide,
"sound" missing for about a third of the samples::

    import pyro, torch
    from pyro.infer import SVI
    from pyro_mm.batch import MultimodalBatch
    from pyro_mm.guides import ProductOfExpertsGuide
    from pyro_mm.infer import TraceMVAE_ELBO, initialise
    from pyro_mm.modality import Modality
    from pyro_mm.models import SharedLatentModel
    from pyro_mm.nets import MLPDecoder, MLPEncoder

    mods = [Modality(n, (8,), MLPEncoder((8,), 4, (16,)), MLPDecoder(4, (8,), (16,)), "bernoulli")
            for n in ("image", "sound")]
    model, guide = SharedLatentModel(mods, z_dim=4), ProductOfExpertsGuide(mods)
    mask = torch.rand(64, 2) > torch.tensor([-1.0, 0.33])
    batch = MultimodalBatch({n: torch.rand(64, 8).round() for n in ("image", "sound")}, mask)
    initialise(model, guide, batch)  # nothing to set here (MEME's pseudo-samples need it)
    elbo = TraceMVAE_ELBO(num_random_subsets=1, annealing_steps=100)
    svi = SVI(model, guide, pyro.optim.Adam({"lr": 1e-3}), loss=elbo)
    losses = [svi.step(batch) for _ in range(3)]
    assert elbo.state_dict() == {"step": 3}  # the KL annealing's position

Reference: Wu & Goodman, *Multimodal Generative Models for Scalable Weakly-Supervised Learning*,
NeurIPS 2018.
"""

from __future__ import annotations

from typing import Dict, Optional

import torch

from ..protocols import MixturePosterior, StratifiablePosterior, conforms
from ..subsets import PowerSet
from ..options import ANNEALING_STEPS, BETA, ESTIMATOR, NUM_RANDOM_SUBSETS
from .importance_weighted import importance_weighted_bound
from .multimodal_elbo import Estimate, MultimodalELBO
from .strata_plan import StrataPlan
from .stratified_traces import StratifiedTraces

__all__ = ["TraceMVAE_ELBO"]


class TraceMVAE_ELBO(MultimodalELBO):
    """MVAE objective: joint + unimodal + ``num_random_subsets`` random-subset ELBOs.

    The guide's shared posterior must be a product of experts: a
    :class:`~pyro_mm.protocols.StratifiablePosterior` that is not a mixture (e.g.
    :class:`~pyro_mm.distributions.ProductOfExperts`).

    :param int num_particles: K particles per term.
    :param int num_random_subsets: k random subsets per sample per step (0 for none).
    :param int annealing_steps: steps over which the KL weight rises from 0 to β (0: β throughout).
    :param str estimator: ``"iwae"`` or ``"dreg"``.
    :param float beta: β ≥ 0, the KL weight (1: the objective itself).
    """

    #: a term reconstructs only its own subset
    reconstruct_subset_only = True

    def __init__(self, num_particles: int = 1, num_random_subsets: int = 0,
                 annealing_steps: int = 0, estimator: str = "iwae", beta: float = 1.0):
        super().__init__(num_particles=num_particles)
        self.estimator = ESTIMATOR.validate(estimator)
        self.beta = BETA.validate(beta)
        self.num_random_subsets = NUM_RANDOM_SUBSETS.validate(num_random_subsets)
        self.annealing_steps = ANNEALING_STEPS.validate(annealing_steps)
        self.step = 0

    def latent_weight(self) -> float:
        """β · min(1, step / annealing_steps)."""
        if self.annealing_steps == 0:
            return self.beta
        return self.beta * min(1.0, self.step / self.annealing_steps)

    def state_dict(self):
        """``{"step": the gradient steps taken}`` (the annealing schedule's position)."""
        return {"step": self.step}

    def load_state_dict(self, state):
        super().load_state_dict(state)
        self.step = int(state.get("step", 0))

    # --- the strata: one per term -----------------------------------------------------------------
    def plan(self, posterior: StratifiablePosterior) -> StrataPlan:
        """The terms as strata: the joint (stratum 0), the M singletons and the random subsets,
        each weighted one where its subset has an observed member; decoded where it reconstructs
        (:meth:`decoded_cells`) and only for the samples that observe each modality."""
        if conforms(posterior, MixturePosterior):
            raise TypeError(
                f"TraceMVAE_ELBO needs a product-of-experts posterior, the guide has a {type(posterior).__name__}"
            )
        observed = posterior.observed
        B, M = observed.shape
        full = observed[None]
        singles = torch.eye(M, dtype=torch.bool, device=observed.device)[:, None, :].expand(M, B, M)
        parts = [full, singles]
        if self.num_random_subsets:
            everything = torch.ones_like(observed)
            parts.append(PowerSet(M).sample(everything, self.num_random_subsets)[0])
        subsets = torch.cat(parts, 0)
        weights = (subsets & observed).any(-1).to(posterior.mean.dtype)
        return StrataPlan(subsets, weights, decoded=self.decoded_cells(posterior), rows=self.decoded_rows(posterior))

    def decoded_cells(self, posterior: StratifiablePosterior) -> Optional[Dict[str, torch.Tensor]]:
        """Modality name -> boolean ``[K, S]``: modality m is reconstructed by the joint term
        (stratum 0), by {m} (stratum 1 + m) and possibly by the random subsets (the last
        strata); never by another singleton."""
        M = len(posterior.names)
        S = 1 + M + self.num_random_subsets
        cells = {}
        for i, n in enumerate(posterior.names):
            used = torch.ones(self.num_particles, S, dtype=torch.bool)
            used[:, 1:1 + M] = False
            used[:, 1 + i] = True
            cells[n] = used
        return cells

    # --- the bound --------------------------------------------------------------------------------
    def per_datapoint(self, traces: StratifiedTraces, surrogate: bool) -> Estimate:
        """The sum of the terms' importance-weighted bounds, each reconstructing its subset, with
        this step's KL weight (:meth:`latent_weight`)."""
        estimate, self.last_terms = importance_weighted_bound(
            traces, surrogate, self.estimator, self.latent_weight(),
            reconstruct_subset_only=self.reconstruct_subset_only, owner=type(self).__name__)
        return estimate

    def differentiable_loss(self, model, guide, *args, **kwargs):
        """As :meth:`MultimodalELBO.differentiable_loss`; each call is one step of the KL annealing."""
        loss = super().differentiable_loss(model, guide, *args, **kwargs)
        self.step += 1
        return loss
