"""What pyro_mm's core reads from a model or a guide, as :class:`typing.Protocol` s.

The queries (:mod:`pyro_mm.queries`), the metrics, the ArviZ export and the objectives work with
*any* Pyro model and guide that provide these — not only the classes of ``pyro_mm.models`` and
``pyro_mm.guides``. Each protocol is ``runtime_checkable``: ``isinstance(model, MultimodalModel)``
checks that the attributes exist (not their types).

=============================  ==============================================  ==========================
protocol                       what it provides                                read by
=============================  ==============================================  ==========================
:class:`MultimodalModel`       modality names and specs, the latent site's     queries, metrics, export,
                               name, p(z); called on a batch it samples every  trainer
                               modality's likelihood site (named after it)
:class:`MultimodalGuide`       q(z | observed modalities) as a distribution    queries (embed), metrics
                               with a mean; called on a batch it samples the
                               latent site(s)
:class:`ExpertGuide`           the per-modality experts ``(loc, scale, mask)``  relatedness metric
:class:`ConditionalPriorModel` modality names and the conditional-prior         :class:`~pyro_mm.infer.
                               encoder at learnable pseudo-samples              TraceMEME_ELBO`
:class:`DataInitialised`       ``initialise(data)``: set parameters from the   :func:`pyro_mm.infer.
                               training data (MEME's pseudo-samples)           initialise` (once, before
                                                                               the first step)
:class:`StratifiablePosterior` a guide's shared posterior built from experts:  the strata runner
                               q(z | x_S) for any subset S, drawn per stratum  (:mod:`pyro_mm.infer`),
                               (``component_params``, ``stratify``)            every stratified objective
:class:`MixturePosterior`      a stratifiable mixture over subsets: its own    :class:`~pyro_mm.infer.
                               strata and the mixture density                  TraceMixture_ELBO`, MMVAE+
:class:`StratumFollower`       a later guide site drawn given the stratum's    the strata runner, the
                               subset (MMVAE+'s private latents)               importance-weighted bound
=============================  ==============================================  ==========================

The three posterior protocols are how the objectives recognise the distributions at a guide's
sample sites, so a new posterior family (say a joint encoder for complete rows) can live in
``guides/`` and train under the core's objectives unchanged: give the distribution of the shared
site the members of :class:`StratifiablePosterior` (and of :class:`MixturePosterior` for the
mixture bounds), and a later site that should be drawn per stratum those of
:class:`StratumFollower`. :func:`conforms` is the check the core makes, decided once per class.
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Protocol, Sequence, Tuple, Type, runtime_checkable

import torch

__all__ = ["MultimodalModel", "MultimodalGuide", "ExpertGuide", "ConditionalPriorModel", "DataInitialised",
           "StratifiablePosterior", "MixturePosterior", "StratumFollower", "conforms"]


@runtime_checkable
class MultimodalModel(Protocol):
    """A Pyro model p(z) Π_m p_θ(x_m | z, ...) over named modalities.

    Called on a :class:`~pyro_mm.batch.MultimodalBatch`, it samples the latent site ``latent``
    and one observed site per modality, named after it, inside a plate over the data at dim −1,
    each masked out where the modality is missing.
    """

    names: Tuple[str, ...]
    modalities: Sequence[Any]  #: the :class:`~pyro_mm.modality.Modality` specifications
    latent: str

    def __call__(self, batch) -> Any: ...

    def prior(self) -> torch.distributions.Distribution:
        """p(z) (its mean gives the device and dtype the model works in)."""


@runtime_checkable
class MultimodalGuide(Protocol):
    """A Pyro guide whose posterior of the shared latent given the observed modalities is a
    distribution with a ``mean``; called on a batch it samples the latent sites."""

    def __call__(self, batch) -> Any: ...

    def posterior(self, batch) -> torch.distributions.Distribution:
        """q(z | x_o) for every sample of ``batch`` (batch shape ``[B]``)."""


@runtime_checkable
class ExpertGuide(Protocol):
    """A guide built from one Gaussian expert q(z | x_m) per modality."""

    def experts(self, batch) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(loc, scale) [B, M, D]`` of every modality's expert and the observation mask ``[B, M]``."""


@runtime_checkable
class ConditionalPriorModel(Protocol):
    """A model whose encoders double as conditional priors (MEME): ``pseudo_experts(name)`` is
    the encoder of modality ``name`` applied to its learnable pseudo-samples, ``(loc, scale)
    [N, D]``, the components of the prior used when ``name`` is missing."""

    names: Tuple[str, ...]

    def pseudo_experts(self, name: str) -> Tuple[torch.Tensor, torch.Tensor]: ...


