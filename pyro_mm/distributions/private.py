"""The posterior of a modality-private latent w_m, with its auxiliary prior (MMVAE+).

In MMVAE+ (Palumbo et al. 2023) every modality m has, besides the shared z, a private latent w_m
with posterior q_φ(w_m | x_m) and a learned *auxiliary prior* r_m(w_m). As a Pyro distribution,
:class:`PrivatePosterior` draws

.. math:: w_m \\sim q_\\phi(w_m \\mid x_m) \\text{ where } x_m \\text{ is observed}, \\qquad
          w_m \\sim r_m(w_m) \\text{ where it is missing},

so that a cross-modal prediction of x_m (x_m hidden from the guide) uses a private code from
r_m, and an importance-sampled likelihood integrates a missing w_m out with r_m as its proposal.

Stratified (:meth:`PrivatePosterior.stratify`, by the ELBO's strata of the shared posterior), the
draw in stratum s is from q(w_m | x_m) when m belongs to the stratum's subset S_s and from r_m
otherwise: in MMVAE+'s stratum m, w_m comes from its posterior and every other w_n from r_n. The
draws from r_n feed only the cross-modal reconstructions log p_θ(x_n | z, w̃_n): they are not part
of the variational posterior of the bound, and :attr:`PrivatePosterior.in_bound` marks which
cells are (the ELBO leaves the others' log p(w) − log q(w) out of its weight).
"""

from __future__ import annotations

from typing import Optional

import torch
from pyro.distributions import TorchDistribution, constraints

from .families import latent_family

__all__ = ["PrivatePosterior"]


class PrivatePosterior(TorchDistribution):
    """q(w_m | x_m) where ``use_posterior``, the auxiliary prior r_m elsewhere; a
    :class:`~pyro_mm.protocols.StratumFollower` of the shared posterior's strata.

    :param loc: ``[B, D_w]`` posterior locations (encoder output; any value where x_m is missing).
    :param scale: ``[B, D_w]`` posterior scales.
    :param use_posterior: boolean ``[..., B]``: draw from the posterior (else from r_m); the
        observation mask of m, or for the strata ``[S, B]`` that mask and m ∈ S_s.
    :param aux_loc: ``[D_w]`` location of r_m.
    :param aux_scale: ``[D_w]`` scale of r_m.
    :param int modality: the column of m in the strata subsets ``[S, B, M]``.
    :param expert_family: ``"normal"`` or ``"laplace"`` (posterior and r_m alike).
    :param in_bound: ``None`` (every draw is a proposal of the bound: unstratified) or boolean
        ``[..., B]``, the draws that belong to the bound's variational posterior.
    """

    arg_constraints = {}
    support = constraints.real_vector
    has_rsample = True

    def __init__(self, loc: torch.Tensor, scale: torch.Tensor, use_posterior: torch.Tensor, aux_loc: torch.Tensor,
                 aux_scale: torch.Tensor, modality: int, expert_family="normal",
                 in_bound: Optional[torch.Tensor] = None, batch_shape=None, validate_args=None):
        if loc.shape != scale.shape or loc.dim() != 2:
            raise ValueError(f"private loc and scale must share a shape [B, D_w], got {tuple(loc.shape)} and "
                             f"{tuple(scale.shape)}")
        if aux_loc.shape != loc.shape[-1:] or aux_scale.shape != loc.shape[-1:]:
            raise ValueError(f"the auxiliary prior must have shape [{loc.shape[-1]}], got {tuple(aux_loc.shape)} and "
                             f"{tuple(aux_scale.shape)}")
        if use_posterior.shape[-1:] != loc.shape[:1]:
            raise ValueError(f"use_posterior must end in the batch size {loc.shape[0]}, got {tuple(use_posterior.shape)}")
        self.post_loc, self.post_scale = loc, scale
        self.use_posterior = use_posterior
        self.aux_loc, self.aux_scale = aux_loc, aux_scale
        self.modality = int(modality)
        self.expert_family = latent_family(expert_family)
        self.in_bound = in_bound
        if batch_shape is None:
            batch_shape = use_posterior.shape
        super().__init__(torch.Size(batch_shape), loc.shape[-1:], validate_args=validate_args)

    def _params(self, detach: bool = False):
        """``(loc, scale) [..., B, D_w]`` of the distribution each cell is drawn from."""
        loc, scale, aux_loc, aux_scale = self.post_loc, self.post_scale, self.aux_loc, self.aux_scale
        if detach:
            loc, scale, aux_loc, aux_scale = loc.detach(), scale.detach(), aux_loc.detach(), aux_scale.detach()
        use = self.use_posterior[..., None]
        return torch.where(use, loc, aux_loc), torch.where(use, scale, aux_scale)

    def stratify(self, subsets: torch.Tensor, weights: torch.Tensor) -> "PrivatePosterior":
        """The draws for the strata ``subsets [S, B, M]`` of the shared posterior: from q(w_m | x_m)
        in the strata whose subset holds m (and where m is observed), from r_m elsewhere; only the
        former are in the bound."""
        use = subsets[..., self.modality] & self.use_posterior
        return PrivatePosterior(self.post_loc, self.post_scale, use, self.aux_loc, self.aux_scale, self.modality,
                                self.expert_family, in_bound=use)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(PrivatePosterior, _instance)
        batch_shape = torch.Size(batch_shape)
        PrivatePosterior.__init__(new, self.post_loc, self.post_scale, self.use_posterior, self.aux_loc,
                                  self.aux_scale, self.modality, self.expert_family, self.in_bound, batch_shape,
                                  validate_args=False)
        return new

    @property
    def mean(self) -> torch.Tensor:
        return self._params()[0].expand(self.batch_shape + self.event_shape)

    def rsample(self, sample_shape=torch.Size()) -> torch.Tensor:
        loc, scale = self._params()
        return self.expert_family.rsample(loc, scale, self._extended_shape(sample_shape))

    def log_prob(self, value: torch.Tensor, detach: bool = False) -> torch.Tensor:
        """The density each cell was drawn from; ``detach`` rebuilds it from detached parameters
        (the DReG estimator)."""
        loc, scale = self._params(detach)
        return self.expert_family.log_prob(value, loc, scale)

    def entropy(self) -> torch.Tensor:
        return self.expert_family.entropy(self._params()[1]).expand(self.batch_shape)
