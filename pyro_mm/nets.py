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

__all__ = ["MLPEncoder", "MLPDecoder", "LinearEncoder", "LinearDecoder"]


def _mlp(sizes: Sequence[int]) -> nn.Sequential:
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class MLPEncoder(nn.Module):
    """``x [N, *in_shape] -> (loc, scale) [N, z_dim]`` through an MLP with ReLU hidden layers."""

    def __init__(self, in_shape: Sequence[int], z_dim: int, hidden: Sequence[int] = (512,),
                 min_scale: float = 1e-3):
        super().__init__()
        self.in_features = math.prod(in_shape)
        self.net = _mlp([self.in_features, *hidden, 2 * z_dim])
        self.min_scale = min_scale

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        h = self.net(x.reshape(x.shape[0], self.in_features).to(self.net[0].weight.dtype))
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
