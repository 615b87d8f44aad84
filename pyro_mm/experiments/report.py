"""Tables and figures over the records of a grid: a metric's mean ± sd over seeds, per method and
setting, and the conventions every figure of the experiments shares.

Every figure draws a method in its colour of :data:`PALETTE` (a variant of a method, such as
``"meme (paper preset)"``, in the method's colour with a dashed line), error bars of ± sd over
seeds only where a point has more than one seed (its legend says "one seed" where none has),
both axes labelled, a dotted line at a metric's chance level (:data:`CHANCE` for the judges' and
probes' accuracies), and an axis of a fraction-valued metric at least :data:`FRACTION_SPAN` wide,
so that the judges' noise is not magnified into a trend.
"""

from __future__ import annotations

import math
import textwrap
from collections import OrderedDict
from pathlib import Path
from typing import Callable, Dict, Iterable, List, NamedTuple, Optional, Sequence, Tuple

from ..data.cache import atomic_write_bytes
from ..extras import require
from ..registry import METHODS
from .grid import mean_sd

__all__ = ["summarise", "diverged_note", "markdown_table", "seeds_note", "seed_counts", "PALETTE", "method_of", "method_style",
           "CHANCE", "FRACTION_SPAN", "Panel", "accuracy_panel", "line_figure", "spread", "frame_axis", "method_legend",
           "subplots", "pyplot", "save_figure"]

Summary = Dict[str, Dict[object, Tuple[float, float, int]]]

#: method registry name -> its colour in every figure (Okabe & Ito's palette, distinguishable
#: under the common colour-vision deficiencies); a method registered later takes the next of
#: :data:`SPARE_COLOURS` in the registry's order
PALETTE = {"unimodal": "#000000", "mvae": "#0072B2", "mmvae": "#E69F00", "mopoe": "#009E73", "meme": "#D55E00",
           "mmvae+": "#CC79A7"}
SPARE_COLOURS = ("#56B4E9", "#8C564B", "#7F7F7F", "#F0E442")
#: the chance level of coherence and latent accuracy: one in the ten digit classes that every data
#: set of the experiments has
CHANCE = 0.1
#: the least span of the axis of a fraction (coherence, accuracy, correlation)
FRACTION_SPAN = 0.1


def summarise(records: Sequence[dict], metric: Callable[[dict], float], column: Callable[[dict], str]) -> Summary:
    """row -> column -> (mean, sd, number of seeds) of ``metric(result)`` over the records; a row is
    a method, or a cell's ``row`` label where a table shows one method twice (e.g. a preset). A
    cell whose training diverged (``result`` null; :func:`diverged_note` names it) has no value."""
    values: Dict[str, Dict[str, List[float]]] = OrderedDict()
    for record in records:
        if record["result"] is None:
            continue
        config = record["config"]
        row = config["labels"].get("row", config["method"])
        values.setdefault(row, OrderedDict()).setdefault(column(record["config"]), []).append(
            metric(record["result"]))
    return {m: {c: (*mean_sd(v), len(v)) for c, v in cols.items()} for m, cols in values.items()}


def seed_counts(summary: Summary, seeds: int) -> List[int]:
    """The numbers of seeds of a summary's entries (``[seeds]`` for an empty one): what its
    table's caption describes, so that a table of one seed so far does not read "over 3 seeds"."""
    return [point[2] for cols in summary.values() for point in cols.values()] or [seeds]


def diverged_note(records: Sequence[dict]) -> str:
    """A line naming the cells whose training diverged (a non-finite loss), or ``""``."""
    cells = [f"{r['config']['labels'].get('row', r['config']['method'])} "
             + " ".join(f"{k}={v}" for k, v in r["config"]["labels"].items() if k != "row")
             + f" seed {r['config']['seed']}" for r in records if r["result"] is None]
    return f"Diverged (a non-finite loss; no figures): {'; '.join(cells)}." if cells else ""


def markdown_table(summary: Summary, seeds: int, digits: int = 3, first: str = "method") -> str:
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


def seeds_note(counts: Iterable[int]) -> str:
    """What a table's cells or a figure's points over ``counts`` seeds are: ``"one seed"``,
    ``"mean ± sd over 3 seeds"``, or ``"mean ± sd over 1–3 seeds"`` for a partial grid. A table's
    caption is ``f"({seeds_note(seed_counts(summary, seeds))})"``."""
    counts = sorted(set(counts))
    if counts[-1] == 1:
        return "one seed"
    return "mean ± sd over " + (f"{counts[0]}" if len(counts) == 1 else f"{counts[0]}–{counts[-1]}") + " seeds"