@runtime_checkable
class DataInitialised(Protocol):
    """A module that sets some parameters from the training data before the first step, once:
    ``initialise(data)`` does it unless :attr:`initialised` (part of the module's saved state).
    :func:`pyro_mm.infer.initialise` calls it for every such module of a model and a guide (with
    the first ``initialisation_size`` samples, if the module has that attribute)."""

    initialised: bool

    def initialise(self, data) -> None: ...


@runtime_checkable
class StratifiablePosterior(Protocol):
    """A guide's shared posterior q(z | X) over M modalities that gives q(z | x_S) for any subset S
    of them, as a location and a scale of one location–scale family: what the stratified
    objectives draw from, one stratum per subset.

    The first latent site of a guide whose distribution is one is the *shared* site: the strata
    runner asks the objective for its plan (:meth:`pyro_mm.infer.MultimodalELBO.plan`) and
    replaces the site's distribution by ``stratify(subsets, weights)``, whose draws have batch
    shape ``[S, B]``. It must be sampled inside the data plate only (batch shape ``[B]``).
    :class:`~pyro_mm.distributions.ExpertPosterior` (products and mixtures of experts) is one;
    :class:`~pyro_mm.distributions.StratifiedPosterior` stratifies any of them.

    :ivar names: the modality names of the M columns.
    :ivar observed: boolean ``[B, M]``, which modalities each sample observes.
    :ivar expert_family: the :class:`~pyro_mm.distributions.LatentFamily` of the components
        (their draws, densities and entropies).
    """

    names: Tuple[str, ...]
    observed: torch.Tensor
    expert_family: Any

    def component_params(self, subsets: torch.Tensor, detach: bool = False) -> Tuple[torch.Tensor, torch.Tensor]:
        """``(loc, scale) [..., B, D]`` of q(z | x_S) for boolean ``subsets [..., B, M]`` (only
        observed members count); ``detach``: from detached parameters (the DReG estimator)."""

    def stratify(self, subsets: torch.Tensor, weights: torch.Tensor) -> torch.distributions.Distribution:
        """Independent draws from q(z | x_S) for the strata ``subsets [S, B, M]``, weighted
        ``weights [S, B]`` (zero: padding), e.g. a :class:`~pyro_mm.distributions.StratifiedPosterior`."""

    def log_prob(self, value: torch.Tensor, detach: bool = False) -> torch.Tensor:
        """log q(value | X); ``detach``: from detached parameters (the DReG estimator)."""


@runtime_checkable
class MixturePosterior(StratifiablePosterior, Protocol):
    """A stratifiable posterior that is a mixture of its subset posteriors,
    q(z | X) = Σ_S ω̃_S q(z | x_S): its components are its strata, and its ``log_prob`` is the
    mixture density (which MMVAE puts inside its importance weight). E.g.
    :class:`~pyro_mm.distributions.SubsetMixture`."""

    def strata(self, num_subsets: Optional[int] = None) -> Tuple[torch.Tensor, torch.Tensor]:
        """``(subsets [S, B, M], weights [S, B])``: every component, weighted ω̃ (``None``), or
        ``num_subsets`` components per sample drawn from ω̃, each weighted ``1 / num_subsets``."""


@runtime_checkable
class StratumFollower(Protocol):
    """The distribution of a guide site sampled after the shared one that follows its strata: in
    stratum s it is drawn given the same subset S_s (MMVAE+'s private latent w_m, from
    q(w_m | x_m) when m ∈ S_s and from the auxiliary prior r_m otherwise). E.g.
    :class:`~pyro_mm.distributions.PrivatePosterior`.

    ``stratify`` may mark, as a boolean ``in_bound [S, B]`` attribute of what it returns, the
    draws that belong to the bound's variational posterior; the others only feed the
    reconstructions, and the importance-weighted bound leaves their log p − log q out.
    """

    def stratify(self, subsets: torch.Tensor, weights: torch.Tensor) -> torch.distributions.Distribution:
        """The draws for the strata ``subsets [S, B, M]`` (weights ``[S, B]``) of the shared posterior."""

    def log_prob(self, value: torch.Tensor, detach: bool = False) -> torch.Tensor:
        """The density each draw was drawn from; ``detach``: from detached parameters (DReG)."""


_CONFORMS: Dict[Tuple[Type, Type], bool] = {}


def conforms(value: Any, protocol: Type) -> bool:
    """``isinstance(value, protocol)`` for a runtime-checkable protocol, decided once per class of
    ``value`` and remembered: the core checks the distribution of every guide site at every step,
    and a structural check costs tens of microseconds. A class conforms or not as its first
    instance does, so a posterior family sets its attributes in its constructor."""
    key = (type(value), protocol)
    known = _CONFORMS.get(key)
    if known is None:
        known = _CONFORMS[key] = isinstance(value, protocol)
    return known
