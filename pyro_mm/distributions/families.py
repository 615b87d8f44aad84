"""The two families pyro_mm's latent experts, posteriors and priors come in: diagonal Normal and
diagonal Laplace, each given by a location and a scale per dimension.

=========  ==========================================================  ===========================
family     log-density (per dimension)                                 reparameterised draw
=========  ==========================================================  ===========================
normal     −½((v − μ)/σ)² − log σ − ½ log 2π                            μ + σ ε,  ε ~ N(0, 1)
laplace    −|v − μ|/b − log 2b                                          μ + b ε,  ε ~ Laplace(0, 1)
=========  ==========================================================  ===========================

Products of experts exist in closed form for the Normal family only; a Laplace posterior is a
single expert or a mixture of single experts (MMVAE+, Palumbo et al. 2023).
"""

from __future__ import annotations

import math

import torch

from .gaussian import normal_entropy, normal_log_prob

__all__ = ["LatentFamily", "FAMILIES", "latent_family", "laplace_log_prob"]

_LOG_2 = math.log(2.0)


def laplace_log_prob(value: torch.Tensor, loc: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """log Laplace(value; loc, scale), summed over the last dimension."""
    return (-(value - loc).abs() / scale - scale.log() - _LOG_2).sum(-1)


def _laplace_noise(shape, like: torch.Tensor) -> torch.Tensor:
    """Standard Laplace draws by the inverse CDF (as ``torch.distributions.Laplace``)."""
    u = torch.empty(shape, dtype=like.dtype, device=like.device).uniform_(torch.finfo(like.dtype).eps - 1, 1)
    return -u.sign() * torch.log1p(-u.abs())


class LatentFamily:
    """A location–scale family of diagonal distributions over the last dimension."""

    def __init__(self, name: str, log_prob, noise, entropy):
        self.name = name
        self._log_prob, self._noise, self._entropy = log_prob, noise, entropy

    def log_prob(self, value: torch.Tensor, loc: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        """log-density of ``value`` summed over the last dimension."""
        return self._log_prob(value, loc, scale)

    def rsample(self, loc: torch.Tensor, scale: torch.Tensor, shape: torch.Size) -> torch.Tensor:
        """A reparameterised draw of ``shape`` (``loc`` and ``scale`` broadcast to it)."""
        return loc + scale * self._noise(shape, loc)

    def entropy(self, scale: torch.Tensor) -> torch.Tensor:
        """Entropy summed over the last dimension."""
        return self._entropy(scale)

    def __repr__(self) -> str:
        return f"LatentFamily({self.name!r})"


NORMAL = LatentFamily("normal", normal_log_prob,
                      lambda shape, like: torch.randn(shape, dtype=like.dtype, device=like.device), normal_entropy)
LAPLACE = LatentFamily("laplace", laplace_log_prob, _laplace_noise,
                       lambda scale: (1.0 + _LOG_2 + scale.log()).sum(-1))
FAMILIES = {"normal": NORMAL, "laplace": LAPLACE}


def latent_family(name) -> LatentFamily:
    """The family called ``name`` (``"normal"`` or ``"laplace"``), or the family itself."""
    if isinstance(name, LatentFamily):
        return name
    if name not in FAMILIES:
        raise ValueError(f"unknown latent family {name!r}; choose one of {sorted(FAMILIES)}")
    return FAMILIES[name]
