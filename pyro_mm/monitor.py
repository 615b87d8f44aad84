"""Watching training without reading JSON: the loss, the bound's terms and grids of cross-generated
images, sent to experiment loggers.

A logger is any object with ``log_metrics(metrics: dict, step: int)`` — the interface of
PyTorch Lightning's ``CSVLogger`` and ``TensorBoardLogger`` (which the optional
:mod:`pyro_mm.lightning` trains with, and which the built-in trainer accepts through
:class:`LoggerCallback` alike). Images go to ``logger.experiment.add_image`` where the logger has
one (TensorBoard) and otherwise to PNG files in the logger's ``log_dir`` (``images/step_<n>.png``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Optional, Sequence

import numpy as np
import torch

from .batch import MultimodalBatch
from .extras import require

__all__ = ["LoggerCallback", "step_metrics", "log_step", "cross_generation_image", "log_image", "log_cross_generation"]


def step_metrics(objective, loss_per_sample: float) -> Dict[str, float]:
    """The loss per sample and the terms of the bound at the last step (the objective's
    ``last_terms``: each modality's log-likelihood, log p − log q, MEME's paired and unpaired
    bounds ...), as numbers."""
    metrics = {"loss": float(loss_per_sample)}
    terms = getattr(objective.elbo, "last_terms", None) or {}
    metrics.update({f"terms/{name}": float(value) for name, value in terms.items()})
    return metrics


def log_step(loggers: Sequence, objective, loss_per_sample: float, step: int, epoch: int) -> None:
    """Send a step's loss per sample, the bound's terms (:func:`step_metrics`) and its epoch to
    every logger."""
    metrics = {**step_metrics(objective, loss_per_sample), "epoch": epoch}
    for logger in loggers:
        logger.log_metrics(metrics, step=step)


def cross_generation_image(vae, batch: MultimodalBatch) -> Optional[np.ndarray]:
    """A grid (``[H, W, 3]`` uint8) of ``batch``'s images and every image modality generated from
    each other modality: one row per sample (``None`` when no modality is an image)."""
    from .metrics.plots import cross_generation_figure

    FigureCanvasAgg = require("matplotlib.backends.backend_agg", "metrics", "image logging").FigureCanvasAgg

    was_training = vae.training
    vae.eval()
    with torch.no_grad():
        batch = vae.to_model(vae.training_data(batch))
        images = [n for n in vae.names if batch[n].dim() == 4]
        if not images:
            vae.train(was_training)
            return None
        generated = {f"{g}->{t}": vae.predict(batch, [g], [t])[t].cpu() for t in images for g in vae.names if g != t}
    vae.train(was_training)
    inputs = {n: batch[n].cpu() for n in vae.names}
    figure = cross_generation_figure(inputs, generated)
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def log_image(loggers: Sequence, name: str, image: Optional[np.ndarray], step: int) -> None:
    """Send ``image`` ``[H, W, 3]`` uint8 to every logger: TensorBoard's ``add_image``, else a PNG
    in the logger's ``log_dir`` (nothing for ``None``)."""
    if image is None:
        return
    for logger in loggers:
        experiment = getattr(logger, "experiment", None)
        if hasattr(experiment, "add_image"):
            experiment.add_image(name, image, step, dataformats="HWC")
        elif getattr(logger, "log_dir", None):
            plt = require("matplotlib.pyplot", "metrics", "image logging")
            path = Path(logger.log_dir) / "images" / f"{name}_step_{step:07d}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            plt.imsave(path, image)


def log_cross_generation(loggers: Sequence, vae, batch: MultimodalBatch, step: int) -> None:
    """Send the cross-generation grid of ``batch`` (:func:`cross_generation_image`) to every logger."""
    log_image(loggers, "cross_generation", cross_generation_image(vae, batch), step)


class LoggerCallback:
    """A callback of the built-in trainer (:class:`~pyro_mm.training.Trainer`) that sends every
    ``every``-th step's loss and bound terms to ``loggers``, and every ``images_every`` steps (0:
    never) a cross-generation grid of ``batch``.

    :param loggers: objects with ``log_metrics(metrics, step)`` (Lightning's ``CSVLogger``,
        ``TensorBoardLogger``, or your own).
    """

    def __init__(self, loggers: Sequence, every: int = 1, images_every: int = 0,
                 batch: Optional[MultimodalBatch] = None):
        if images_every and batch is None:
            raise ValueError("images_every needs a batch to cross-generate")
        self.loggers, self.every, self.images_every, self.batch = list(loggers), max(int(every), 1), images_every, batch

    def __call__(self, record) -> None:
        if record.step % self.every == 0:
            log_step(self.loggers, record.objective, record.loss, record.step, record.epoch)
        if self.images_every and record.step % self.images_every == 0:
            log_cross_generation(self.loggers, record.objective, self.batch, record.step)

    def close(self) -> None:
        """Write out what the loggers buffer (their ``save``)."""
        for logger in self.loggers:
            if callable(getattr(logger, "save", None)):
                logger.save()
