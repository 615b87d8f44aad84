"""A PNG contact sheet of a data set, so a person can look at what was generated.

One row per sample (label on the left), one column per modality: images are drawn as they are
handed to models (``[0, 1]``, grey for one channel), text modalities as their decoded caption,
label modalities (one category per sample) as the class id, and a modality hidden by the
observation mask as a grey "missing" cell.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from pyro_mm.extras import require

__all__ = ["preview"]


def preview(dataset, path, n: int = 8, indices: Optional[Sequence[int]] = None) -> Path:
    """Write a PNG grid of ``n`` samples (or the given ``indices``) of ``dataset`` to ``path``.

    Text modalities are decoded with ``dataset.vocab``. Returns the path written.
    """
    indices = list(range(min(n, len(dataset)))) if indices is None else list(indices)
    if not indices:
        raise ValueError("preview needs at least one sample")
    require("matplotlib", "data", "the data previews")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    names = dataset.names
    is_label = {m: dataset.likelihoods[m] == "categorical" and tuple(dataset.event_shapes[m]) in ((), (1,))
                for m in names}
    widths = [3.2 if dataset.likelihoods[m] == "categorical" and not is_label[m] else 1.0 for m in names]
    fig = Figure(figsize=(sum(widths) * 1.3 + 0.4, len(indices) * 1.3 + 0.4), dpi=100)
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(len(indices), len(names), width_ratios=widths, wspace=0.05, hspace=0.1)
    for r, i in enumerate(indices):
        item = dataset[i]
        for c, name in enumerate(names):
            ax = fig.add_subplot(grid[r, c])
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(name, fontsize=8)
            if c == 0:
                ax.set_ylabel(f"#{i} y={item['label']}", fontsize=7)
            if not bool(item["mask"][c]):
                ax.set_facecolor("0.8")
                ax.text(
                    0.5, 0.5, "missing", ha="center", va="center", fontsize=7,
                    transform=ax.transAxes,
                )
            elif is_label[name]:
                ax.text(0.5, 0.5, str(int(item["data"][name].reshape(-1)[0])), ha="center", va="center",
                        fontsize=16, transform=ax.transAxes)
            elif dataset.likelihoods[name] == "categorical":
                caption = dataset.vocab.decode(item["data"][name].tolist())
                ax.text(0.02, 0.5, textwrap.fill(caption, 38), ha="left", va="center",
                        fontsize=6.5, transform=ax.transAxes)
            else:
                x = item["data"][name].numpy()
                image = x[0] if x.shape[0] == 1 else np.transpose(x, (1, 2, 0))
                ax.imshow(image, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, bbox_inches="tight")
    return path
