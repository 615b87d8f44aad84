"""pyro_mm's default networks for a data set's modalities.

:func:`default_modalities` gives every modality of a pyro_mm data set an encoder, a decoder and a
likelihood: images get convolutional or MLP encoders and MLP or convolutional decoders with a
Bernoulli likelihood, token sequences convolutional encoders and MLP decoders with a categorical
likelihood. The latent size is the one the method's networks need
(:meth:`~pyro_mm.method.MultimodalVAE.latent_size`).
"""

from __future__ import annotations

import math
from typing import Dict, List, Mapping, Union

from .likelihoods import Categorical
from .modality import Modality
from .nets import ConvDecoder, ConvEncoder, MLPDecoder, MLPEncoder, TextDecoder, TextEncoder

__all__ = ["default_modalities", "NETWORK_KINDS"]

#: the network kinds of an image modality
NETWORK_KINDS = ("conv", "mlp")


def default_modalities(dataset, z_dim: int, decoder: Union[str, Mapping[str, str]] = "mlp",
                       encoder: Union[str, Mapping[str, str]] = "conv", standardize_colour: bool = False,
                       balance_images: bool = False) -> List[Modality]:
    """Default networks for a pyro_mm data set: for images, convolutional or MLP encoders and MLP or
    convolutional decoders; for token sequences, convolutional encoders and MLP decoders.

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
    """
    images = {n: math.prod(dataset.event_shapes[n]) for n in dataset.names
              if dataset.likelihoods[n] != "categorical" and len(dataset.event_shapes[n]) == 3}
    decoders = _network_kinds("decoder", decoder, "mlp", images)
    encoders = _network_kinds("encoder", encoder, "conv", images)
    mods = []
    for name in dataset.names:
        shape = tuple(dataset.event_shapes[name])
        if dataset.likelihoods[name] == "categorical":
            vocab = len(dataset.vocab)
            mods.append(Modality(name, shape, TextEncoder(vocab, shape[0], z_dim),
                                 TextDecoder(z_dim, shape[0], vocab), Categorical(vocab)))
        elif len(shape) == 3:
            dec = ConvDecoder(z_dim, shape, (64, 32, 16)) if decoders[name] == "conv" else MLPDecoder(z_dim, shape, (400,))
            standardize = standardize_colour and shape[0] == 3
            enc = (ConvEncoder(shape, z_dim, (32, 64, 64), standardize=standardize) if encoders[name] == "conv"
                   else MLPEncoder(shape, z_dim, (512,), standardize=standardize))
            scale = min(images.values()) / images[name] if balance_images else 1.0
            mods.append(Modality(name, shape, enc, dec, "bernoulli", likelihood_scale=scale))
        else:
            mods.append(Modality(name, shape, MLPEncoder(shape, z_dim), MLPDecoder(z_dim, shape), "bernoulli"))
    return mods


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
