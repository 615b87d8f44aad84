"""Latent accuracy: how linearly the class can be read off an embedding (a linear probe).

A multinomial logistic regression ``p(y = c | z) = softmax(W s(z) + b)_c`` is fitted on training
embeddings, where ``s`` standardises every dimension with the training mean and standard
deviation, by minimising the mean cross entropy plus ``l2 * ||W||^2`` with full-batch L-BFGS
(strong-Wolfe line search) in float64; the score is the accuracy of ``argmax_c`` on test
embeddings. This is the latent classification accuracy of Shi et al. (2019) and Sutter et al.
(2021), applied to posterior means of each encoder and of the joint posterior.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

__all__ = ["linear_probe_accuracy"]


def _check(z, y, what: str):
    z, y = torch.as_tensor(z), torch.as_tensor(y)
    if z.dim() != 2 or y.dim() != 1 or z.shape[0] != y.shape[0]:
        raise ValueError(
            f"{what}: expected embeddings [N, D] and labels [N], got {tuple(z.shape)} and "
            f"{tuple(y.shape)}"
        )
    if z.shape[0] == 0:
        raise ValueError(f"{what}: no samples")
    if y.is_floating_point():
        raise ValueError(f"{what}: labels must be integers, got {y.dtype}")
    return z.detach().to(torch.float64), y.detach().to(device=z.device, dtype=torch.long)


def linear_probe_accuracy(
    train_z,
    train_y,
    test_z,
    test_y,
    num_classes: int | None = None,
    l2: float = 1e-4,
    max_iter: int = 200,
) -> float:
    """Test accuracy of a linear classifier fitted to ``(train_z, train_y)``.

    :param train_z: training embeddings ``[N, D]`` (tensor or array). :param train_y: ``[N]``.
    :param test_z: test embeddings ``[N', D]``. :param test_y: ``[N']``.
    :param int num_classes: number of classes (default: the largest label seen, plus one).
    :param float l2: weight decay on ``W``. :param int max_iter: L-BFGS iterations.
    """
    train_z, train_y = _check(train_z, train_y, "training set")
    test_z, test_y = _check(test_z, test_y, "test set")
    if train_z.shape[1] != test_z.shape[1]:
        raise ValueError(f"embedding sizes differ: train {train_z.shape[1]}, test {test_z.shape[1]}")
    test_z, test_y = test_z.to(train_z.device), test_y.to(train_z.device)
    if num_classes is None:
        num_classes = int(max(train_y.max(), test_y.max())) + 1
    mean, std = train_z.mean(0), train_z.std(0, unbiased=False).clamp_min(1e-12)
    x = (train_z - mean) / std
    weight = torch.zeros(x.shape[1], num_classes, dtype=x.dtype, device=x.device, requires_grad=True)
    bias = torch.zeros(num_classes, dtype=x.dtype, device=x.device, requires_grad=True)
    optimiser = torch.optim.LBFGS([weight, bias], max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure():
        optimiser.zero_grad()
        loss = F.cross_entropy(x @ weight + bias, train_y) + l2 * weight.square().sum()
        loss.backward()
        return loss

    optimiser.step(closure)
    with torch.no_grad():
        pred = (((test_z - mean) / std) @ weight + bias).argmax(-1)
    return (pred == test_y).double().mean().item()
