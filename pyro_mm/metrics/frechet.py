"""Fréchet distance between two feature sets (the FID of Heusel et al., 2017).

With ``(mu_1, Sigma_1)`` and ``(mu_2, Sigma_2)`` the sample means and covariances of two feature
sets, the Fréchet (2-Wasserstein) distance between the Gaussians they define is

``d^2 = ||mu_1 - mu_2||^2 + tr(Sigma_1) + tr(Sigma_2) - 2 tr((Sigma_1^{1/2} Sigma_2 Sigma_1^{1/2})^{1/2})``

(Heusel et al., 2017, "GANs Trained by a Two Time-Scale Update Rule Converge to a Local Nash
Equilibrium"; ``tr (Sigma_1 Sigma_2)^{1/2}`` equals the last trace since the matrices are
similar). Both square roots are of symmetric positive semi-definite matrices and are taken in
float64 through an eigendecomposition with the round-off negative eigenvalues clipped to zero, so
no complex parts or ``sqrtm`` failures arise. Inception weights cannot be fetched offline; the
features come from the project's own classifiers (:mod:`pyro_mm.metrics.classifiers`).
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["psd_sqrt", "frechet_distance", "classifier_features", "classifier_frechet_distance"]


def psd_sqrt(matrix: torch.Tensor) -> torch.Tensor:
    """Symmetric square root of a symmetric PSD matrix (eigenvalues below zero clipped)."""
    values, vectors = torch.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * values.clamp_min(0).sqrt()) @ vectors.T


def _moments(features, what: str):
    f = torch.as_tensor(features).detach().to(torch.float64)
    if f.dim() != 2 or f.shape[0] < 2:
        raise ValueError(f"{what}: expected features [N, F] with N >= 2, got {tuple(f.shape)}")
    if not torch.isfinite(f).all():
        raise ValueError(f"{what}: features contain NaN or inf")
    return f.mean(0), torch.cov(f.T).reshape(f.shape[1], f.shape[1])


def frechet_distance(features_1, features_2) -> float:
    """Fréchet distance ``d^2`` (squared, as FID is reported) between ``[N1, F]`` and ``[N2, F]``."""
    mu_1, cov_1 = _moments(features_1, "first feature set")
    mu_2, cov_2 = _moments(features_2, "second feature set")
    if mu_1.shape != mu_2.shape:
        raise ValueError(f"feature sizes differ: {mu_1.shape[0]} and {mu_2.shape[0]}")
    mu_2, cov_2 = mu_2.to(mu_1.device), cov_2.to(mu_1.device)
    root_1 = psd_sqrt(cov_1)
    cross = torch.linalg.eigvalsh(root_1 @ cov_2 @ root_1).clamp_min(0).sqrt().sum()
    d2 = (mu_1 - mu_2).square().sum() + cov_1.trace() + cov_2.trace() - 2 * cross
    return max(d2.item(), 0.0)


@torch.no_grad()
def classifier_features(classifier: nn.Module, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """``classifier.features`` of ``x`` in batches (on the classifier's device)."""
    if len(x) == 0:
        raise ValueError("no samples to compute features of")
    device = next(classifier.parameters()).device
    was_training = classifier.training
    classifier.eval()
    out = torch.cat([classifier.features(x[i : i + batch_size].to(device))
                     for i in range(0, len(x), batch_size)])
    classifier.train(was_training)
    return out


def classifier_frechet_distance(classifier: nn.Module, real: torch.Tensor, generated: torch.Tensor,
                                batch_size: int = 1000) -> float:
    """Fréchet distance between real and generated samples of one modality in the feature space
    of its classifier (:meth:`features`, the penultimate layer)."""
    return frechet_distance(classifier_features(classifier, real, batch_size),
                            classifier_features(classifier, generated, batch_size))
