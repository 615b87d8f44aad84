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
:meth:`features`, or a PCA) rather than raw pixels when ``N`` is not much larger than ``p + q`` —
or score out of sample: :func:`held_out_cca_correlation` finds the canonical directions on one
half of the pairs and measures the correlations of the other half's projections, which are not
inflated by the fit (independent views score ≈ 0 whatever ``p`` and ``q``).
"""

from __future__ import annotations

import torch

__all__ = ["canonical_correlations", "cca_correlation", "held_out_cca_correlation"]


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


def _canonical(x: torch.Tensor, y: torch.Tensor, reg: float):
    """``(rho, a, b)``: canonical correlations and the directions (columns) of centred views."""
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"the views have different numbers of samples: {x.shape[0]} and {y.shape[0]}")
    if reg < 0:
        raise ValueError(f"reg must be non-negative, got {reg}")
    n = x.shape[0] - 1
    wx, wy = _inverse_sqrt(x.T @ x / n, reg), _inverse_sqrt(y.T @ y / n, reg)
    u, rho, vh = torch.linalg.svd(wx @ (x.T @ y / n) @ wy, full_matrices=False)
    return rho.clamp(0, 1), wx @ u, wy @ vh.T


def canonical_correlations(x, y, reg: float = 1e-6) -> torch.Tensor:
    """All ``min(p, q)`` canonical correlations of views ``x`` ``[N, ...]`` and ``y`` ``[N, ...]``
    (flattened per sample), in decreasing order, float64."""
    x, y = _view(x, "first view"), _view(y, "second view")
    return _canonical(x, y.to(x.device), reg)[0]


def cca_correlation(x, y, k: int = 1, reg: float = 1e-6) -> float:
    """Mean of the top ``k`` canonical correlations of ``x`` and ``y`` (see the module text)."""
    rho = canonical_correlations(x, y, reg)
    if not 1 <= k <= len(rho):
        raise ValueError(f"k must lie in [1, {len(rho)}] (the smaller view's size), got {k}")
    return rho[:k].mean().item()


def held_out_cca_correlation(x, y, k: int = 1, reg: float = 1e-3) -> float:
    """Mean of the top ``k`` canonical correlations measured out of sample: the directions found
    on the first half of the pairs, the correlation of each projected pair of directions measured on
    the second half (centred with the first half's means)."""
    x, y = torch.as_tensor(x).detach(), torch.as_tensor(y).detach()
    half = x.shape[0] // 2
    if half < 2:
        raise ValueError(f"need at least four pairs to fit on one half and score on the other, got {x.shape[0]}")
    fit_x, fit_y = _view(x[:half], "first view"), _view(y[:half], "second view").to(x.device)
    _, a, b = _canonical(fit_x, fit_y, reg)
    if not 1 <= k <= a.shape[1]:
        raise ValueError(f"k must lie in [1, {a.shape[1]}] (the smaller view's size), got {k}")
    mx = x[:half].reshape(half, -1).to(torch.float64).mean(0)
    my = y[:half].reshape(half, -1).to(torch.float64).mean(0).to(x.device)
    px = (x[half:].reshape(x.shape[0] - half, -1).to(torch.float64) - mx) @ a[:, :k]
    py = (y[half:].reshape(y.shape[0] - half, -1).to(torch.float64).to(x.device) - my) @ b[:, :k]
    px, py = px - px.mean(0), py - py.mean(0)
    corr = (px * py).sum(0) / (px.norm(dim=0) * py.norm(dim=0)).clamp_min(torch.finfo(torch.float64).tiny)
    return corr.mean().item()
