"""Watching training without reading JSON: the loss, the bound's terms and grids of cross-generated
images, sent to experiment loggers.

A logger is any object with ``log_metrics(metrics: dict, step: int)`` — the interface of
PyTorch Lightning's ``CSVLogger`` and ``TensorBoardLogger`` (which the optional
:mod:`pyro_mm.lightning` trains with, and which the built-in trainer accepts through
:class:`LoggerCallback` alike). Images go to ``logger.experiment.add_image`` where the logger has
one (TensorBoard) and otherwise to PNG files in the logger's ``log_dir`` (``images/step_<n>.png``).

The scalars are grouped as TensorBoard shows them: ``loss/train`` (the loss per sample),
``terms/<term>`` (the bound's terms) and ``progress/epoch``. The cross-generation grid is drawn
edge to edge: every image enlarged to about :data:`CELL_PIXELS` pixels, 2-pixel gaps, and the column
titles in a dark band above, at :data:`TITLE_POINTS` points.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Optional, Sequence

import numpy as np
import torch

from .batch import MultimodalBatch
from .extras import require

__all__ = ["LoggerCallback", "step_metrics", "log_step", "cross_generation_image", "grid_image", "log_image",
           "log_cross_generation", "log_hyperparameters", "CELL_PIXELS", "TITLE_POINTS"]

#: the size, in pixels, to which the grid enlarges every image (an integer factor, nearest neighbour)
CELL_PIXELS = 84
#: the size of the grid's column titles, in points (at 100 dots per inch)
TITLE_POINTS = 10
_GAP, _BACKGROUND, _INK = 2, (32, 32, 32), (235, 235, 235)


def step_metrics(vae, loss_per_sample: float) -> Dict[str, float]:
    """The loss per sample and the terms of the bound at the last step (the ELBO's
    ``last_terms``: each modality's log-likelihood, log p − log q, MEME's paired and unpaired
    bounds ...), as numbers."""
    metrics = {"loss/train": float(loss_per_sample)}
    terms = getattr(vae.elbo, "last_terms", None) or {}
    metrics.update({f"terms/{name}": float(value) for name, value in terms.items()})
    return metrics


def log_step(loggers: Sequence, vae, loss_per_sample: float, step: int, epoch: int) -> None:
    """Send a step's loss per sample, the bound's terms (:func:`step_metrics`) and its epoch
    (``progress/epoch``) to every logger."""
    metrics = {**step_metrics(vae, loss_per_sample), "progress/epoch": epoch}
    for logger in loggers:
        logger.log_metrics(metrics, step=step)


def log_hyperparameters(loggers: Sequence, hparams: dict) -> None:
    """Record the run's settings with every logger that keeps them (``log_hyperparams``: Lightning's
    ``hparams.yaml``, TensorBoard's HPARAMS tab)."""
    for logger in loggers:
        if callable(getattr(logger, "log_hyperparams", None)):
            logger.log_hyperparams(dict(hparams))


def cross_generation_image(vae, batch: MultimodalBatch) -> Optional[np.ndarray]:
    """A grid (``[H, W, 3]`` uint8, :func:`grid_image`) of ``batch``'s images and every image
    modality generated from each other modality: one row per sample, one column per modality and
    per direction (``None`` when no modality is an image)."""
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
    columns = [(f"real {n}", batch[n].cpu()) for n in images]
    columns += [(f"{given} → {target}", value) for key, value in generated.items()
                for given, target in [key.split("->", 1)]]
    return grid_image(columns)


def grid_image(columns: Sequence) -> np.ndarray:
    """``columns`` — ``(title, images [n, C, H, W] in [0, 1])`` — as one ``[H, W, 3]`` uint8 image,
    edge to edge: a row per sample, every image enlarged by an integer factor to about
    :data:`CELL_PIXELS` pixels and centred in its cell, 2-pixel gaps, and a band of titles above
    (a title breaks into lines at its spaces)."""
    if not columns:
        raise ValueError("no image column to draw")
    arrays = [(title, np.asarray(torch.as_tensor(images, dtype=torch.float32).clamp(0, 1).cpu()))
              for title, images in columns]
    rows = min(len(a) for _, a in arrays)
    side = max(max(a.shape[-2:]) for _, a in arrays)
    scale = max(1, round(CELL_PIXELS / side))
    cell = side * scale
    width, height = len(arrays) * (cell + _GAP) - _GAP, rows * (cell + _GAP) - _GAP
    grid = np.empty((height, width, 3), dtype=np.uint8)
    grid[...] = _BACKGROUND
    for c, (_, a) in enumerate(arrays):
        for r in range(rows):
            image = a[r]
            image = np.repeat(image, 3, 0) if image.shape[0] == 1 else image[:3]
            image = np.kron(np.moveaxis(image, 0, -1), np.ones((scale, scale, 1)))
            h, w = image.shape[:2]
            top, left = r * (cell + _GAP) + (cell - h) // 2, c * (cell + _GAP) + (cell - w) // 2
            grid[top:top + h, left:left + w] = np.round(image * 255).astype(np.uint8)
    titles = _titles([title for title, _ in arrays], cell, width)
    return np.concatenate([titles, grid], axis=0)


def _titles(titles: Sequence[str], cell: int, width: int) -> np.ndarray:
    """A dark band ``[h, width, 3]`` with each title centred over its column, in lines."""
    Figure = require("matplotlib.figure", "metrics", "image logging").Figure
    FigureCanvasAgg = require("matplotlib.backends.backend_agg", "metrics", "image logging").FigureCanvasAgg

    lines = [title.replace(" → ", " →\n").replace("real ", "real\n").split("\n") for title in titles]
    count = max(len(parts) for parts in lines)
    line_pixels = round(TITLE_POINTS * 100 / 72 * 1.25)
    height = count * line_pixels + 6
    figure = Figure(figsize=(width / 100, height / 100), dpi=100, facecolor=np.array(_BACKGROUND) / 255)
    for c, parts in enumerate(lines):
        figure.text((c * (cell + _GAP) + cell / 2) / width, 1 - 3 / height, "\n".join(parts), ha="center", va="top",
                    fontsize=TITLE_POINTS, color=np.array(_INK) / 255, linespacing=1.1)
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    band = np.asarray(canvas.buffer_rgba())[..., :3]
    return band[:height, :width].copy()


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
    :param hparams: the run's settings, recorded at once (:func:`log_hyperparameters`).
    """

    def __init__(self, loggers: Sequence, every: int = 1, images_every: int = 0,
                 batch: Optional[MultimodalBatch] = None, hparams: Optional[dict] = None):
        if images_every and batch is None:
            raise ValueError("images_every needs a batch to cross-generate")
        self.loggers, self.every, self.images_every, self.batch = list(loggers), max(int(every), 1), images_every, batch
        if hparams:
            log_hyperparameters(self.loggers, hparams)

    def __call__(self, record) -> None:
        if record.step % self.every == 0:
            log_step(self.loggers, record.vae, record.loss, record.step, record.epoch)
        if self.images_every and record.step % self.images_every == 0:
            log_cross_generation(self.loggers, record.vae, self.batch, record.step)

    def close(self) -> None:
        """Write out what the loggers buffer (their ``save``)."""
        for logger in self.loggers:
            if callable(getattr(logger, "save", None)):
                logger.save()
