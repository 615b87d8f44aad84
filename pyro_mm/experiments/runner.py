"""Run an experiment: measure and print its duration, train and evaluate its grid, write its table
(``table.md``, ``table.json``) and figure (``figure.png``)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Callable, Dict, Optional

from ..provenance import provenance, stamp
from .beta_tradeoff import BetaTradeoff
from .captions import Captions
from .experiment import Experiment, measure_duration
from .grid import atomic_write_text, run_grid
from .linear_gaussian import LinearGaussian
from .meme_table import MemeTable
from .modality_sweep import ModalitySweep

__all__ = ["EXPERIMENTS", "run_experiment"]

#: name -> experiment class
EXPERIMENTS: Dict[str, type] = {cls.name: cls for cls in (MemeTable, ModalitySweep, BetaTradeoff, LinearGaussian, Captions)}


def run_experiment(name: str, quick: bool = False, seeds: Optional[int] = None, out: Optional[Path] = None,
                   progress: bool = True, echo: Callable[[str], None] = print,
                   experiment: Optional[Experiment] = None) -> dict:
    """Run experiment ``name``; returns ``{"markdown", "table", "records", "out"}``.

    :param quick: the quick setting (every experiment in ≤ 15 minutes on a 2-core CPU).
    :param seeds: seeds per cell (default: 1 quick, 3 full).
    :param out: output directory (default ``runs/reproduce/<name>[-quick]``).
    """
    if experiment is None:
        if name not in EXPERIMENTS:
            raise ValueError(f"unknown experiment {name!r}; choose one of {list(EXPERIMENTS)}")
        experiment = EXPERIMENTS[name]()
    seeds = (1 if quick else 3) if seeds is None else seeds
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise ValueError(f"the number of seeds must be a positive integer, got {seeds!r}")
    out = Path(out) if out is not None else Path("runs/reproduce") / (name + ("-quick" if quick else ""))
    cells = experiment.cells(quick, seeds)
    echo(f"{experiment.title}")
    echo(f"  {len(cells)} cells; {experiment.describe(quick, seeds)}")
    echo("  measuring the duration (a few steps of every kind of cell) ...")
    estimate = measure_duration(experiment, cells)
    echo(f"  training will take about {estimate / 60:.0f} min on this machine (plus evaluation); results in {out}")
    start = time.time()
    records = run_grid(experiment, cells, out, progress=progress, echo=echo)
    markdown, table = experiment.report(records, out)
    elapsed = time.time() - start
    command = f"pyro-mm reproduce {name}" + (" --quick" if quick else "") + (
        f" --seeds {seeds}" if seeds != (1 if quick else 3) else "")
    meta = {"experiment": name, "quick": quick, "seeds": seeds, "cells": len(cells), **provenance(),
            "minutes": round(elapsed / 60, 1)}
    atomic_write_text(out / "table.json", json.dumps({"meta": meta, "table": table,
                                                      "records": records}, indent=2))
    atomic_write_text(out / "table.md", f"# {experiment.title}\n\n{markdown}\n\n![figure](figure.png)\n\n"
                      f"{stamp(meta)} `{command}`, {meta['minutes']} min.\n")
    echo("")
    echo(markdown)
    echo(f"\nwrote {out / 'table.md'}, {out / 'table.json'} and {out / 'figure.png'} ({elapsed / 60:.1f} min)")
    return {"markdown": markdown, "table": table, "records": records, "out": out, "meta": meta}
