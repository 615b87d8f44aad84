"""A grid of training runs, each cell in its own run directory, and the table of their results.

A :class:`Cell` is one method with its options, trained on one data set under one observation
scheme for a fixed number of steps from one seed: its figures depend on the seed and the torch
build, not on the machine's speed. :func:`run_grid` trains and evaluates every cell of an
experiment (:class:`~pyro_mm.experiments.experiment.Experiment`) in ``out/cells/<cell key>/``:

* a finished cell (its ``result.json`` written for the same configuration) is not trained again;
* an interrupted one resumes from its ``checkpoint.pt`` exactly where it stopped (the trainer's
  exact resume), so a killed grid rerun with the same command gives the same table;
* one progress bar runs over the training steps of the whole grid, naming the cell in training.

The experiment then turns the records (``config`` and ``result`` of every cell) into its table
(``table.md`` and ``table.json``) and figure (``figure.png``).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import torch
from tqdm.auto import tqdm

from ..checkpoint import DirectoryLock

__all__ = ["Cell", "run_grid", "mean_sd", "atomic_write_text", "cell_dir"]


def _frozen(mapping: Optional[Mapping[str, Any]]) -> Tuple[Tuple[str, Any], ...]:
    return tuple(sorted((k, _freeze_value(v)) for k, v in (mapping or {}).items()))


def _freeze_value(value):
    if isinstance(value, Mapping):
        return _frozen(value)
    if isinstance(value, list):
        return tuple(value)
    return value


def _thaw(items) -> Dict[str, Any]:
    return {k: (_thaw(v) if isinstance(v, tuple) and v and all(isinstance(i, tuple) and len(i) == 2 for i in v)
                else v) for k, v in items}


@dataclass(frozen=True)
class Cell:
    """One training run of a grid.

    :ivar method: the registry name of the method.
    :ivar dataset: the data set's name (:data:`pyro_mm.data.catalog.DATASETS`, or one an
        experiment builds itself).
    :ivar seed: seed of the weights, the data order and the sampling.
    :ivar steps: training steps.
    :ivar options: the method's options.
    :ivar data: the data set's options (``num_modalities``, ``scheme``, ``fraction``, ``size``).
    :ivar networks: keyword arguments of :func:`~pyro_mm.defaults.default_modalities`.
    :ivar labels: what the table reads the cell as (e.g. ``{"f": 0.5, "kept": "mnist"}``).
    """

    method: str
    dataset: str
    seed: int
    steps: int
    options: Tuple = ()
    data: Tuple = ()
    networks: Tuple = ()
    labels: Tuple = ()
    z_dim: int = 16
    batch_size: int = 128
    lr: float = 1e-3

    @classmethod
    def make(cls, method: str, dataset: str, seed: int, steps: int, options=None, data=None, networks=None,
             labels=None, **settings) -> "Cell":
        return cls(method, dataset, seed, steps, _frozen(options), _frozen(data), _frozen(networks), _frozen(labels),
                   **settings)

    @property
    def option_values(self) -> Dict[str, Any]:
        return _thaw(self.options)

    @property
    def data_values(self) -> Dict[str, Any]:
        return _thaw(self.data)

    @property
    def network_values(self) -> Dict[str, Any]:
        return _thaw(self.networks)

    @property
    def label_values(self) -> Dict[str, Any]:
        return _thaw(self.labels)

    def config(self) -> Dict[str, Any]:
        """The cell as JSON-serialisable settings (what a finished result must have been run with)."""
        out = asdict(self)
        out.update(options=self.option_values, data=self.data_values, networks=self.network_values,
                   labels=self.label_values)
        return json.loads(json.dumps(out, default=str))

    @property
    def key(self) -> str:
        """A directory name: method, labels and seed, and a hash of the whole configuration."""
        digest = hashlib.sha1(json.dumps(self.config(), sort_keys=True).encode()).hexdigest()[:8]
        parts = [self.method] + [f"{k}{v}" for k, v in self.labels] + [f"seed{self.seed}"]
        slug = re.sub(r"[^A-Za-z0-9.+=_-]+", "_", "-".join(str(p) for p in parts))
        return f"{slug}-{digest}"


def cell_dir(out: Path, cell: Cell) -> Path:
    return Path(out) / "cells" / cell.key


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file renamed over it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _finished(directory: Path, cell: Cell) -> Optional[dict]:
    path = directory / "result.json"
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
    except ValueError:
        return None  # a damaged result is computed again
    return record if record.get("config") == cell.config() else None


def run_grid(experiment, cells: Sequence[Cell], out: Path, progress: bool = True,
             echo: Callable[[str], None] = print) -> List[dict]:
    """Train and evaluate every cell not finished yet; returns the records in the cells' order."""
    out = Path(out)
    keys = [c.key for c in cells]
    if len(set(keys)) != len(keys):
        raise ValueError("the grid holds the same cell twice")
    records: Dict[str, dict] = {}
    todo = []
    for cell in cells:
        record = _finished(cell_dir(out, cell), cell)
        if record is None:
            todo.append(cell)
        else:
            records[cell.key] = record
    if len(todo) < len(cells):
        echo(f"{len(cells) - len(todo)} of {len(cells)} cells already finished in {out}; training the other "
             f"{len(todo)}")
    bar = tqdm(total=sum(c.steps for c in todo), unit="step", disable=not progress, dynamic_ncols=True)
    try:
        for i, cell in enumerate(todo, 1):
            bar.set_description(f"cell {i}/{len(todo)} {cell.method} {_label_text(cell)} seed {cell.seed}")
            records[cell.key] = _run_cell(experiment, cell, cell_dir(out, cell), bar)
    finally:
        bar.close()
    return [records[c.key] for c in cells]


def _label_text(cell: Cell) -> str:
    return " ".join(f"{k}={v}" for k, v in cell.labels)


def _run_cell(experiment, cell: Cell, directory: Path, bar) -> dict:
    """Train ``cell`` (resuming its checkpoint), evaluate it and write its ``result.json``."""
    with DirectoryLock(directory):
        checkpoint = directory / "checkpoint.pt"
        torch.manual_seed(cell.seed)
        vae, train = experiment.build(cell)
        done_before = {"steps": 0}

        def advance(record):
            bar.update(record.step - done_before["steps"])
            done_before["steps"] = record.step

        start = time.perf_counter()
        vae.fit(train, epochs=None, steps=cell.steps, batch_size=cell.batch_size, lr=cell.lr, seed=cell.seed,
                progress=False, callback=advance, checkpoint=checkpoint, checkpoint_every=max(cell.steps // 4, 1),
                resume=checkpoint.is_file())
        seconds = time.perf_counter() - start
        with torch.random.fork_rng():
            torch.manual_seed(cell.seed)
            vae.eval()
            result = experiment.evaluate(vae, cell)
        record = {"config": cell.config(), "result": result,
                  "training": {"steps": len(vae.step_losses), "seconds_this_run": round(seconds, 1),
                               "final_loss": statistics.fmean(vae.step_losses[-20:])}}
        atomic_write_text(directory / "result.json", json.dumps(record, indent=2))
        return record


def mean_sd(values: Sequence[float]) -> Tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value; NaNs skipped)."""
    values = [v for v in values if v is not None and not math.isnan(v)]
    if not values:
        return math.nan, math.nan
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)
