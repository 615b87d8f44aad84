"""Pareto k̂ diagnostic of importance weights (Vehtari et al., 2024, "Pareto Smoothed Importance
Sampling", JMLR), through ArviZ.

For importance log-weights ``log w_k = log p(x, z_k) - log q(z_k | x)``, ``k = 1 .. K``, a
generalised Pareto distribution is fitted to the largest ``min(K / 5, 3 sqrt(K))`` weights; its
shape ``k̂`` tells how heavy the tail of the weights is and hence how far an importance-sampled
estimate such as ``log p(x) ≈ log (1/K) sum_k w_k`` can be trusted: ``k̂ < 0.5`` is fine,
``0.5 <= k̂ < 0.7`` usable, ``k̂ >= 0.7`` unreliable (the variance of the weights is then
effectively infinite and the estimate converges impractically slowly).

The fit is ``arviz_stats.base.array_stats.psislw`` (arviz-stats): it smooths the weights
``exp(-a)`` of its argument ``a`` (the PSIS-LOO convention, ``a`` a log-likelihood), so it is
given the *negated* log-weights. Its sibling ``pareto_khat(..., log_weights=True)`` is not used:
in arviz-stats 0.8 it fits the tail of the log-weights themselves rather than of the weights.
"""

from __future__ import annotations

from typing import Dict

import numpy as np
from arviz_stats.base import array_stats

__all__ = ["MIN_PARTICLES", "pareto_khat", "khat_summary"]

#: Fewest particles for which the tail fit has its five draws (``K / 5 >= 5``).
MIN_PARTICLES = 25


def _tail_size(num_particles: int) -> int:
    """Number of largest weights the Pareto fit uses (Vehtari et al., 2024, with ``r_eff = 1``)."""
    return int(3 * num_particles**0.5) if num_particles > 225 else num_particles // 5


def pareto_khat(log_weights) -> np.ndarray:
    """One Pareto ``k̂`` per sample of log-weights ``[num_samples, num_particles]``.

    :param log_weights: array-like (tensors are detached and moved to the CPU); each row holds
        the ``K`` importance log-weights of one sample. Rows are independent draws, so the
        relative efficiency is 1.
    :returns: float64 array ``[num_samples]``; ``-inf`` for a row whose tail weights are all
        equal (e.g. a proposal equal to the target: nothing to fit, nothing heavy-tailed).
    """
    if hasattr(log_weights, "detach"):
        log_weights = log_weights.detach().cpu().numpy()
    lw = np.asarray(log_weights, dtype=np.float64)
    if lw.ndim != 2 or lw.shape[0] == 0:
        raise ValueError(f"expected log-weights [num_samples, num_particles], got shape {lw.shape}")
    if lw.shape[1] < MIN_PARTICLES:
        raise ValueError(f"the Pareto fit needs at least {MIN_PARTICLES} particles, got {lw.shape[1]}")
    if not np.isfinite(lw).all():
        raise ValueError("log-weights contain NaN or inf")
    khat = np.full(lw.shape[0], -np.inf)
    # weights equal up to round-off (a proposal equal to the target): nothing to fit
    flat = np.ptp(np.sort(lw, axis=1)[:, -_tail_size(lw.shape[1]):], axis=1) <= 1e-9
    if not flat.all():
        khat[~flat] = array_stats.psislw(-lw[~flat], r_eff=1.0, axis=-1)[1]
    return khat


def khat_summary(khat, threshold: float = 0.7) -> Dict[str, float]:
    """``{"mean", "max", "frac_above"}`` of ``k̂`` values (``frac_above``: share ``> threshold``)."""
    khat = np.asarray(khat, dtype=np.float64).ravel()
    if khat.size == 0:
        raise ValueError("no k̂ values to summarise")
    return {"mean": float(khat.mean()), "max": float(khat.max()),
            "frac_above": float((khat > threshold).mean())}
