"""Modality specifications: what a modality is and how its networks are called.

A :class:`Modality` names a modality and binds four things:

* ``encoder``: an ``nn.Module`` mapping ``x [N, *event_shape]`` to ``(loc, scale)`` of the
  unimodal expert q_φ(z | x_m), both ``[N, z_dim]``, ``scale > 0``;
* ``decoder``: an ``nn.Module`` mapping ``z [N, z_dim]`` to the likelihood's parameters
  ``[N, *likelihood.param_shape(event_shape)]``;
* ``likelihood``: a :class:`~pyro_mm.likelihoods.Likelihood` (:mod:`pyro_mm.likelihoods`), one of

  - ``Bernoulli()`` or ``"bernoulli"``: float data in [0, 1] (binary or intensities), decoder
    output the logits ``[N, *event_shape]``;
  - ``Normal(scale=1.0, learn_scale=False)`` or ``"normal"``: float data, decoder output the
    mean; σ fixed or learned;
  - ``Laplace(scale=1.0, learn_scale=False)`` or ``"laplace"``: float data, decoder output the
    location; b fixed or learned;
  - ``Categorical(K)``: int64 ids in [0, K), decoder output the logits
    ``[N, *event_shape, K]`` — a class **label** (``event_shape=()``, data ``[N]``; e.g.
    ``Categorical(10)`` for a digit) or a **token sequence** (``event_shape=(L,)``);

  or a subclass of :class:`~pyro_mm.likelihoods.Likelihood` of one's own;
* ``likelihood_scale``: a constant that multiplies log p_θ(x_m | z) (likelihood rescaling, e.g.
  to balance a 3×32×32 image against a 28×28 one as in MMVAE's MNIST–SVHN setup).

Encoders and decoders are ordinary modules that a user may replace; they see flat batches, and
:func:`apply_flat` folds any leading (particle, stratum) dimensions into the batch dimension.
Models call their decoders through :func:`decode`, a Pyro effect, so that an inference handler
can decode only the part of ``z`` its objective uses.
"""

from __future__ import annotations

from typing import Callable, Optional, Sequence, Tuple, Union

import torch
from pyro.poutine.runtime import effectful
from torch import nn

from .likelihoods import Likelihood, check_range, make_likelihood

__all__ = ["Modality", "apply_flat", "check_modalities", "decode", "private_site", "check_scale", "network_dtype"]


def network_dtype(net: nn.Module) -> torch.dtype:
    """The floating-point dtype a network works in (its first floating parameter's)."""
    for p in net.parameters():
        if p.is_floating_point():
            return p.dtype
    return torch.get_default_dtype()


def check_scale(name: str, scale: torch.Tensor) -> None:
    """Raise a clear error when an encoder's scale is not positive (e.g. it returned a
    log-variance): on the CPU at once, elsewhere asynchronously (no host synchronisation)."""
    message = (f"the encoder of modality {name!r} returned a scale with entries <= 0; an encoder returns "
               "(loc, scale) with scale > 0 — not (mean, log-variance): e.g. scale = softplus(raw) + 1e-3 or "
               "exp(0.5 * logvar)")
    if scale.device.type == "cpu":
        if not bool((scale > 0).all()):
            raise ValueError(message)
    else:
        torch._assert_async((scale > 0).all(), message)


def private_site(name: str) -> str:
    """The name of modality ``name``'s private latent site, ``"w_<name>"`` (models and guides with
    modality-private latents agree on it)."""
    return f"w_{name}"


def apply_flat(net: nn.Module, x: torch.Tensor, event_dims: int):
    """Call ``net`` on ``x [*lead, *event]`` as one flat batch ``[prod(lead), *event]`` and
    restore the leading dimensions on every output tensor."""
    lead = x.shape[: x.dim() - event_dims]
    flat = x.reshape((-1,) + x.shape[x.dim() - event_dims:])
    out = net(flat)
    if isinstance(out, (tuple, list)):
        return type(out)(o.reshape(lead + o.shape[1:]) for o in out)
    return out.reshape(lead + out.shape[1:])


