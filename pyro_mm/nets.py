"""Default encoder and decoder networks.

Encoders return ``(loc, scale)`` of a diagonal Gaussian expert, with ``scale = softplus(·) +
min_scale`` so that every expert has a finite precision. Users may pass any ``nn.Module`` with
the same call signature instead (see :class:`~pyro_mm.modality.Modality`).
"""

from __future__ import annotations

import math
from typing import Sequence, Tuple

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["standardize_images", "MLPEncoder", "MLPDecoder", "LinearEncoder", "LinearDecoder", "ConvEncoder", "ConvDecoder",
           "TextEncoder", "TextDecoder", "LabelEncoder"]


def _mlp(sizes: Sequence[int]) -> nn.Sequential:
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class MLPEncoder(nn.Module):
    """``x [N, *in_shape] -> (loc, scale) [N, z_dim]`` through an MLP with ReLU hidden layers.

    :param bool standardize: read :func:`standardize_images` of the input (images ``[C, H, W]``
        only)."""

    standardize = False  #: the default of encoders saved before the option existed

    def __init__(self, in_shape: Sequence[int], z_dim: int, hidden: Sequence[int] = (512,),
                 min_scale: float = 1e-3, standardize: bool = False):
        super().__init__()
        if standardize and len(in_shape) != 3:
            raise ValueError(f"standardize=True needs images [C, H, W], got inputs of shape {list(in_shape)}")
        self.in_features = math.prod(in_shape)
        self.net = _mlp([self.in_features, *hidden, 2 * z_dim])
        self.min_scale = min_scale
        self.standardize = bool(standardize)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        x = x.to(self.net[0].weight.dtype)
        if self.standardize:
            x = standardize_images(x)
        h = self.net(x.reshape(x.shape[0], self.in_features))
        loc, raw = h.chunk(2, dim=-1)
        return loc, F.softplus(raw) + self.min_scale


class MLPDecoder(nn.Module):
    """``z [N, z_dim] -> params [N, *out_shape]`` through an MLP with ReLU hidden layers."""

    def __init__(self, z_dim: int, out_shape: Sequence[int], hidden: Sequence[int] = (512,)):
        super().__init__()
        self.out_shape = tuple(out_shape)
        self.net = _mlp([z_dim, *hidden, math.prod(self.out_shape)])

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).reshape((z.shape[0],) + self.out_shape)


class LinearEncoder(nn.Module):
    """Affine expert ``loc = W x + c`` with a learned, input-independent diagonal scale.

    With ``W``, ``c`` and the scale set from a linear-Gaussian model this is the exact Gaussian
    expert of that model (see :mod:`pyro_mm.linear_gaussian`)."""

    def __init__(self, in_features: int, z_dim: int, scale: float = 1.0):
        super().__init__()
        self.linear = nn.Linear(in_features, z_dim)
        self.log_scale = nn.Parameter(torch.full((z_dim,), math.log(scale)))

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        loc = self.linear(x)
        return loc, self.log_scale.exp().expand_as(loc)


class LinearDecoder(nn.Module):
    """Affine decoder ``z -> A z + b`` (the mean of a linear-Gaussian likelihood)."""

    def __init__(self, z_dim: int, out_features: int):
        super().__init__()
        self.linear = nn.Linear(z_dim, out_features)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.linear(z)


def standardize_images(x: torch.Tensor, min_std: float = 1e-2) -> torch.Tensor:
    """Per-image standardisation of ``[N, C, H, W]``: subtract each channel's mean over the image
    and divide by the image's standard deviation (at least ``min_std``),

    .. math:: \\tilde x_{c,h,w} = (x_{c,h,w} - \\bar x_c) / \\max(\\mathrm{sd}(x - \\bar x), \\epsilon).

    Global colour and brightness carry no class information in street-number-like images
    (SVHN, SynDigits); removing them lets an encoder spend its capacity on shape — the classic
    global contrast normalisation of SVHN classifiers."""
    centred = x - x.mean((-2, -1), keepdim=True)
    std = centred.flatten(-3).std(-1).clamp_min(min_std)
    return centred / std[..., None, None, None]


class ConvEncoder(nn.Module):
    """Image encoder for ``[N, C, H, W]`` images (28×28 or 32×32): three stride-2 convolutions
    and a linear layer to ``(loc, scale)``.

    :param bool standardize: read :func:`standardize_images` of the input (colour-invariant
        encoder; the decoder still models colour)."""

    def __init__(self, in_shape: Sequence[int], z_dim: int, channels: Sequence[int] = (32, 64, 128),
                 min_scale: float = 1e-3, standardize: bool = False):
        super().__init__()
        self.standardize = bool(standardize)
        if len(in_shape) != 3:
            raise ValueError(f"ConvEncoder reads images [C, H, W], got inputs of shape {list(in_shape)}")
        c, h, w = in_shape
        smallest = 2 ** len(channels)  # each stride-2 convolution (kernel 4, padding 1) halves the size
        if min(h, w) < smallest:
            raise ValueError(f"images of {h}x{w} are too small for ConvEncoder's {len(channels)} stride-2 "
                             f"convolutions, which need at least {smallest}x{smallest}: use the MLP encoder "
                             "(encoder='mlp', or --encoder mlp) or fewer channels")
        layers, prev = [], c
        for ch in channels:
            layers += [nn.Conv2d(prev, ch, 4, 2, 1), nn.ReLU()]
            prev = ch
        self.conv = nn.Sequential(*layers)
        with torch.no_grad():
            flat = self.conv(torch.zeros(1, c, h, w)).numel()
        self.head = nn.Linear(flat, 2 * z_dim)
        self.min_scale = min_scale

    def forward(self, x):
        if self.standardize:
            x = standardize_images(x)
        h = self.conv(x).flatten(1)
        loc, raw = self.head(h).chunk(2, dim=-1)
        return loc, F.softplus(raw) + self.min_scale


