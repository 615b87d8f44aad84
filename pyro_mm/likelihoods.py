"""Observation likelihoods p_θ(x_m | z): decoder outputs -> Pyro distributions.

A likelihood turns the decoder's output for a modality into a distribution whose event shape is
the modality's event shape, so that ``log_prob`` sums over pixels (or tokens) and keeps one value
per sample. Learnable scales are ``nn.Parameter`` s of the likelihood module, trained with the
decoder.

=============  ==============================  =============================================
family         decoder output                  distribution
=============  ==============================  =============================================
Bernoulli      logits ``[..., *event]``        Bernoulli(logits); data in [0, 1] (intensities
                                               are allowed, as in the MMVAE/MoPoE references)
Normal         loc ``[..., *event]``           Normal(loc, σ), σ fixed or learned
Laplace        loc ``[..., *event]``           Laplace(loc, b), b fixed or learned
Categorical    logits ``[..., *event, K]``     Categorical over K categories at each entry:
                                               a class label (event ``()``, data ``[N]``) or
                                               a sequence of L tokens (event ``(L,)``)
=============  ==============================  =============================================

Bernoulli, Normal and Laplace may be named by a string (``"bernoulli"``, ``"normal"``,
``"laplace"``); a categorical likelihood needs its number of categories,
``Categorical(10)`` for a digit label. Its data are ``int64`` ids in ``[0, K)``.
"""

from __future__ import annotations

import math
from typing import Tuple

import pyro.distributions as dist
import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["Likelihood", "IndependentBernoulli", "Bernoulli", "Normal", "Laplace", "Categorical", "make_likelihood",
           "check_range"]


class Likelihood(nn.Module):
    """Base class: ``likelihood(params, event_dim)`` returns a distribution with ``event_dim``
    event dimensions. Subclasses say what data they accept in :meth:`check_data`."""

    #: dtype family of the data: "float" or "long"
    data_kind = "float"

    def param_shape(self, event_shape: Tuple[int, ...]) -> Tuple[int, ...]:
        """Shape of the decoder output for one sample."""
        return tuple(event_shape)

    def pseudo_parameter(self, x: torch.Tensor) -> torch.Tensor:
        """An unconstrained parameter standing for data ``x`` (learnable pseudo-samples, MEME)."""
        return x.to(torch.get_default_dtype()).clone()

    def pseudo_input(self, parameter: torch.Tensor) -> torch.Tensor:
        """The encoder input that a pseudo-sample parameter stands for."""
        return parameter

    def check_data(self, name: str, x: torch.Tensor, observed: torch.Tensor) -> None:
        """Raise a clear error when observed entries of ``x`` are not valid data."""
        if not x.is_floating_point():
            raise TypeError(
                f"modality {name!r}: {type(self).__name__} likelihood needs floating-point data, "
                f"got {x.dtype}"
            )


class IndependentBernoulli(dist.Independent):
    """``Bernoulli(logits).to_event(n)`` with its log-density written as two sums over the event,

    .. math:: \\log p(x \\mid \\ell) = \\sum_i \\big[x_i \\ell_i - \\mathrm{softplus}(\\ell_i)\\big]
              = \\sum_i x_i \\ell_i - \\sum_i \\mathrm{softplus}(\\ell_i),

    the value of the element-wise ``Bernoulli.log_prob`` summed (to float rounding). Logits of
    many particles ``[K, B, *event]`` meet data ``[B, *event]`` by broadcasting inside one product:
    nothing of the data's size is copied per particle, where BCE-with-logits materialises the
    broadcast data and passes over every pixel several times."""

    def log_prob(self, value):
        logits = self.base_dist.logits
        # softplus(ℓ) = ℓ to working precision once e^{-ℓ} < ε (torch's default cut, 20, is
        # early for float64)
        softplus = F.softplus(logits, threshold=-math.log(torch.finfo(logits.dtype).eps))
        n = self.reinterpreted_batch_ndims
        if not n:
            return logits * value - softplus
        return (logits * value).flatten(-n).sum(-1) - softplus.flatten(-n).sum(-1)


class Bernoulli(Likelihood):
    """Bernoulli likelihood on logits (binary data or intensities in [0, 1])."""

    def forward(self, logits: torch.Tensor, event_dim: int):
        # validate_args=False admits intensities in [0, 1] (the usual BCE reconstruction).
        return IndependentBernoulli(dist.Bernoulli(logits=logits, validate_args=False), event_dim)

    def pseudo_parameter(self, x):
        return torch.logit(x.to(torch.get_default_dtype()).clamp(1e-3, 1 - 1e-3))

    def pseudo_input(self, parameter):  # stays in [0, 1]
        return torch.sigmoid(parameter)

    def check_data(self, name, x, observed):
        super().check_data(name, x, observed)
        if x.numel() == 0:
            return
        message = f"modality {name!r}: Bernoulli data must lie in [0, 1]"
        low, high = torch.aminmax(x)  # one pass, no full-size temporaries: the usual case
        if x.device.type != "cpu":  # checked on the device, without reading back (missing entries are zeros)
            torch._assert_async((low >= 0) & (high <= 1), message)
            return
        if bool((low >= 0) & (high <= 1)):
            return
        shape = (-1,) + (1,) * (x.dim() - 1)
        outside = ((x < 0) | (x > 1)) & observed.reshape(shape)
        if outside.any():
            raise ValueError(message)