def _decode(net: nn.Module, z: torch.Tensor, likelihood: Optional[Callable] = None):
    params = apply_flat(net, z, 1)
    return params if likelihood is None else likelihood(params)


_decode_effect = effectful(_decode, type="decode")


def decode(name: str, net: nn.Module, z: torch.Tensor, likelihood: Optional[Callable] = None):
    """The likelihood parameters ``apply_flat(net, z, 1)`` of modality ``name`` at every
    ``z [*lead, D]`` — or, given ``likelihood`` (parameters ``[*lead, ...]`` -> a distribution of
    batch shape ``lead``), that distribution — as a Pyro effect of type ``"decode"`` named
    ``name``.

    Outside inference it is the plain call. An inference handler (a ``Messenger`` with a
    ``_pyro_decode`` method) may compute it only where its objective uses the result:
    :class:`~pyro_mm.infer.SelectiveDecodeMessenger` decodes and scores a modality given with its
    likelihood only at the (cell, sample) entries whose likelihood the objective uses (the samples
    observing it; MVAE's subset terms; MEME). Effects of this type are not recorded in traces.
    """
    return _decode_effect(net, z, likelihood, name=name)


class Modality:
    """Specification of one modality.

    :param str name: the modality's name; it is also the name of its likelihood site in the
        models and of its networks in the modules, so it must be a non-empty string other than the
        latent site names, without ``.``.
    :param event_shape: shape of one observation, e.g. ``(1, 28, 28)`` or ``(L,)`` for tokens.
    :param nn.Module encoder: ``x -> (loc, scale)``.
    :param nn.Module decoder: ``z -> likelihood parameters``.
    :param likelihood: a :class:`~pyro_mm.likelihoods.Likelihood` — ``Bernoulli()``,
        ``Normal(scale, learn_scale)``, ``Laplace(scale, learn_scale)``, ``Categorical(K)`` — or
        one of the names ``"bernoulli"``, ``"normal"``, ``"laplace"`` (default ``"bernoulli"``).
        A categorical modality needs ``Categorical(K)``, its number of categories K.
    :param float likelihood_scale: multiplies log p(x_m | z) in every objective.

    A **label** (one class of K per sample) is a categorical modality of event shape ``()``, with
    data ``[N]`` of ``int64`` class ids, e.g. an image and its digit::

        from pyro_mm.likelihoods import Categorical
        from pyro_mm.nets import LabelEncoder, MLPDecoder, MLPEncoder

        image = Modality("image", (1, 28, 28), MLPEncoder((1, 28, 28), 16), MLPDecoder(16, (1, 28, 28)))
        label = Modality("label", (), LabelEncoder(10, 16), MLPDecoder(16, (10,)), Categorical(10))

    (:func:`~pyro_mm.defaults.default_modalities` builds these networks for a data set.)
    """

    def __init__(
        self,
        name: str,
        event_shape: Sequence[int],
        encoder: nn.Module,
        decoder: nn.Module,
        likelihood: Union[str, Likelihood] = "bernoulli",
        likelihood_scale: float = 1.0,
    ):
        if not isinstance(name, str) or not name:
            raise ValueError(f"a modality needs a non-empty string name, got {name!r}")
        if "." in name:
            raise ValueError(f"modality name {name!r} contains '.', which torch module names cannot hold (the "
                             f"modality's networks are kept under its name); use e.g. {name.replace('.', '_')!r}")
        if not isinstance(encoder, nn.Module) or not isinstance(decoder, nn.Module):
            raise TypeError(f"modality {name!r}: encoder and decoder must be torch.nn.Module s")
        if not likelihood_scale > 0:
            raise ValueError(f"modality {name!r}: likelihood_scale must be positive")
        self.name = name
        self.event_shape: Tuple[int, ...] = tuple(int(s) for s in event_shape)
        self.encoder = encoder
        self.decoder = decoder
        self.likelihood = make_likelihood(likelihood)
        self.likelihood_scale = float(likelihood_scale)

    @property
    def event_dim(self) -> int:
        return len(self.event_shape)

    def _shape_text(self) -> str:
        return "[" + ", ".join(["batch", *map(str, self.event_shape)]) + "]"

    def check_input(self, x: torch.Tensor, dtype: torch.dtype) -> None:
        """Raise a clear error, before any network runs, when ``x`` cannot be a batch of this
        modality for networks working in ``dtype``: its shape must be ``[batch, *event_shape]``
        and its dtype ``dtype`` (real-valued likelihoods) or int64 ids in ``[0, K)`` (categorical:
        labels, tokens)."""
        categorical = self.likelihood.data_kind == "long"
        if tuple(x.shape[1:]) != self.event_shape:
            hint = ""
            if tuple(x.shape[-len(self.event_shape) + 1:]) == self.event_shape[1:] and x.dim() == len(self.event_shape):
                hint = " (one dimension short: a channel or batch dimension is missing, e.g. x.unsqueeze(1))"
            categories = getattr(self.likelihood, "vocab_size", None)
            if categorical and x.dim() == len(self.event_shape) + 2 and x.shape[-1] == categories:
                hint = " (one-hot or probability vectors; a categorical modality reads class ids: x.argmax(-1))"
            raise ValueError(f"modality {self.name!r}: expected a batch of shape {self._shape_text()}, got "
                             f"{list(x.shape)}{hint}")
        if categorical:
            if x.dtype != torch.long:
                hint = ("x.long() if it holds whole numbers" if x.is_floating_point() else "x.long()")
                raise TypeError(f"modality {self.name!r}: its {type(self.likelihood).__name__} likelihood reads int64 "
                                f"category ids (labels or tokens), got {x.dtype} ({hint})")
            categories = getattr(self.likelihood, "vocab_size", None)
            if categories is not None:
                check_range(self.name, x, categories)
            return
        if x.dtype == torch.bool:
            raise TypeError(f"modality {self.name!r}: bool data; its {type(self.likelihood).__name__} likelihood reads "
                            f"floating-point data (x.to({dtype}))")
        if not x.is_floating_point():
            raise TypeError(f"modality {self.name!r}: integer data ({x.dtype}); its {type(self.likelihood).__name__} "
                            "likelihood reads floating-point data (images stored as uint8 in [0, 255] are "
                            f"x.to({dtype}) / 255; class ids belong to a modality with a Categorical(K) likelihood)")
        if x.dtype != dtype:
            raise TypeError(f"modality {self.name!r}: {x.dtype} data for {dtype} networks; convert the batch "
                            f"(batch.to({dtype})) or the networks (.to({x.dtype}))")

    def check_data(self, x: torch.Tensor, observed: torch.Tensor) -> None:
        """Raise a clear error when ``x`` is not a batch of this modality's observations."""
        if tuple(x.shape[1:]) != self.event_shape:
            raise ValueError(f"modality {self.name!r}: expected shape {self._shape_text()}, got {list(x.shape)}")
        self.likelihood.check_data(self.name, x, observed)

    def __repr__(self) -> str:
        return (
            f"Modality({self.name!r}, event_shape={self.event_shape}, "
            f"likelihood={self.likelihood!r}, likelihood_scale={self.likelihood_scale})"
        )


def check_modalities(modalities: Sequence[Modality], reserved: Sequence[str] = ("z",)):
    """Validate a list of modalities (unique names, none reserved) and return it as a tuple."""
    modalities = tuple(modalities)
    if not modalities:
        raise ValueError("at least one modality is needed")
    for m in modalities:
        if not isinstance(m, Modality):
            raise TypeError(f"expected pyro_mm.Modality objects, got {type(m).__name__}")
    names = [m.name for m in modalities]
    if len(set(names)) != len(names):
        raise ValueError(f"modality names must be unique, got {names}")
    clash = sorted(set(names) & set(reserved))
    if clash:
        raise ValueError(f"modality names {clash} clash with latent site names {list(reserved)}")
    return modalities
