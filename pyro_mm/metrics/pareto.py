"""Pareto k̂ diagnostic of importance weights (Vehtari et al., 2024, "Pareto Smoothed Importance
Sampling", JMLR), vectorised over samples.

For importance log-weights ``log w_k = log p(x, z_k) - log q(z_k | x)``, ``k = 1 .. K``, a
generalised Pareto distribution is fitted to the exceedances of the ``n = min(K / 5, 3 sqrt(K))``
largest weights over the next one; its shape ``k̂`` tells how heavy the tail of the weights is
and hence how far an importance-sampled estimate such as ``log p(x) ≈ log (1/K) sum_k w_k`` can be
trusted: ``k̂ < 0.5`` is fine, ``0.5 <= k̂ < 0.7`` usable, ``k̂ >= 0.7`` unreliable (the variance
of the weights is then effectively infinite and the estimate converges impractically slowly).

The fit is the empirical-Bayes estimate of Zhang & Stephens (2009) with the weakly informative
prior of Vehtari et al.: for exceedances ``x_1 <= .. <= x_n`` (weights divided by the largest),
``m = 30 + floor(sqrt(n))`` candidate values

.. math:: \\theta_j = \\frac1{x_n} + \\frac{1 - \\sqrt{m / (j - 1/2)}}{3\\, x_{\\lfloor n/4 + 1/2 \\rfloor}},
          \\qquad k(\\theta) = \\frac1n \\sum_i \\log(1 - \\theta x_i),

weighted by their profile likelihoods ``exp(n (log(-θ/k(θ)) - k(θ) - 1))`` (weights below
``10 ε`` dropped), give the posterior mean ``θ̂``; then ``k̂ = (n k(θ̂) + 10 · 0.5) / (n + 10)``.
It is the fit of ArviZ's ``psislw`` (arviz-stats), which the tests hold it to, computed for all
samples at once on the weights' device in float64 instead of one sample at a time on the host.

References: Zhang & Stephens, *A new and efficient estimation method for the generalized Pareto
distribution*, Technometrics 2009; Vehtari, Simpson, Gelman, Yao, Gabry, JMLR 2024.
"""

from __future__ import annotations

import math
from typing import Dict

import numpy as np
import torch

__all__ = ["MIN_PARTICLES", "pareto_khat", "khat_summary"]

#: Fewest particles for which the tail fit has its five draws (``K / 5 >= 5``).
MIN_PARTICLES = 25
#: most elements of the ``[samples, m, n]`` array of one block of the fit (32 MiB of float64)
_BLOCK_ELEMENTS = 2 ** 22


def _tail_size(num_particles: int) -> int:
    """Number of largest weights the Pareto fit uses (Vehtari et al., 2024, with ``r_eff = 1``)."""
    return int(3 * num_particles**0.5) if num_particles > 225 else num_particles // 5


def _fit_shape(exceedances: torch.Tensor) -> torch.Tensor:
    """``k̂ [b]`` of the generalised Pareto fit to sorted exceedances ``[b, n]`` (module
    docstring); ``+inf`` where the quartile exceedance underflowed to zero (the largest weight
    beyond float64's range of the others: the fit is undefined, one draw carries the estimate,
    as unreliable as it gets)."""
    n = exceedances.shape[-1]
    m = 30 + int(n**0.5)
    j = torch.arange(1, m + 1, dtype=exceedances.dtype, device=exceedances.device)
    quartile = exceedances[:, int(n / 4 + 0.5) - 1: int(n / 4 + 0.5)]
    theta = (1 - torch.sqrt(m / (j - 0.5))) / (3 * quartile) + 1 / exceedances[:, -1:]  # [b, m]
    k = torch.log1p(-theta.unsqueeze(-1) * exceedances.unsqueeze(-2)).mean(-1)  # [b, m]
    weights = torch.softmax(n * (torch.log(-theta / k) - k - 1), dim=-1)
    weights = torch.where(weights >= 10 * torch.finfo(weights.dtype).eps, weights, 0.0)
    theta_hat = (theta * weights).sum(-1) / weights.sum(-1)
    k_hat = torch.log1p(-theta_hat.unsqueeze(-1) * exceedances).mean(-1)
    return torch.where(quartile[:, 0] == 0, math.inf, (n * k_hat + 10 * 0.5) / (n + 10))


def pareto_khat(log_weights) -> torch.Tensor:
    """One Pareto ``k̂`` per sample of log-weights ``[num_samples, num_particles]``.

    :param log_weights: a tensor (kept on its device) or array-like; each row holds the ``K``
        importance log-weights of one sample. Rows are independent draws, so the relative
        efficiency is 1.
    :returns: float64 tensor ``[num_samples]`` on the weights' device; ``-inf`` for a row whose
        tail weights are all equal (e.g. a proposal equal to the target: nothing to fit, nothing
        heavy-tailed), ``+inf`` for one whose largest weight exceeds a quarter of its tail by a
        factor beyond float64's range (one draw carries the estimate; ArviZ returns its prior's
        0.02 there, as if the weights were well behaved).
    """
    lw = torch.as_tensor(np.asarray(log_weights) if not torch.is_tensor(log_weights) else log_weights)
    lw = lw.detach().to(torch.float64)
    if lw.dim() != 2 or lw.shape[0] == 0:
        raise ValueError(f"expected log-weights [num_samples, num_particles], got shape {tuple(lw.shape)}")
    if lw.shape[1] < MIN_PARTICLES:
        raise ValueError(f"the Pareto fit needs at least {MIN_PARTICLES} particles, got {lw.shape[1]}")
    if not bool(torch.isfinite(lw).all()):
        raise ValueError("log-weights contain NaN or inf")
    n = _tail_size(lw.shape[1])
    top = lw.topk(n + 1, dim=-1).values.flip(-1)  # [S, n + 1]: the cutoff, then the tail ascending
    khat = torch.full(lw.shape[:1], -math.inf, dtype=torch.float64, device=lw.device)
    # weights equal up to round-off (a proposal equal to the target): nothing to fit
    fitted = ((top[:, -1] - top[:, 1]) > 1e-9).nonzero().flatten()
    block = max(1, _BLOCK_ELEMENTS // ((30 + int(n**0.5)) * n))
    for rows in fitted.split(block):
        shifted = (top[rows] - top[rows, -1:]).exp()  # weights over the largest
        khat[rows] = _fit_shape(shifted[:, 1:] - shifted[:, :1])
    return khat


def khat_summary(khat, threshold: float = 0.7) -> Dict[str, float]:
    """``{"mean", "max", "frac_above"}`` of ``k̂`` values (``frac_above``: share ``> threshold``)."""
    khat = (khat.detach().cpu().numpy() if torch.is_tensor(khat) else np.asarray(khat)).astype(np.float64).ravel()
    if khat.size == 0:
        raise ValueError("no k̂ values to summarise")
    return {"mean": float(khat.mean()), "max": float(khat.max()),
            "frac_above": float((khat > threshold).mean())}