def method_of(label: str) -> str:
    """The registry name of a row label: the label itself, or the longest registry name it begins
    with before a space (``"meme (paper preset)"`` -> ``"meme"``)."""
    names = [m for m in METHODS if label == m or label.startswith(m + " ")]
    if not names:
        raise ValueError(f"{label!r} names no registered method; figures draw the methods of {list(METHODS)}")
    return max(names, key=len)


def method_style(label: str) -> dict:
    """The matplotlib style of a row: its method's colour, a solid line and round markers, or a
    dashed line and square markers for a variant of the method (a label beyond its name)."""
    method = method_of(label)
    if method in PALETTE:
        colour = PALETTE[method]
    else:
        later = [m for m in METHODS if m not in PALETTE]
        colour = SPARE_COLOURS[later.index(method) % len(SPARE_COLOURS)]
    variant = label != method
    return {"color": colour, "linestyle": "--" if variant else "-", "marker": "s" if variant else "o"}


def spread(points: Sequence[Tuple[float, float, int]]) -> Optional[List[float]]:
    """The error bars of ``(mean, sd, n)`` points: the sd where a point has several seeds, NaN (no
    bar) where it has one; ``None`` (no bars at all) where no point has more than one."""
    if all(n <= 1 for _, _, n in points):
        return None
    return [sd if n > 1 else math.nan for _, sd, n in points]


def frame_axis(ax, axis: str = "y", chance: Optional[float] = None, min_span: Optional[float] = None) -> None:
    """Widen the ``axis`` of ``ax`` to span at least ``min_span`` around its data, and mark a
    metric's ``chance`` level: a dotted line labelled "chance", the axis widened to hold it, where
    the data lie within their own span of it; farther away (latent accuracies near 1, say), where
    holding it would squeeze the data into less than half of the axis, a note on the axis's edge
    says where chance lies instead."""
    get_limits, set_limits = (ax.get_ylim, ax.set_ylim) if axis == "y" else (ax.get_xlim, ax.set_xlim)
    low, high = get_limits()
    if min_span is not None and high - low < min_span:
        middle = (low + high) / 2
        low, high = middle - min_span / 2, middle + min_span / 2
        set_limits(low, high)
    if chance is None:
        return
    text = {"fontsize": 7, "color": "0.35", "textcoords": "offset points"}
    if max(low - chance, chance - high) > high - low:
        under = chance < low
        # where on the axes the note stands: (words, corner, offset, alignment)
        note = {("y", True): ("below", (1, 0), (-3, 3), "right", "bottom"),
                ("y", False): ("above", (1, 1), (-3, -3), "right", "top"),
                ("x", True): ("left of", (0, 1), (3, -3), "left", "top"),
                ("x", False): ("right of", (1, 1), (-3, -3), "right", "top")}
        words, corner, offset, ha, va = note[axis, under]
        ax.annotate(f"chance ({chance:g}) {words} the axis", corner, xycoords="axes fraction", xytext=offset, ha=ha,
                    va=va, **text)
        return
    (ax.axhline if axis == "y" else ax.axvline)(chance, color="0.45", linestyle=":", linewidth=1.2, label="chance",
                                                 zorder=1)
    pad = 0.05 * (max(high, chance) - min(low, chance))
    set_limits(min(low, chance - pad), max(high, chance + pad))
    if axis == "y":
        ax.annotate("chance", (1, chance), xycoords=("axes fraction", "data"), xytext=(-3, 2), ha="right",
                    va="bottom", **text)
    else:
        ax.annotate("chance", (chance, 1), xycoords=("data", "axes fraction"), xytext=(2, -3), ha="left", va="top",
                    rotation=90, **text)


def method_legend(ax, handles: Dict[str, object], counts: Iterable[int], outside: bool = False, **kwargs):
    """A legend on ``ax`` naming every method of ``handles`` (label -> artist), titled with
    :func:`seeds_note` of the points' seed ``counts`` ("one seed" where no point has error bars);
    ``outside``: in a column of its own at the figure's right edge (the figure widens by it)."""
    fig = ax.figure
    if outside:
        kwargs.update(loc="center right", bbox_to_anchor=(1, 0.5), bbox_transform=fig.transFigure)
    legend = ax.legend(list(handles.values()), list(handles), title=seeds_note(counts), fontsize=8,
                       title_fontsize=8, **kwargs)
    if outside:
        legend.set_in_layout(False)
        column = legend.get_window_extent(fig.canvas.get_renderer()).width / fig.dpi + 0.1
        panels = fig.get_figwidth()
        fig.set_figwidth(panels + column)
        fig.get_layout_engine().set(rect=(0, 0, panels / (panels + column), 1))
    return legend


