"""pyro_mm's default networks for a data set's modalities.

:func:`default_modalities` gives every modality of a pyro_mm data set an encoder, a decoder and a
likelihood: images get convolutional or MLP encoders and MLP or convolutional decoders with a
Bernoulli likelihood, token sequences convolutional encoders and MLP decoders with a categorical
likelihood, labels (a categorical modality of one class per sample) a one-hot MLP encoder
(:class:`~pyro_mm.nets.LabelEncoder`) and an MLP decoder to the class logits with a categorical
likelihood. The latent size is the one the method's networks need
(:meth:`~pyro_mm.multimodal_vae.MultimodalVAE.latent_size`).
"""

from __future__ import annotations

import math
from typing import Dict, List, Mapping, Optional, Union

from .likelihoods import Categorical
from .modality import Modality
from .nets import ConvDecoder, ConvEncoder, LabelEncoder, MLPDecoder, MLPEncoder, TextDecoder, TextEncoder

__all__ = ["default_modalities", "num_categories", "NETWORK_KINDS"]

#: the network kinds of an image modality
NETWORK_KINDS = ("conv", "mlp")


def default_modalities(dataset, z_dim: int, decoder: Union[str, Mapping[str, str]] = "mlp",
                       encoder: Union[str, Mapping[str, str]] = "conv", standardize_colour: bool = False,
                       balance_images: bool = False,
                       likelihood_scale: Optional[Mapping[str, float]] = None) -> List[Modality]:
    """Default networks for a pyro_mm data set (a :class:`~pyro_mm.data.MultimodalDataset`, or
    anything with its ``names``, ``likelihoods``, ``event_shapes`` and, for categorical
    modalities, ``num_categories``): for images, convolutional or MLP encoders and MLP or
    convolutional decoders (Bernoulli); for token sequences, convolutional encoders and MLP
    decoders (``Categorical(K)``); for labels — categorical modalities of event shape ``()`` or
    ``(1,)`` — a one-hot MLP encoder (:class:`~pyro_mm.nets.LabelEncoder`) and an MLP decoder to
    the K class logits (``Categorical(K)``).

    :param decoder: ``"mlp"`` or ``"conv"`` for every image modality, or a mapping from modality
        name to either (modalities not named keep ``"mlp"``).
    :param encoder: ``"conv"`` or ``"mlp"``, likewise (default ``"conv"``); an MLP costs a CPU far
        less than the convolutions.
    :param bool standardize_colour: colour-image encoders read per-image standardised inputs
        (:func:`~pyro_mm.nets.standardize_images`: colour and brightness removed).
    :param bool balance_images: scale each image modality's log-likelihood by
        ``min_m |x_m| / |x_m|`` so that every image weighs as much as the smallest one (784/3072
        for a 3×32×32 SynDigits image beside a 28×28 MNIST digit; MMVAE's likelihood rescaling,
        normalised to the smallest image so that the KL and classifier terms keep their weight).
    :param likelihood_scale: modality name -> a further factor of its log-likelihood (e.g.
        ``{"label": 50.0}`` to let a label's few nats weigh against an image's hundreds).
    """
    images = {n: math.prod(dataset.event_shapes[n]) for n in dataset.names
              if dataset.likelihoods[n] != "categorical" and len(dataset.event_shapes[n]) == 3}
    decoders = _network_kinds("decoder", decoder, "mlp", images)
    encoders = _network_kinds("encoder", encoder, "conv", images)
    scales = dict(likelihood_scale or {})
    unknown = sorted(set(scales) - set(dataset.names))
    if unknown:
        raise ValueError(f"likelihood scales given for {unknown}, which are not modalities of the data set "
                         f"({list(dataset.names)})")
    bad = {n: v for n, v in scales.items() if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0}
    if bad:
        raise ValueError(f"likelihood scales must be positive numbers, got {bad}")
    mods = []
    for name in dataset.names:
        shape = tuple(dataset.event_shapes[name])
        factor = float(scales.get(name, 1.0))
        if dataset.likelihoods[name] == "categorical":
            k = num_categories(dataset, name)
            if math.prod(shape) == 1 and len(shape) <= 1:  # a label: one class per sample
                mods.append(Modality(name, shape, LabelEncoder(k, z_dim), MLPDecoder(z_dim, shape + (k,), (256,)),
                                     Categorical(k), likelihood_scale=factor))
                continue
            if len(shape) != 1:
                raise ValueError(f"modality {name!r}: categorical data of shape {list(shape)} has no default networks "
                                 "(they read a label, shape [], or a token sequence, shape [L]); pass your own "
                                 "Modality")
            mods.append(Modality(name, shape, TextEncoder(k, shape[0], z_dim),
                                 TextDecoder(z_dim, shape[0], k), Categorical(k), likelihood_scale=factor))
        elif len(shape) == 3:
            dec = ConvDecoder(z_dim, shape, (64, 32, 16)) if decoders[name] == "conv" else MLPDecoder(z_dim, shape, (400,))
            standardize = standardize_colour and shape[0] == 3
            enc = (ConvEncoder(shape, z_dim, (32, 64, 64), standardize=standardize) if encoders[name] == "conv"
                   else MLPEncoder(shape, z_dim, (512,), standardize=standardize))
            scale = min(images.values()) / images[name] if balance_images else 1.0
            mods.append(Modality(name, shape, enc, dec, "bernoulli", likelihood_scale=scale * factor))
        else:
            mods.append(Modality(name, shape, MLPEncoder(shape, z_dim), MLPDecoder(z_dim, shape), "bernoulli",
                                 likelihood_scale=factor))
    return mods


def num_categories(dataset, name: str) -> int:
    """K of the categorical modality ``name`` of ``dataset``: ``dataset.num_categories[name]``
    (:class:`~pyro_mm.data.MultimodalDataset`), else the size of ``dataset.vocab`` (a data set of
    captions); a clear error when the data set says neither."""
    declared = getattr(dataset, "num_categories", None)
    if isinstance(declared, Mapping) and name in declared:
        return int(declared[name])
    vocab = getattr(dataset, "vocab", None)
    if vocab is not None:
        return len(vocab)
    raise ValueError(f"modality {name!r} is categorical, but the data set does not say how many categories it has: "
                     "give it a num_categories mapping (MultimodalDataset(..., num_categories={"
                     f"{name!r}: K}})) or a vocab")


def _network_kinds(role: str, spec, default: str, images) -> Dict[str, str]:
    """``"conv"`` or ``"mlp"`` for every image modality, from one kind or a mapping name -> kind."""
    named = dict(spec) if isinstance(spec, Mapping) else {}
    unknown = sorted(set(named) - set(images))
    if unknown:
        raise ValueError(f"{role} kinds given for {unknown}, which are not image modalities of the data set "
                         f"({sorted(images)})")
    kinds = {n: named.get(n, default) if isinstance(spec, Mapping) else spec for n in images}
    bad = {n: k for n, k in kinds.items() if k not in NETWORK_KINDS}
    if bad:
        raise ValueError(f"{role} must be 'conv' or 'mlp' (or a mapping of modality names to them), got {bad}")
    return kinds