class ConvDecoder(nn.Module):
    """Image decoder ``z -> logits [N, C, H, W]`` mirroring :class:`ConvEncoder` (transposed
    convolutions from a 4×4 map, cropped to H×W)."""

    def __init__(self, z_dim: int, out_shape: Sequence[int], channels: Sequence[int] = (128, 64, 32)):
        super().__init__()
        self.out_shape = tuple(out_shape)
        if len(self.out_shape) != 3:
            raise ValueError(f"ConvDecoder writes images [C, H, W], got an output shape {list(self.out_shape)}")
        largest = 4 * 2 ** len(channels)  # a 4x4 map doubled by each transposed convolution
        if max(self.out_shape[1:]) > largest:
            raise ValueError(f"images of {self.out_shape[1]}x{self.out_shape[2]} are too large for ConvDecoder's "
                             f"{len(channels)} transposed convolutions, which make at most {largest}x{largest}: use "
                             "the MLP decoder (decoder='mlp') or more channels")
        c = self.out_shape[0]
        self.fc = nn.Linear(z_dim, channels[0] * 16)
        layers = []
        for a, b in zip(channels[:-1], channels[1:]):
            layers += [nn.ConvTranspose2d(a, b, 4, 2, 1), nn.ReLU()]
        layers.append(nn.ConvTranspose2d(channels[-1], c, 4, 2, 1))
        self.deconv = nn.Sequential(*layers)
        self.channels0 = channels[0]

    def forward(self, z):
        h = F.relu(self.fc(z)).reshape(z.shape[0], self.channels0, 4, 4)
        out = self.deconv(h)  # [N, C, 32, 32]
        H, W = self.out_shape[1:]
        top, left = (out.shape[-2] - H) // 2, (out.shape[-1] - W) // 2
        return out[..., top:top + H, left:left + W]


class TextEncoder(nn.Module):
    """Token-sequence encoder: ids ``[N, L]`` (int64) or soft tokens ``[N, L, V]`` (probability
    vectors, e.g. MEME's pseudo-samples) -> embedding -> 1-D convolutions -> ``(loc, scale)``."""

    def __init__(self, vocab_size: int, seq_len: int, z_dim: int, embed: int = 64, hidden: int = 128,
                 min_scale: float = 1e-3):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed)
        self.conv = nn.Sequential(nn.Conv1d(embed, hidden, 3, padding=1), nn.ReLU(),
                                  nn.Conv1d(hidden, hidden, 3, padding=1), nn.ReLU())
        self.head = nn.Linear(hidden * seq_len, 2 * z_dim)
        self.min_scale = min_scale

    def forward(self, tokens):
        if tokens.is_floating_point():  # soft tokens [N, L, V]
            e = tokens @ self.embedding.weight
        else:
            e = self.embedding(tokens)
        h = self.conv(e.transpose(1, 2)).flatten(1)
        loc, raw = self.head(h).chunk(2, dim=-1)
        return loc, F.softplus(raw) + self.min_scale


class TextDecoder(nn.Module):
    """Token-sequence decoder ``z -> logits [N, L, V]`` (an MLP, one softmax per position)."""

    def __init__(self, z_dim: int, seq_len: int, vocab_size: int, hidden: int = 256):
        super().__init__()
        self.shape = (seq_len, vocab_size)
        self.net = _mlp([z_dim, hidden, hidden, seq_len * vocab_size])

    def forward(self, z):
        return self.net(z).reshape((z.shape[0],) + self.shape)


class LabelEncoder(nn.Module):
    """Encoder of a label, a categorical modality with one of ``num_categories`` classes per
    sample: class ids ``[N]`` (int64) -> one-hot -> an MLP with ReLU hidden layers -> ``(loc,
    scale) [N, z_dim]``.

    It also reads probability vectors ``[N, K]`` over the classes in place of the one-hot vectors
    ("soft labels", e.g. MEME's pseudo-samples of the label). A label stored as ``[N, 1]`` (event
    shape ``(1,)``) is read the same way. The decoder of a label is any network to ``K`` logits,
    e.g. ``MLPDecoder(z_dim, (K,))`` with the likelihood ``Categorical(K)``.
    """

    def __init__(self, num_categories: int, z_dim: int, hidden: Sequence[int] = (256,), min_scale: float = 1e-3):
        super().__init__()
        if isinstance(num_categories, bool) or not isinstance(num_categories, int) or num_categories < 2:
            raise ValueError(f"LabelEncoder: num_categories must be an integer >= 2, got {num_categories!r}")
        self.num_categories = num_categories
        self.net = _mlp([num_categories, *hidden, 2 * z_dim])
        self.min_scale = min_scale

    def forward(self, labels: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        k = self.num_categories
        dtype = self.net[0].weight.dtype
        if labels.is_floating_point():  # probability vectors [N, (1,) K]
            if labels.shape[-1] != k:
                raise ValueError(f"LabelEncoder of {k} classes: probability vectors must end in {k} entries, got "
                                 f"shape {list(labels.shape)}")
            one_hot = labels.reshape(labels.shape[0], k).to(dtype)
        else:
            ids = labels.reshape(labels.shape[0])
            if ids.device.type == "cpu" and ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= k):
                raise ValueError(f"LabelEncoder of {k} classes: class ids must lie in [0, {k}), got values in "
                                 f"[{int(ids.min())}, {int(ids.max())}]")
            one_hot = F.one_hot(ids.long(), k).to(dtype)
        loc, raw = self.net(one_hot).chunk(2, dim=-1)
        return loc, F.softplus(raw) + self.min_scale
