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
=============================  ==============================================  ==========================
"""

from __future__ import annotations

from typing import Any, Protocol, Sequence, Tuple, runtime_checkable

import torch

__all__ = ["MultimodalModel", "MultimodalGuide", "ExpertGuide", "ConditionalPriorModel", "DataInitialised"]


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
