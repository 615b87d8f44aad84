"""Run an experiment: estimate and print its duration, train and evaluate the cells of its grid
that no finished record holds yet (:mod:`.scheduler`), and write its table (``table.md``,
``table.json``) and figure (``figure.png``) from the records of ``out`` and of the results store
(:mod:`.records`); or, with ``table_only``, write the table from the records alone.

A table states how many of the grid's cells it holds ("12 of 36 cells"); an entry averaged over
fewer seeds than the grid has says so ("n=2 of 3"); records of different data, judges or matmul
precision are never tabulated together (:func:`~pyro_mm.experiments.records.check_consistent`).
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections import Counter
from pathlib import Path
from typing import Callable, Dict, List, Optional

import torch

from ..options import integer
from ..precision import check_precision
from ..provenance import provenance, stamp
from .beta_tradeoff import BetaTradeoff
from .captions import Captions
from .duration import estimate_duration
from .experiment import Experiment
from .grid import Cell, atomic_write_text
from .linear_gaussian import LinearGaussian
from .meme_table import MemeTable
from .modality_sweep import ModalitySweep
from .records import ResultsStore, check_consistent
from .scheduler import run_grid, survey

__all__ = ["EXPERIMENTS", "run_experiment"]

#: name -> experiment class
EXPERIMENTS: Dict[str, type] = {cls.name: cls for cls in (MemeTable, ModalitySweep, BetaTradeoff, LinearGaussian, Captions)}


#: the options of :func:`run_experiment` that are counts
SEEDS = integer("seeds", None, "seeds per cell (none: 1 quick, 3 full)", minimum=1)
JOBS = integer("jobs", 1, "cells trained side by side, in worker processes", minimum=1)
THREADS = integer("threads", None, "torch threads in all, split between the jobs (none: the process's)", minimum=1)


def run_experiment(name: str, quick: bool = False, seeds: Optional[int] = None, out: Optional[Path] = None,
                   progress: bool = True, echo: Callable[[str], None] = print,
                   experiment: Optional[Experiment] = None, results: Optional[Path] = None, jobs: int = JOBS.default,
                   threads: Optional[int] = None, precision: str = "highest", wait: bool = True,
                   table_only: bool = False, minimum: bool = False) -> dict:
    """Run experiment ``name``; returns ``{"markdown", "table", "records", "out", "meta"}``.

    :param quick: the quick setting (every experiment in ≤ 15 minutes on a 2-core CPU).
    :param seeds: seeds per cell (default: 1 quick, 3 full).
    :param out: output directory (default ``runs/reproduce/<name>[-quick]``); any number of
        processes may share it, each training the cells nobody else holds.
    :param results: a results store (:class:`~pyro_mm.experiments.records.ResultsStore`): its
        finished records are used, and every finished record is copied into it.
    :param jobs: cells trained side by side, in worker processes.
    :param threads: torch threads in all (default: the process's), split between the jobs.
    :param precision: the cells' float32 matmul precision (:data:`pyro_mm.precision.PRECISIONS`).
    :param wait: wait for the cells other processes hold, and write the whole table; without it,
        write the partial table (saying so) and return.
    :param table_only: train nothing: the table of the records in ``out`` and ``results``.
    :param minimum: the minimum grid only (:meth:`~pyro_mm.experiments.experiment.Experiment.minimum_cells`,
        at its own seeds): the smallest part of the full grid that tests the claim. Its cells are
        the full grid's, so both may share ``out`` and ``results``.
    """
    if experiment is None:
        if name not in EXPERIMENTS:
            raise ValueError(f"unknown experiment {name!r}; choose one of {list(EXPERIMENTS)}")
        experiment = EXPERIMENTS[name]()
    if minimum and (quick or seeds is not None):
        raise ValueError("the minimum grid is part of the full setting, at its own seeds: "
                         "it takes neither quick nor seeds")
    if minimum:
        seeds = experiment.minimum_seeds
        grid = experiment.minimum_cells()
    else:
        seeds = SEEDS.validate((1 if quick else 3) if seeds is None else seeds)
        grid = experiment.cells(quick, seeds)
    jobs, threads = JOBS.validate(jobs), THREADS.validate(threads)
    check_precision(precision)
    out = Path(out) if out is not None else Path("runs/reproduce") / (name + ("-quick" if quick else ""))
    store = ResultsStore(results, name) if results is not None else None
    cells = [dataclasses.replace(c, precision=precision) for c in grid]
    echo(f"{experiment.title}")
    echo(f"  {len(cells)} cells; " + (f"the minimum grid of the {experiment.describe(False, 3)}" if minimum
                                      else experiment.describe(quick, seeds)))
    start = time.time()
    if table_only:
        finished, _, _ = survey(cells, out, store, None)
    else:
        finished = _train(experiment, cells, out, store, jobs, threads, wait, progress, echo)
    records = [finished[c.key] for c in cells if c.key in finished]
    if not records:
        raise ValueError(f"no finished cells of {name} in {out}" + (f" or {store.directory}" if store else "")
                         + ": nothing to tabulate")
    check_consistent(records, name)
    command = ((experiment.command or f"pyro-mm reproduce {name}") + (" --quick" if quick else "")
               + (" --minimum" if minimum else f" --seeds {seeds}" if seeds != (1 if quick else 3) else "")
               + (f" --matmul-precision {precision}" if precision != "highest" else ""))
    return _write_table(experiment, cells, records, out, seeds, command, time.time() - start, quick, echo)


def _train(experiment, cells: List[Cell], out: Path, store, jobs: int, threads: Optional[int], wait: bool,
           progress: bool, echo) -> Dict[str, dict]:
    """Train the grid's unfinished cells; the finished records by key."""
    previous = torch.get_num_threads()
    total = previous if threads is None else threads
    per_job = max(1, total // jobs)
    torch.set_num_threads(per_job)  # one job's threads: this process's training, or the measurement of a job
    try:
        _, todo, _ = survey(cells, out, store, per_job)
        echo(f"  measuring the duration of the {len(todo)} cells without a finished record (a few steps and a "
             "small evaluation of every kind of cell) ...")
        duration = estimate_duration(experiment, todo, jobs, judge_threads=total)
        echo(f"  on this machine, {jobs} job(s) of {per_job} thread(s): {duration}; results in {out}")
        experiment.data.progress = progress
        torch.set_num_threads(total)  # the judges not cached yet train side by side, one classifier per thread
        fingerprints = {c.key: experiment.fingerprint(c) for c in cells}
        torch.set_num_threads(per_job)
        finished, todo, reasons = survey(cells, out, store, per_job, fingerprints)
        if reasons:
            echo(f"  {sum(reasons.values())} record(s) found do not count: "
                 + ", ".join(f"{why} ({n})" for why, n in reasons.items())
                 + (f" (this run: {per_job} per job; --threads and --jobs set it)"
                    if any(why.startswith("made at") for why in reasons) else ""))
        if finished:
            echo(f"  {len(finished)} of {len(cells)} cells already finished; training the other {len(todo)}")
        if store is not None:
            for record in finished.values():
                store.write(record)
        finished.update(run_grid(experiment, todo, out, fingerprints, store, per_job, jobs, wait, progress, echo))
    finally:
        torch.set_num_threads(previous)
    return finished


def _write_table(experiment, cells: List[Cell], records: List[dict], out: Path, seeds: int, command: str,
                 elapsed: float, quick: bool, echo) -> dict:
    """Write ``table.md``, ``table.json`` and ``figure.png`` of ``records`` into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    markdown, table = experiment.report(records, out, seeds)
    coverage = f"{len(records)} of {len(cells)} cells"
    if len(records) < len(cells):
        markdown = (f"**Partial grid: {coverage}.** The entries are over the finished cells only; an entry over "
                    f"fewer seeds than {seeds} says so (n=…), a missing one is —.\n\n{markdown}")
    commits = Counter(r["provenance"]["commit"] for r in records)
    threads = sorted({r["threads"] for r in records})
    cell_minutes = sum(r["training"]["seconds"] + r["evaluation"]["seconds"] for r in records) / 60
    meta = {"experiment": experiment.name, "quick": quick, "seeds": seeds, "cells": len(cells),
            "finished": len(records), "precision": records[0]["config"]["precision"], "cell_threads": threads,
            "cell_commits": dict(commits), "cell_minutes": round(cell_minutes, 1), **provenance(),
            "minutes": round(elapsed / 60, 1)}
    atomic_write_text(out / "table.json", json.dumps({"meta": meta, "table": table, "records": records}, indent=2))
    cells_line = (f"{coverage}, trained at commit(s) {', '.join(f'`{c}`' for c in commits)} on "
                  f"{', '.join(map(str, threads))} torch thread(s) per cell, float32 matmul precision "
                  f"{meta['precision']}; {meta['cell_minutes']} min of training and evaluation in all.")
    atomic_write_text(out / "table.md", f"# {experiment.title}\n\n{markdown}\n\n![figure](figure.png)\n\n"
                      f"{stamp(meta)} `{command}`, {meta['minutes']} min. Cells: {cells_line}\n")
    echo("")
    echo(markdown)
    echo(f"\n{coverage}; wrote {out / 'table.md'}, {out / 'table.json'} and {out / 'figure.png'} "
         f"({elapsed / 60:.1f} min)")
    if len(records) < len(cells):
        echo("the table is partial: once the other cells are finished, the same command with --table-only writes "
             "the whole table")
    return {"markdown": markdown, "table": table, "records": records, "out": out, "meta": meta}
