"""PNG figures of the metrics: coherence bars, MEME's W2 histograms and class distance matrix,
cross-generation grids, the training curve and a 2-D view of the latent space.

Figures are drawn on :class:`matplotlib.figure.Figure` with the Agg canvas directly, so nothing
here touches ``pyplot`` or the global backend and it works without a display.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Optional, Sequence, Union

import numpy as np

from pyro_mm.extras import require
from pyro_mm.metrics.coherence import CoherenceResult
from pyro_mm.metrics.relatedness import histogram_data

require("matplotlib", "metrics", "pyro_mm's figures")
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

__all__ = ["coherence_bars", "w2_histograms", "distance_matrix_heatmap", "cross_generation_grid", "cross_generation_figure",
           "training_curve", "latent_view", "principal_plane"]

PathLike = Union[str, os.PathLike]


def _save(fig: Figure, path: PathLike) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=120)
    return path


def coherence_bars(results: Union[CoherenceResult, Mapping[str, CoherenceResult]], path: PathLike,
                   title: str = "Cross coherence") -> Path:
    """Bars of cross coherence against the number of given modalities, one colour per model
    (``results``: one :class:`CoherenceResult` or a mapping ``model name -> result``), and a
    dotted line at chance, one over the number of classes (where the results' per-class
    accuracies give it)."""
    if isinstance(results, CoherenceResult):
        results = {"": results}
    if not results:
        raise ValueError("no coherence results to plot")
    sizes = sorted({k for r in results.values() for k in r.by_size})
    width = 0.8 / len(results)
    fig = Figure(figsize=(1.2 + 0.9 * len(sizes) * max(1, len(results) / 2), 3.2))
    ax = fig.add_subplot()
    for i, (label, result) in enumerate(results.items()):
        values = [result.by_size.get(k, np.nan) for k in sizes]
        ax.bar(np.arange(len(sizes)) + (i - (len(results) - 1) / 2) * width, values, width,
               label=label or None)
    ax.set_xticks(np.arange(len(sizes)), [str(k) for k in sizes])
    classes = {len(v) for r in results.values() for v in r.per_class.values()}
    if len(classes) == 1:
        ax.axhline(1 / classes.pop(), color="0.45", linestyle=":", linewidth=1.2, label="chance")
    ax.set(xlabel="number of given modalities", ylabel="coherence", ylim=(0, 1), title=title)
    if len(results) > 1 or next(iter(results)) or ax.lines:
        ax.legend(fontsize="small")
    return _save(fig, path)


def w2_histograms(paired, unpaired, path: PathLike, bins: int = 50,
                  title: str = "W2 between posteriors") -> Path:
    """Overlaid density histograms of paired and unpaired ``W_2`` distances (Joy et al., 2022)."""
    edges, p, u = histogram_data(np.asarray(paired), np.asarray(unpaired), bins)
    fig = Figure(figsize=(4.5, 3.2))
    ax = fig.add_subplot()
    ax.stairs(p, edges, fill=True, alpha=0.5, label="paired")
    ax.stairs(u, edges, fill=True, alpha=0.5, label="unpaired")
    ax.set(xlabel="$W_2$", ylabel="density", title=title)
    ax.legend(fontsize="small")
    return _save(fig, path)


def distance_matrix_heatmap(matrix, path: PathLike, labels: Optional[Sequence[str]] = None,
                            axis_names: Sequence[str] = ("modality a class", "modality b class"),
                            title: str = "mean W2 by class") -> Path:
    """Heatmap of a ``C x C`` class-by-class distance matrix, values written in the cells."""
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.size == 0:
        raise ValueError(f"expected a non-empty square matrix, got shape {matrix.shape}")
    c = matrix.shape[0]
    labels = [str(i) for i in range(c)] if labels is None else list(labels)
    if len(labels) != c:
        raise ValueError(f"{len(labels)} labels for a {c} x {c} matrix")
    fig = Figure(figsize=(1.5 + 0.45 * c, 1.0 + 0.45 * c))
    ax = fig.add_subplot()
    image = ax.imshow(matrix, cmap="viridis")
    fig.colorbar(image, ax=ax)
    for (r, col), v in np.ndenumerate(matrix):
        ax.text(col, r, f"{v:.2g}", ha="center", va="center", fontsize=6, color="w")
    ax.set_xticks(range(c), labels)
    ax.set_yticks(range(c), labels)
    ax.set(ylabel=axis_names[0], xlabel=axis_names[1], title=title)
    return _save(fig, path)


def _as_image(x) -> np.ndarray:
    """``[C, H, W]`` in [0, 1] -> ``[H, W]`` or ``[H, W, 3]`` for ``imshow``."""
    x = np.asarray(x, dtype=np.float64).clip(0, 1)
    return x[0] if x.shape[0] == 1 else np.moveaxis(x, 0, -1)


def cross_generation_grid(inputs: Mapping[str, np.ndarray], generated: Mapping[str, np.ndarray],
                          path: PathLike, title: str = "Cross generation") -> Path:
    """One row per sample: its real image modalities, then every cross-generated image
    (``generated``: ``"given->target" -> [n, C, H, W]``), saved as a PNG. Non-image modalities are
    left out."""
    return _save(cross_generation_figure(inputs, generated, title), path)


def cross_generation_figure(inputs: Mapping[str, np.ndarray], generated: Mapping[str, np.ndarray],
                            title: str = "Cross generation") -> Figure:
    """The figure of :func:`cross_generation_grid`."""
    columns = [(f"real {n}", np.asarray(v)) for n, v in inputs.items() if np.asarray(v).ndim == 4]
    columns += [(k, np.asarray(v)) for k, v in generated.items() if np.asarray(v).ndim == 4]
    if not columns:
        raise ValueError("no image modality to show")
    rows = min(len(v) for _, v in columns)
    fig = Figure(figsize=(1.3 * len(columns), 1.3 * rows + 0.4))
    for c, (name, images) in enumerate(columns):
        for r in range(rows):
            ax = fig.add_subplot(rows, len(columns), r * len(columns) + c + 1)
            ax.imshow(_as_image(images[r]), cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(name, fontsize=7)
    fig.suptitle(title, fontsize=9)
    return fig


def training_curve(losses: Sequence[float], path: PathLike, window: int = 50,
                   title: str = "Training loss per sample") -> Path:
    """The loss of every step (faint) and its running mean over ``window`` steps."""
    losses = np.asarray(losses, dtype=float)
    if losses.ndim != 1 or len(losses) == 0:
        raise ValueError("training_curve needs a non-empty sequence of per-step losses")
    window = max(1, min(window, len(losses)))
    running = np.convolve(losses, np.ones(window) / window, mode="valid")
    fig = Figure(figsize=(6, 3.2))
    ax = fig.add_subplot()
    steps = np.arange(1, len(losses) + 1)
    ax.plot(steps, losses, color="tab:blue", alpha=0.25, lw=0.8, label="per step")
    ax.plot(steps[window - 1:], running, color="tab:blue", lw=1.8, label=f"mean of {window} steps")
    low, high = np.percentile(losses, [1, 99])
    ax.set(xlabel="step", ylabel="loss per sample", title=title, ylim=(low - 0.05 * (high - low), high))
    ax.legend(fontsize="small")
    return _save(fig, path)


def principal_plane(z: np.ndarray) -> tuple:
    """Mean and the two leading principal directions ``[D, 2]`` of ``z [N, D]`` (SVD)."""
    mean = z.mean(0)
    _, _, vt = np.linalg.svd(z - mean, full_matrices=False)
    return mean, vt[:2].T


def latent_view(embeddings: Mapping[str, np.ndarray], labels, path: PathLike,
                basis: Optional[str] = None, title: str = "Posterior means, first two principal axes",
                max_points: int = 3000) -> Path:
    """A 2-D view of the latent space: every posterior's means (one panel each) projected on the
    same plane — the principal plane of ``embeddings[basis]`` (default: ``"joint"`` if present, else
    the first) — coloured by class, so aligned unimodal posteriors show the same clusters. The plane
    is fitted on every sample; at most ``max_points`` of them (a fixed random subset, the same in
    every panel) are drawn, so that the clusters are not painted over."""
    if not embeddings:
        raise ValueError("latent_view needs at least one set of embeddings")
    embeddings = {k: np.asarray(v, dtype=float) for k, v in embeddings.items()}
    basis = basis or ("joint" if "joint" in embeddings else next(iter(embeddings)))
    mean, axes = principal_plane(embeddings[basis])
    labels = np.asarray(labels)
    shown = np.arange(len(labels))
    if len(shown) > max_points:
        shown = np.sort(np.random.default_rng(0).choice(len(shown), max_points, replace=False))
    labels = labels[shown]
    fig = Figure(figsize=(3.3 * len(embeddings), 3.4))
    for i, (name, z) in enumerate(embeddings.items()):
        ax = fig.add_subplot(1, len(embeddings), i + 1)
        xy = (z[shown] - mean) @ axes
        points = ax.scatter(xy[:, 0], xy[:, 1], c=labels, cmap="tab10", vmin=-0.5, vmax=9.5, s=4, alpha=0.7)
        ax.set(title=name, xticks=[], yticks=[])
    fig.colorbar(points, ax=fig.axes, ticks=range(10), label="class", shrink=0.8)
    fig.suptitle(title, y=1.04)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    fig.savefig(path, format="png", dpi=120, bbox_inches="tight")
    return path
