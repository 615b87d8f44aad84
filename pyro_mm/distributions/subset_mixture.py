"""Mixtures of subset posteriors: q(z | X) = Σ_{S avail} ω̃_S q(z | x_S).

Each component is the product of experts of a subset S of the observed modalities (optionally
with the prior expert). Two members of this family name the classic methods:

* MMVAE (Shi et al. 2019): the singleton family, no prior expert — a mixture of experts (MoE);
* MoPoE-VAE (Sutter et al. 2021): the power set, the prior expert only in the full set, as the
  reference implementation does — a mixture of products of experts.

As a Pyro distribution, ``rsample`` draws one component per sample from ω̃ (a constant, so the
draw stays reparameterised in the experts) and ``log_prob`` is the mixture density

.. math:: \\log q(z|X) = \\log \\sum_{S\\,\\mathrm{avail}} \\tilde\\omega_S\\, q(z | x_S),

computed by logsumexp over the available components; unavailable components get weight zero
(``−inf`` in log space, selected with ``torch.where`` so no gradient reaches them).

The mixture-based ELBOs do not sample it this way: they call :meth:`SubsetMixture.strata` and
draw from every (or ``k`` sampled) available component at once — stratified sampling, laid out
along a strata dimension (see :class:`~pyro_mm.distributions.StratifiedPosterior`).

References: Shi, Siddharth, Paige, Torr, *Variational Mixture-of-Experts Autoencoders for
Multi-Modal Deep Generative Models*, NeurIPS 2019; Sutter, Daunhawer, Vogt, *Generalized
Multimodal ELBO*, ICLR 2021.
"""

from __future__ import annotations

from typing import Optional, Tuple

import torch

from ..subsets import SubsetFamily
from .families import NORMAL, latent_family
from .product_of_experts import ExpertPosterior

__all__ = ["SubsetMixture"]

_PRIOR_RULES = ("never", "full", "always")


