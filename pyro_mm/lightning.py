"""Training with PyTorch Lightning: data-parallel, on any accelerator, with Lightning's loggers.

An optional extra (``pip install -e .[lightning]``); the core and the built-in trainer work
without it. :class:`LightningObjective` trains any :class:`~pyro_mm.training.Objective` — a
registered method, or ``Objective(model, guide, elbo)`` for your own Pyro model, guide and pyro_mm
objective — with the **same step function** as the built-in trainer: the objective's ``forward``
(the loss whose gradient is the objective's estimator), the same fused Adam, the same
initialisation from the data (MEME's pseudo-samples). This is how Pyro itself trains at scale
(its ``svi_lightning`` example) and how the largest Pyro-based libraries train their modules.

Data parallelism (``strategy="ddp"``): every process draws its own random numbers (particles,
sampled subsets: seeded by the run's seed and the process's rank) on its shard of every batch, and
returns its loss times the number of processes, so that DDP's average of the gradients is the
gradient of the loss summed over every process's samples — the gradient one process would get on
all of them together. Parameters, MEME's pseudo-samples and learned scales included, start equal
in every process (initialised before the processes part, and broadcast by DDP).

Mixed precision is refused: the bounds' log-sum-exps over particles and strata, and the
likelihoods summed over thousands of pixels, lose the precision the estimators need in bf16 or
fp16.

:func:`fit_lightning` runs a ``lightning.Trainer`` on a pyro_mm data set and leaves the process of
rank 0 with the trained object (save it with its ``save``; the run's step losses are in its
``step_losses``).
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import torch

try:
    import lightning as L
except ImportError as error:  # pragma: no cover - the extra is installed in the tests
    raise ImportError("pyro_mm.lightning needs PyTorch Lightning: pip install -e '.[lightning]' "
                      "(or pip install lightning)") from error

from torch.utils.data import DataLoader, Dataset

from .batch import MultimodalBatch, collate_multimodal
from .monitor import log_cross_generation, log_step
from .training import Objective, adam

__all__ = ["LightningObjective", "fit_lightning", "data_loader", "SUPPORTED_PRECISION"]

#: the precision settings the bounds support
SUPPORTED_PRECISION = ("32", "32-true", "64", "64-true")


def _world_size() -> int:
    distributed = torch.distributed.is_available() and torch.distributed.is_initialized()
    return torch.distributed.get_world_size() if distributed else 1


class _Rows(Dataset):
    """The samples of a :class:`MultimodalBatch` as a data set of items."""

    def __init__(self, batch: MultimodalBatch):
        self.batch = batch

    def __len__(self):
        return len(self.batch)

    def __getitem__(self, i):
        item = {"data": {n: self.batch[n][i] for n in self.batch.names}, "mask": self.batch.mask[i]}
        if self.batch.labels is not None:
            item["label"] = int(self.batch.labels[i])
        return item


def data_loader(data, batch_size: int, seed: int = 0, **kwargs) -> DataLoader:
    """A shuffled ``DataLoader`` of :class:`MultimodalBatch` es over a pyro_mm data set or a batch
    (under DDP, Lightning shards it across the processes)."""
    dataset = _Rows(data) if isinstance(data, MultimodalBatch) else data
    return DataLoader(dataset, batch_size=batch_size, shuffle=True, collate_fn=collate_multimodal,
                      generator=torch.Generator().manual_seed(seed), **kwargs)


class LightningObjective(L.LightningModule):
    """A pyro_mm :class:`~pyro_mm.training.Objective` as a ``LightningModule``.

    :param objective: a registered method or ``Objective(model, guide, elbo)``.
    :param float lr: Adam's learning rate.
    :param int seed: seed of every process's sampling (process r uses ``seed + 1 + r``).
    :param int log_every: steps between logged losses and terms.
    :param images: a batch whose cross-generations are logged every ``images_every`` steps.
    """

    def __init__(self, objective: Objective, lr: float = 1e-3, seed: int = 0, log_every: int = 1,
                 images: Optional[MultimodalBatch] = None, images_every: int = 0):
        super().__init__()
        if not isinstance(objective, Objective):
            raise TypeError(f"LightningObjective trains a pyro_mm Objective, got {type(objective).__name__}")
        self.objective = objective
        self.lr, self.seed, self.log_every, self.images, self.images_every = lr, seed, log_every, images, images_every

    def on_fit_start(self) -> None:
        precision = str(self.trainer.precision)
        if precision not in SUPPORTED_PRECISION:
            raise ValueError(f"precision {precision!r} is not supported: the bounds' log-sum-exps and summed "
                             f"likelihoods need float32 or float64 ({', '.join(SUPPORTED_PRECISION)})")
        torch.manual_seed(self.seed + 1 + self.global_rank)  # every process draws its own particles

    def transfer_batch_to_device(self, batch, device, dataloader_idx):
        return batch.to(device)

    def training_step(self, batch, batch_idx):
        loss = self.objective(self.objective.to_model(batch))  # the built-in trainer's step function
        self._last = (loss.detach(), len(batch))
        return loss * _world_size()  # DDP averages: the gradient of the sum over every process's samples

    def on_train_batch_end(self, outputs, batch, batch_idx) -> None:
        loss, count = self._last
        totals = self.all_gather(torch.stack([loss, loss.new_tensor(float(count))]))
        totals = totals.reshape(-1, 2).sum(0)
        per_sample = (totals[0] / totals[1]).item()
        if not math.isfinite(per_sample):
            raise FloatingPointError(f"the loss is {per_sample} at step {self.global_step}; lower the learning rate or "
                                     "check the data")
        self.objective.step_losses.append(per_sample)
        if self.trainer.is_global_zero and self.loggers and len(self.objective.step_losses) % self.log_every == 0:
            log_step(self.loggers, self.objective, per_sample, self.global_step, self.current_epoch)
            if self.images_every and self.global_step % self.images_every == 0 and self.images is not None:
                log_cross_generation(self.loggers, self.objective, self.images, self.global_step)

    def on_train_epoch_start(self) -> None:
        self._epoch_start = len(self.objective.step_losses)

    def on_train_epoch_end(self) -> None:
        done = self.objective.step_losses[self._epoch_start:]
        if done:
            self.objective.history.append(sum(done) / len(done))

    def configure_optimizers(self):
        return adam(self.objective.parameters(), self.lr)


def fit_lightning(objective: Objective, data, batch_size: int = 128, lr: float = 1e-3, seed: int = 0,
                  epochs: Optional[int] = None, steps: Optional[int] = None, accelerator: str = "auto",
                  devices="auto", strategy: str = "auto", num_nodes: int = 1, precision: str = "32-true",
                  loggers: Sequence = (), log_every: int = 1, images: Optional[MultimodalBatch] = None,
                  images_every: int = 0, progress: bool = True, default_root_dir=None,
                  callbacks: Sequence = ()) -> "L.Trainer":
    """Train ``objective`` on ``data`` with a ``lightning.Trainer``; returns the trainer.

    ``batch_size`` is per process. ``epochs`` and ``steps`` as in the built-in trainer (whichever
    ends first; ``epochs`` defaults to 1 when neither is given). ``callbacks`` are Lightning
    callbacks, passed to the trainer.
    """
    if str(precision) not in SUPPORTED_PRECISION:
        raise ValueError(f"precision {precision!r} is not supported: the bounds' log-sum-exps and summed likelihoods "
                         f"need float32 or float64 ({', '.join(SUPPORTED_PRECISION)})")
    data = objective.training_data(data)
    objective.initialise(data)  # before the processes part: every process starts from the same state
    module = LightningObjective(objective, lr=lr, seed=seed, log_every=log_every, images=images,
                                images_every=images_every)
    trainer = L.Trainer(accelerator=accelerator, devices=devices, strategy=strategy, num_nodes=num_nodes,
                        precision=precision, max_epochs=epochs if epochs is not None else (-1 if steps else 1),
                        max_steps=steps if steps is not None else -1, logger=list(loggers) or False,
                        enable_checkpointing=False, enable_progress_bar=progress, enable_model_summary=False,
                        default_root_dir=default_root_dir, deterministic=False, log_every_n_steps=log_every,
                        callbacks=list(callbacks))
    trainer.fit(module, data_loader(data, batch_size, seed))
    return trainer
