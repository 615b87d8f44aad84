"""The generative side of MEME (Joy et al. 2022): the shared-latent model plus conditional priors.

MEME treats each modality's encoder as a *conditional prior* for the others: for a pair (s, t) the
prior of z given t is q_φ(z | t), the t encoder. When t is missing, the prior is built from N
learnable **pseudo-samples** u_1..u_N in t's data space (a VampPrior; Tomczak & Welling 2018):

.. math:: p_\\lambda(z) = \\frac1N \\sum_{i=1}^N q_\\phi(z \\mid u_i).

:class:`MutualSupervisionModel` is the :class:`SharedLatentModel` (its ``forward`` is the same
p(z) Π_m p_θ(x_m | z)) that also holds the encoders (shared with the guide) and the pseudo-samples,
so that :class:`~pyro_mm.infer.TraceMEME_ELBO` can evaluate those conditional priors (it is a
:class:`~pyro_mm.protocols.ConditionalPriorModel`). The pseudo-samples are ``nn.Parameter`` s of
the model: SVI and ``ELBOModule`` optimise them. They are stored unconstrained: images through a
sigmoid, tokens as logits whose softmax ("soft tokens") the token encoder reads. Before training
they are set from real data once, in place (:meth:`MutualSupervisionModel.initialise`, a
:class:`~pyro_mm.protocols.DataInitialised`): under plain :class:`pyro.infer.SVI` call
:func:`pyro_mm.infer.initialise` ``(model, guide, data)`` before the first step (the trainer makes
the same call). Whether that happened is part of the model's saved state, so a resumed or reloaded
model is never initialised again.

Reference: Joy, Shi, Torr, van de Meent, Siddharth, *Learning Multimodal VAEs through Mutual
Supervision*, ICLR 2022.
"""

from __future__ import annotations

from typing import Mapping, Sequence, Tuple, Union

import pyro.distributions as dist
import torch
from pyro.nn import PyroModule
from torch import nn

from pyro_mm.batch import MultimodalBatch
from pyro_mm.modality import Modality, apply_flat

from .shared_latent import SharedLatentModel


class PseudoSamples(PyroModule):
    """The pseudo-samples of every modality, one ``nn.Parameter`` ``[N, ...]`` per modality name.
    Reading them by calling the module (``pseudo(name)``) issues a ``pyro.param`` statement, so
    that :class:`pyro.infer.SVI` finds and trains them even though the objective, not the model's
    ``forward``, reads them."""

    def forward(self, name: str) -> nn.Parameter:
        return getattr(self, name)

    def set(self, name: str, value: torch.Tensor) -> None:
        """Set the parameter of ``name`` to ``value``: in place when it exists with the same shape,
        dtype and device (the tensor keeps its identity, so a registration with Pyro's param store
        or an optimiser's state stays valid), else as a new parameter."""
        current = self._parameters.get(name)
        if current is not None and (current.shape, current.dtype, current.device) == \
                (value.shape, value.dtype, value.device):
            with torch.no_grad():
                current.copy_(value)
        else:
            setattr(self, name, nn.Parameter(value))

    def items(self):
        return self._parameters.items()

__all__ = ["MutualSupervisionModel"]