class SubsetMixture(ExpertPosterior):
    """Mixture over the available subsets of a :class:`~pyro_mm.subsets.SubsetFamily` of
    products of Gaussian experts (a :class:`~pyro_mm.protocols.MixturePosterior`).

    :param expert_loc: ``[B, M, D]`` expert means.
    :param expert_scale: ``[B, M, D]`` expert standard deviations.
    :param observed: boolean ``[B, M]`` observation mask.
    :param SubsetFamily family: the subsets and their weights ω.
    :param str prior_expert: ``"never"``, ``"full"`` (only in the subset of all M modalities) or
        ``"always"``.
    :param names: modality names of the M columns.
    :param expert_family: ``"normal"`` (default) or ``"laplace"`` experts; a Laplace mixture's
        subsets must be single modalities (no closed-form product), without the prior expert.
    """

    def __init__(self, expert_loc, expert_scale, observed, family: SubsetFamily,
                 prior_expert: str = "never", names=None, batch_shape=None, validate_args=None,
                 expert_family="normal"):
        if prior_expert not in _PRIOR_RULES:
            raise ValueError(f"prior_expert must be one of {_PRIOR_RULES}, got {prior_expert!r}")
        if latent_family(expert_family) is not NORMAL and (prior_expert != "never" or family.largest_subset() > 1):
            raise ValueError(
                f"a mixture of {latent_family(expert_family).name} experts takes single-modality subsets without the "
                f"prior expert (no closed-form product); got subsets of up to {family.largest_subset()} "
                f"modalities and prior_expert={prior_expert!r}"
            )
        if family.num_modalities != observed.shape[-1]:
            raise ValueError(
                f"the subset family covers {family.num_modalities} modalities but the experts "
                f"have {observed.shape[-1]}"
            )
        self.family = family
        self.prior_expert = prior_expert
        super().__init__(expert_loc, expert_scale, observed, names, batch_shape, validate_args, expert_family)
        self._components = {}
        self._member_strata = None  # the subsets of strata(None): the family's members
        if batch_shape is None and self._validate_args and observed.device.type == "cpu":  # a fresh mixture: coverage
            stranded = ~family.available(observed).any(0)
            if stranded.any():
                rows = stranded.nonzero().flatten()[:5].tolist()
                raise ValueError(
                    f"{int(stranded.sum())} sample(s) have no available subset in the family "
                    f"(first: {rows}); a subset is available only when all its members are observed"
                )

    def subset_prior_expert(self, subsets):
        if self.prior_expert == "full":
            return subsets.all(-1)
        return self.prior_expert == "always"

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(SubsetMixture, _instance)
        SubsetMixture.__init__(new, self.expert_loc, self.expert_scale, self.observed, self.family,
                               self.prior_expert, self.names, torch.Size(batch_shape), validate_args=False,
                               expert_family=self.expert_family)
        return new

    # --- the mixture ----------------------------------------------------------------------------
    def log_weights(self) -> torch.Tensor:
        """log ω̃ ``[C, B]`` over the family's members (``−inf`` where unavailable)."""
        w = self.family.renormalised_weights(self.observed, self.expert_loc.dtype)
        return torch.where(w > 0, w.log(), torch.full((), -float("inf"), dtype=w.dtype, device=w.device))

    @property
    def mean(self) -> torch.Tensor:
        """Σ_S ω̃_S μ_S, ``[B, D]``."""
        loc, _ = self.all_components()
        return (self.log_weights().exp()[..., None] * loc).sum(0).expand(self.batch_shape + self.event_shape)

    def component_params(self, subsets: torch.Tensor, detach: bool = False):
        """As :meth:`ExpertPosterior.component_params`; for the strata of every member
        (:meth:`strata` with ``num_subsets=None``) these are the components, computed once."""
        if subsets is self._member_strata:
            return self.all_components(detach)
        return super().component_params(subsets, detach)

    def all_components(self, detach: bool = False) -> Tuple[torch.Tensor, torch.Tensor]:
        """``(loc, scale) [C, B, D]`` of every member of the family (computed once per instance
        and ``detach`` flag: the mean, the density and the samples share them)."""
        if detach not in self._components:
            members = self.family.members(self.observed.device)[:, None, :]  # [C, 1, M]
            self._components[detach] = super().component_params(members, detach)
        return self._components[detach]

    def log_prob(self, value: torch.Tensor, detach: bool = False) -> torch.Tensor:
        """Mixture density log q(z | X) of ``value [..., B, D]``; ``detach`` rebuilds it from
        detached experts (the DReG estimator)."""
        loc, scale = self.all_components(detach)  # [C, B, D]
        log_q = self.expert_family.log_prob(value[..., None, :, :], loc, scale)  # [..., C, B]
        return (log_q + self.log_weights()).logsumexp(-2)

    def rsample(self, sample_shape=torch.Size()) -> torch.Tensor:
        shape = self._extended_shape(sample_shape)[:-1]  # [..., B]
        probs = self.family.renormalised_weights(self.observed, torch.float64).T  # [B, C]
        n = shape.numel() // shape[-1]
        idx = torch.multinomial(probs, n, replacement=True).T.reshape(shape)  # [..., B]
        loc, scale = self.all_components()
        batch = torch.arange(shape[-1], device=idx.device)
        return self.expert_family.rsample(loc[idx, batch], scale[idx, batch], shape + self.event_shape)

    # --- stratification ---------------------------------------------------------------------------
    def strata(self, num_subsets: Optional[int] = None) -> Tuple[torch.Tensor, torch.Tensor]:
        """Subsets and weights of the strata.

        With ``num_subsets=None`` every member of the family is a stratum, weighted by ω̃ (zero
        where unavailable). With ``num_subsets=k``, ``k`` available subsets per sample drawn
        i.i.d. from ω̃, each weighted ``1/k`` (unbiased for the full sum; the cost does not
        depend on the size of the family for :class:`~pyro_mm.subsets.PowerSet`).

        :returns: ``(subsets [S, B, M] bool, weights [S, B])``.
        """
        dtype = self.expert_loc.dtype
        if num_subsets is None:
            members = self.family.members(self.observed.device)
            self._member_strata = members[:, None, :].expand(members.shape[0], *self.observed.shape)
            return self._member_strata, self.family.renormalised_weights(self.observed, dtype)
        return self.family.sample(self.observed, num_subsets, dtype)