class _LocationScale(Likelihood):
    family = None

    def __init__(self, scale: float = 1.0, learn_scale: bool = False):
        super().__init__()
        if scale <= 0:
            raise ValueError(f"{type(self).__name__}: scale must be positive, got {scale}")
        if learn_scale:
            self.log_scale = nn.Parameter(torch.tensor(math.log(scale)))
        else:  # kept in float64 so that a later .double() loses nothing
            self.register_buffer("log_scale", torch.tensor(math.log(scale), dtype=torch.float64))

    @property
    def scale(self) -> torch.Tensor:
        return self.log_scale.exp()

    def forward(self, loc: torch.Tensor, event_dim: int):
        return self.family(loc, self.log_scale.exp().to(loc.dtype)).to_event(event_dim)

    def extra_repr(self) -> str:
        learned = isinstance(self.log_scale, nn.Parameter)
        return f"scale={self.scale.item():.4g}, learn_scale={learned}"


class Normal(_LocationScale):
    """Gaussian likelihood N(loc, σ²) with σ fixed or learned (one scalar per modality)."""

    family = dist.Normal


class Laplace(_LocationScale):
    """Laplace likelihood with scale fixed or learned (one scalar per modality)."""

    family = dist.Laplace


class Categorical(Likelihood):
    """Categorical likelihood over ``K`` categories (``vocab_size``): data ``int64`` ids in
    ``[0, K)`` of any event shape, decoder output the logits ``[*event_shape, K]``.

    * a **label** (one class per sample, e.g. the digit of an MNIST image): event shape ``()``,
      data ``[N]``, logits ``[N, K]`` — ``Modality("label", (), encoder, decoder,
      Categorical(10))``;
    * a **token sequence** of length L: event shape ``(L,)``, data ``[N, L]``, logits
      ``[N, L, K]``.

    MEME's pseudo-samples of such a modality are logits whose softmax ("soft" one-hot vectors
    ``[..., K]``) its encoder reads besides ids (:class:`~pyro_mm.nets.LabelEncoder`,
    :class:`~pyro_mm.nets.TextEncoder` do)."""

    data_kind = "long"

    def __init__(self, vocab_size: int):
        super().__init__()
        if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) and not (
                torch.is_tensor(vocab_size) and vocab_size.dim() == 0 and not vocab_size.is_floating_point()):
            raise TypeError(f"Categorical: the number of categories must be an integer, got {vocab_size!r}")
        if vocab_size < 2:
            raise ValueError(f"Categorical: vocab_size must be at least 2, got {vocab_size}")
        self.vocab_size = int(vocab_size)

    @property
    def num_categories(self) -> int:
        """K, the number of categories (the same as ``vocab_size``)."""
        return self.vocab_size

    def param_shape(self, event_shape):
        return tuple(event_shape) + (self.vocab_size,)

    def forward(self, logits: torch.Tensor, event_dim: int):
        return dist.Categorical(logits=logits).to_event(event_dim)

    def pseudo_parameter(self, x):
        """Logits over the vocabulary at every position, peaked at the tokens of ``x``."""
        one_hot = torch.nn.functional.one_hot(x.long(), self.vocab_size).to(torch.get_default_dtype())
        return 4.0 * one_hot

    def pseudo_input(self, parameter):
        """Soft tokens ``[..., L, V]``: encoders of token modalities must accept them besides ids."""
        return parameter.softmax(-1)

    def check_data(self, name, x, observed):
        if x.dtype != torch.long:
            raise TypeError(f"modality {name!r}: Categorical({self.vocab_size}) data must be int64 category ids "
                            f"(labels or tokens in [0, {self.vocab_size})), got {x.dtype}"
                            + (" (x.long())" if not x.is_floating_point() and x.dtype != torch.bool else ""))
        shape = (-1,) + (1,) * (x.dim() - 1)
        outside = ((x < 0) | (x >= self.vocab_size)) & observed.reshape(shape)
        check_range(name, x, self.vocab_size, outside)

    def extra_repr(self) -> str:
        return f"vocab_size={self.vocab_size}"


def check_range(name: str, x: torch.Tensor, num_categories: int, outside: torch.Tensor = None) -> None:
    """Raise a clear error, naming modality ``name``, when ids ``x`` (at the entries ``outside``
    marks; default: every entry outside ``[0, num_categories)``) are not categories: on the CPU at
    once, elsewhere asynchronously (no host synchronisation)."""
    if outside is None:
        outside = (x < 0) | (x >= num_categories)
    message = f"modality {name!r}: category ids (labels or tokens) must lie in [0, {num_categories})"
    if x.device.type != "cpu":
        torch._assert_async(~outside.any(), message)
        return
    if outside.any():
        bad = x[outside]
        raise ValueError(f"{message}, got values in [{int(bad.min())}, {int(bad.max())}] at {int(outside.sum())} "
                         f"entries (a {num_categories}-class modality takes ids 0..{num_categories - 1}; give the "
                         "modality more categories if there are more)")


def make_likelihood(spec) -> Likelihood:
    """A :class:`Likelihood` from an instance or one of the names
    ``"bernoulli"``, ``"normal"``, ``"laplace"``."""
    if isinstance(spec, Likelihood):
        return spec
    table = {"bernoulli": Bernoulli, "normal": Normal, "laplace": Laplace}
    if isinstance(spec, str) and spec.lower() in table:
        return table[spec.lower()]()
    raise ValueError(
        f"unknown likelihood {spec!r}: pass a pyro_mm.likelihoods.Likelihood or one of {sorted(table)}"
        " (a categorical likelihood needs its number of categories: pyro_mm.likelihoods.Categorical(10) for a digit "
        "label)"
    )
