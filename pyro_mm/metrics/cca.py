"""Canonical correlation between two views (e.g. an input and its cross-generated partner).

With centred views ``X`` ``[N, p]`` and ``Y`` ``[N, q]`` and regularised covariances
``C_xx = X^T X / (N - 1) + r_x I``, ``C_yy`` likewise and ``C_xy = X^T Y / (N - 1)``, the
canonical correlations ``rho_1 >= rho_2 >= ...`` are the singular values of the whitened
cross-covariance ``C_xx^{-1/2} C_xy C_yy^{-1/2}`` (Hotelling, 1936). The ridge ``r_x`` is
``reg`` times the mean variance of ``X``, so the score does not depend on the views' units. The
metric is the mean of the top ``k`` correlations, as in the CCA evaluation of image-text VAEs
(Shi et al., 2019, following Massiceti et al., 2018).

Everything is in float64. With ``N`` samples the spurious correlations of independent views grow
like ``sqrt(p q / N)``-ish, so pass low-dimensional features (a classifier's
:meth:`features`, or a PCA) rather than raw pixels when ``N`` is not much larger than ``p + q``.
"""

from __future__ import annotations

import torch

__all__ = ["canonical_correlations", "cca_correlation"]


def _view(x, what: str) -> torch.Tensor:
    x = torch.as_tensor(x).detach()
    if x.dim() < 2:
        raise ValueError(f"{what}: expected [N, ...] with at least one feature, got {tuple(x.shape)}")
    x = x.reshape(x.shape[0], -1).to(torch.float64)
    if x.shape[0] < 2 or x.shape[1] == 0:
        raise ValueError(f"{what}: need at least two samples and one feature, got {tuple(x.shape)}")
    if not torch.isfinite(x).all():
        raise ValueError(f"{what}: NaN or inf values")
    return x - x.mean(0)


def _inverse_sqrt(cov: torch.Tensor, reg: float) -> torch.Tensor:
    ridge = reg * cov.diagonal().mean().clamp_min(torch.finfo(cov.dtype).tiny)
    values, vectors = torch.linalg.eigh(cov + ridge * torch.eye(len(cov), dtype=cov.dtype, device=cov.device))
    return (vectors * values.clamp_min(ridge).rsqrt()) @ vectors.T


def canonical_correlations(x, y, reg: float = 1e-6) -> torch.Tensor:
    """All ``min(p, q)`` canonical correlations of views ``x`` ``[N, ...]`` and ``y`` ``[N, ...]``
    (flattened per sample), in decreasing order, float64."""
    x, y = _view(x, "first view"), _view(y, "second view")
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"the views have different numbers of samples: {x.shape[0]} and {y.shape[0]}")
    if reg < 0:
        raise ValueError(f"reg must be non-negative, got {reg}")
    y = y.to(x.device)
    n = x.shape[0] - 1
    whitened = _inverse_sqrt(x.T @ x / n, reg) @ (x.T @ y / n) @ _inverse_sqrt(y.T @ y / n, reg)
    return torch.linalg.svdvals(whitened).clamp(0, 1)


def cca_correlation(x, y, k: int = 1, reg: float = 1e-6) -> float:
    """Mean of the top ``k`` canonical correlations of ``x`` and ``y`` (see the module text)."""
    rho = canonical_correlations(x, y, reg)
    if not 1 <= k <= len(rho):
        raise ValueError(f"k must lie in [1, {len(rho)}] (the smaller view's size), got {k}")
    return rho[:k].mean().item()