class MutualSupervisionModel(SharedLatentModel):
    """Shared-latent model with MEME's conditional priors.

    :param modalities: the modality specifications; the model uses their decoders and likelihoods
        and, as conditional priors, their encoders.
    :param int z_dim: latent size.
    :param pseudo_samples: either the number N of pseudo-samples per modality (initialised from
        uniform noise in the data's range — better: call :func:`pyro_mm.infer.initialise` with
        real data before training) or a mapping modality name -> initial data ``[N, *event_shape]``.
    """

    def __init__(self, modalities: Sequence[Modality], z_dim: int,
                 pseudo_samples: Union[int, Mapping[str, torch.Tensor]] = 128, latent: str = "z"):
        super().__init__(modalities, z_dim, latent)
        self.encoders = nn.ModuleDict({m.name: m.encoder for m in self.modalities})
        self.pseudo = PseudoSamples()
        self.initialised = False
        if isinstance(pseudo_samples, bool) or not isinstance(pseudo_samples, (int, Mapping)):
            raise TypeError(f"pseudo_samples must be a number or a mapping name -> data, got {pseudo_samples!r}")
        if isinstance(pseudo_samples, int):
            if pseudo_samples < 1:
                raise ValueError(f"the number of pseudo-samples must be positive, got {pseudo_samples}")
            for m in self.modalities:
                self._set_pseudo(m, self._noise(m, pseudo_samples))
        else:
            self.init_pseudo_samples(pseudo_samples)

    @property
    def num_pseudo_samples(self) -> int:
        """N, the pseudo-samples per modality."""
        return next(iter(self.pseudo.items()))[1].shape[0]

    @property
    def initialisation_size(self) -> int:
        """How many training samples :meth:`initialise` wants to see (4 N)."""
        return 4 * self.num_pseudo_samples

    def initialise(self, batch: MultimodalBatch) -> None:
        """Set every modality's N pseudo-samples to its first N observed entries of ``batch``
        (cycled when fewer are observed; a modality observed nowhere keeps its noise), once."""
        if self.initialised:
            return
        N = self.num_pseudo_samples
        init = {}
        for n in batch.names:
            rows = batch[n][batch.observed(n)]
            if len(rows):
                init[n] = rows[torch.arange(N, device=rows.device) % len(rows)]
        self.init_pseudo_samples(init)
        self.initialised = True

    def get_extra_state(self):
        return {"initialised": self.initialised}

    def set_extra_state(self, state) -> None:
        self.initialised = bool(state["initialised"])

    @staticmethod
    def _noise(m: Modality, n: int) -> torch.Tensor:
        if m.likelihood.data_kind == "long":
            return torch.randint(0, m.likelihood.vocab_size, (n,) + m.event_shape)
        return torch.rand((n,) + m.event_shape)

    def _set_pseudo(self, m: Modality, data: torch.Tensor) -> None:
        if tuple(data.shape[1:]) != m.event_shape or data.dim() != m.event_dim + 1 or data.shape[0] < 1:
            raise ValueError(
                f"pseudo-samples of modality {m.name!r} must have shape [N, {', '.join(map(str, m.event_shape))}]"
                f", got {list(data.shape)}"
            )
        like = self.prior_loc
        self.pseudo.set(m.name, m.likelihood.pseudo_parameter(data.detach()).to(device=like.device, dtype=like.dtype))

    def init_pseudo_samples(self, data: Union[MultimodalBatch, Mapping[str, torch.Tensor]]) -> None:
        """Set pseudo-samples from real data: a mapping name -> ``[N, *event_shape]`` or a
        :class:`MultimodalBatch` (its observed entries of each modality are used)."""
        if isinstance(data, MultimodalBatch):
            data = {n: data[n][data.observed(n)] for n in data.names if n in self.names}
        unknown = sorted(set(data) - set(self.names))
        if unknown:
            raise KeyError(f"pseudo-samples given for unknown modalities {unknown}; the model has {list(self.names)}")
        for m in self.modalities:
            if m.name in data:
                self._set_pseudo(m, torch.as_tensor(data[m.name]))

    def generative_prior(self) -> dist.Distribution:
        """The prior that unconditional samples draw z from: the learned pseudo-sample priors of
        every modality, (1/M) Σ_m (1/N) Σ_i q_φ(z | u_i^m). MEME's objective never trains the
        model's N(0, I), which its ``forward`` keeps only as the latent site's formal prior."""
        locs, scales = zip(*(self.pseudo_experts(n) for n in self.names))  # each [N, D]
        loc, scale = torch.cat(locs), torch.cat(scales)
        components = dist.Categorical(logits=loc.new_zeros(loc.shape[0]))
        return dist.MixtureSameFamily(components, dist.Normal(loc, scale).to_event(1))

    def pseudo_experts(self, name: str) -> Tuple[torch.Tensor, torch.Tensor]:
        """``(loc, scale) [N, D]``: the encoder of ``name`` applied to its pseudo-samples."""
        spec = self.modalities[self.names.index(name)]
        inputs = spec.likelihood.pseudo_input(self.pseudo(name))
        return apply_flat(self.encoders[name], inputs, inputs.dim() - 1)