class Panel(NamedTuple):
    """One panel of :func:`line_figure`: its ``title``, ``series`` (row label -> x -> (mean, sd,
    n)), its y label (empty: the figure's ``ylabel``), its metric's ``chance`` level (a dotted
    line) and the least span of its y axis."""

    title: str
    series: Summary
    ylabel: str = ""
    chance: Optional[float] = None
    min_span: Optional[float] = None


def accuracy_panel(title: str, series: Summary, ylabel: str) -> Panel:
    """A :class:`Panel` of a fraction of the ten digit classes judged right (coherence, latent
    accuracy): the chance line at :data:`CHANCE`, a y axis at least :data:`FRACTION_SPAN` wide."""
    return Panel(title, series, ylabel, CHANCE, FRACTION_SPAN)


def line_figure(panels: Sequence[Tuple], xlabel: str, path: Path, ylabel: str = "", title: str = "",
                integer_x: bool = False, columns: Optional[int] = None) -> Path:
    """A metric against a setting, one panel per :class:`Panel` (or ``(title, series)`` pair): a
    line per row through its mean at each x, with ± sd bars where a point has several seeds.

    A row has its method's colour (:func:`method_style`) in every panel, also where it is missing
    from some (e.g. the unimodal VAE from cross coherence); the legend, the first panel's, stands
    at the figure's right edge, names every row and says over how many seeds the points are.
    ``integer_x``: x is a count (ticks at whole numbers only); a panel with a single x has that
    tick alone. ``columns``: panels per row (default: all in one row)."""
    from matplotlib.ticker import MaxNLocator

    panels = [Panel(*panel) for panel in panels]
    fig, axes = subplots(len(panels), 4.2, 3.4, columns)
    handles, counts = {}, []
    for ax, panel in zip(axes, panels):
        settings = sorted({x for points in panel.series.values() for x in points})
        for label, points in panel.series.items():
            xs = sorted(points)
            handles.setdefault(label, ax.errorbar(xs, [points[x][0] for x in xs],
                                                  yerr=spread([points[x] for x in xs]), capsize=3, label=label,
                                                  **method_style(label)))
            counts += [points[x][2] for x in xs]
        ax.set_title(_wrap(panel.title, 4.2, 9), fontsize=9)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(panel.ylabel or ylabel)
        if integer_x:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if len(settings) == 1:  # one setting so far: its tick alone, not a scale around it
            ax.set_xticks(settings)
        frame_axis(ax, "y", panel.chance, panel.min_span)
        ax.grid(alpha=0.3)
    method_legend(axes[0], handles, counts, outside=True)
    return save_figure(fig, path, title)


def pyplot():
    """matplotlib's pyplot on the file-only Agg backend (the metrics extra)."""
    require("matplotlib", "metrics", "the experiments' figures").use("Agg")
    return require("matplotlib.pyplot", "metrics", "the experiments' figures")


def subplots(count: int, width: float, height: float, columns: Optional[int] = None):
    """A figure of ``count`` panels, ``columns`` to a row (default: all in one), each ``width`` ×
    ``height`` inches, laid out by matplotlib's constrained layout (titles, labels and legends
    are kept inside the figure): ``(figure, list of the axes)``."""
    columns = min(count, columns or count)
    rows = -(-count // columns)
    fig, axes = pyplot().subplots(rows, columns, figsize=(width * columns, height * rows), squeeze=False,
                                  layout="constrained")
    axes = list(axes.flat)
    for spare in axes[count:]:
        spare.remove()
    return fig, axes[:count]


def _wrap(text: str, inches: float, points: float) -> str:
    """``text`` broken into lines that fit ``inches`` at a font of ``points``."""
    return textwrap.fill(text, max(20, int(inches * 72 / (0.6 * points))))


def save_figure(fig, path: Path, title: str = "") -> Path:
    """Title (wrapped to the figure's width) and save ``fig`` as a PNG (atomically: processes
    sharing an output directory may write the same figure at once), and close it."""
    if title:
        fig.suptitle(_wrap(title, fig.get_figwidth(), 10), fontsize=10)
    path = Path(path)
    atomic_write_bytes(path, lambda f: fig.savefig(f, format="png", dpi=120))
    pyplot().close(fig)
    return path
