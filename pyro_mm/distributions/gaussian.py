"""Closed forms for diagonal Gaussians (the experts and posteriors of pyro_mm), summed over the
last (event) dimension."""

from __future__ import annotations

import math

import torch

__all__ = ["normal_log_prob", "normal_entropy", "normal_kl"]

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def normal_log_prob(value: torch.Tensor, loc: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """log N(value; loc, diag scale²), summed over the last dimension."""
    return (-0.5 * ((value - loc) / scale) ** 2 - scale.log() - _HALF_LOG_2PI).sum(-1)


def normal_entropy(scale: torch.Tensor) -> torch.Tensor:
    """Entropy of N(·, diag scale²), summed over the last dimension."""
    return (0.5 + _HALF_LOG_2PI + scale.log()).sum(-1)


def normal_kl(loc_p: torch.Tensor, scale_p: torch.Tensor, loc_q: torch.Tensor, scale_q: torch.Tensor) -> torch.Tensor:
    """KL(N(loc_p, scale_p²) ‖ N(loc_q, scale_q²)), summed over the last dimension:
    ½ Σ [σ_p²/σ_q² + (μ_p − μ_q)²/σ_q² − 1] + Σ log(σ_q/σ_p)."""
    ratio = (scale_p / scale_q) ** 2
    return (0.5 * (ratio + ((loc_p - loc_q) / scale_q) ** 2 - 1.0 - ratio.log())).sum(-1)
