"""Tables and figures over the records of a grid: a metric's mean ± sd over seeds, per method and
setting."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Callable, Dict, List, Sequence, Tuple

from ..data.cache import atomic_write_bytes
from ..extras import require
from .grid import mean_sd

__all__ = ["summarise", "markdown_table", "line_figure", "pyplot", "save_figure"]


def summarise(records: Sequence[dict], metric: Callable[[dict], float], column: Callable[[dict], str]
              ) -> Dict[str, Dict[str, Tuple[float, float, int]]]:
    """row -> column -> (mean, sd, number of seeds) of ``metric(result)`` over the records; a row is
    a method, or a cell's ``row`` label where a table shows one method twice (e.g. a preset)."""
    values: Dict[str, Dict[str, List[float]]] = OrderedDict()
    for record in records:
        config = record["config"]
        row = config["labels"].get("row", config["method"])
        values.setdefault(row, OrderedDict()).setdefault(column(record["config"]), []).append(
            metric(record["result"]))
    return {m: {c: (*mean_sd(v), len(v)) for c, v in cols.items()} for m, cols in values.items()}


def markdown_table(summary: Dict[str, Dict[str, Tuple[float, float, int]]], seeds: int, digits: int = 3,
                   first: str = "method") -> str:
    """Rows: methods; columns: settings; cells ``mean ± sd`` (``mean`` alone for one seed), marked
    ``(n=2 of 3)`` where fewer seeds than the grid's ``seeds`` are finished, ``—`` where none."""
    columns: List[str] = []
    for cols in summary.values():
        columns += [c for c in cols if c not in columns]
    lines = ["| " + " | ".join([first] + columns) + " |", "|---" + "|---:" * len(columns) + "|"]
    for method, cols in summary.items():
        cells = []
        for c in columns:
            if c not in cols:
                cells.append("—")
                continue
            mean, sd, n = cols[c]
            cells.append(f"{mean:.{digits}f}" + (f" ± {sd:.{digits}f}" if n > 1 else "")
                         + (f" (n={n} of {seeds})" if n < seeds else ""))
        lines.append("| " + " | ".join([method] + cells) + " |")
    return "\n".join(lines)


def line_figure(panels: Sequence[Tuple[str, Dict[str, Dict[float, Tuple[float, float, int]]]]], xlabel: str,
                path: Path, ylabel: str = "", title: str = "") -> Path:
    """One panel per ``(title, method -> x -> (mean, sd, n))``, a line with error bars per method.

    A method has one colour in every panel (also where it is missing from some, e.g. the unimodal
    VAE from cross coherence), and the legend, on the first panel, names every method."""
    plt = pyplot()

    methods = list(dict.fromkeys(method for _, series in panels for method in series))
    colours = {method: f"C{i % 10}" for i, method in enumerate(methods)}
    handles = {}
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.4), squeeze=False)
    for ax, (name, series) in zip(axes[0], panels):
        for method, points in series.items():
            xs = sorted(points)
            handles.setdefault(method, ax.errorbar(xs, [points[x][0] for x in xs], yerr=[points[x][1] for x in xs],
                                                   marker="o", capsize=3, color=colours[method], label=method))
        ax.set_title(name)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    axes[0][0].legend([handles[m] for m in methods], methods, fontsize=8)
    return save_figure(fig, path, title)


def pyplot():
    """matplotlib's pyplot on the file-only Agg backend (the metrics extra)."""
    require("matplotlib", "metrics", "the experiments' figures").use("Agg")
    return require("matplotlib.pyplot", "metrics", "the experiments' figures")


def save_figure(fig, path: Path, title: str = "", legend=None) -> Path:
    """Lay out, title and save ``fig`` as a PNG (atomically: processes sharing an output directory
    may write the same figure at once), and close it."""
    if legend is not None:
        legend.legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    path = Path(path)
    atomic_write_bytes(path, lambda f: fig.savefig(f, format="png", dpi=120))
    pyplot().close(fig)
    return path
