"""A small SVI training loop with progress: epochs over a data loader, per-sample bound history."""

from __future__ import annotations

from typing import Callable, Iterable, List, Optional

import pyro
from pyro.infer import SVI
from tqdm.auto import tqdm

from .batch import MultimodalBatch

__all__ = ["train_svi"]


def train_svi(model, guide, elbo, batches: Callable[[], Iterable[MultimodalBatch]], epochs: int,
              optim: Optional[pyro.optim.PyroOptim] = None, lr: float = 1e-3, progress: bool = True,
              on_epoch: Optional[Callable[[int, float], None]] = None, desc: str = "train") -> List[float]:
    """Train ``model``/``guide`` with :class:`pyro.infer.SVI` for ``epochs`` passes.

    :param batches: called once per epoch, returns an iterable of batches.
    :param on_epoch: called with (epoch, mean bound per sample) after every epoch.
    :returns: the mean training bound per sample of every epoch.
    """
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    svi = SVI(model, guide, optim or pyro.optim.Adam({"lr": lr}), loss=elbo)
    history = []
    for epoch in range(1, epochs + 1):
        total, count = 0.0, 0
        bar = tqdm(batches(), desc=f"{desc} epoch {epoch}/{epochs}", disable=not progress, leave=False)
        for batch in bar:
            total += svi.step(batch)
            count += len(batch)
            bar.set_postfix(bound=f"{-total / count:.3f}")
        history.append(-total / max(count, 1))
        if on_epoch is not None:
            on_epoch(epoch, history[-1])
    return history
