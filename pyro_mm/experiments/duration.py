"""How long a grid will take on this machine, measured before it starts and printed in parts:
"training ≈ X min, evaluation ≈ Y min, judges ≈ Z min (first time only)".

* **training**: a few steps of every kind of cell (method, options, data set, networks, batch,
  precision), timed, times the steps of the cells of that kind;
* **evaluation**: the evaluation of one untrained model of every kind of evaluated cell (method,
  options, data set and its content, networks), timed on ``1/k`` of the samples the experiment
  evaluates on (:attr:`~pyro_mm.experiments.experiment.Experiment.evaluation_samples`; about 100
  of the fewest) and scaled by ``k``, with untrained stand-ins for the judges (judging costs the
  same whatever the weights), times the cells of that kind;
* **judges**: the judging classifiers not in the cache yet, a few of their training steps timed
  times their steps, as many at once as the grid has threads in all (0 once they are cached).

Training and evaluation are measured at the thread count in effect (a grid of several jobs
measures at one job's threads) and divided by the number of jobs running side by side.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Dict, List, Sequence

import torch

from .grid import Cell

__all__ = ["Duration", "estimate_duration", "training_seconds", "evaluation_seconds"]

#: about this many samples of the smallest evaluated set are evaluated when timing an evaluation
_TIMED_SAMPLES = 100
#: data options that only change which entries are observed (an evaluation does not see them)
_OBSERVATION = ("scheme", "fraction")


def _minutes(seconds: float) -> str:
    minutes = seconds / 60
    return f"{minutes:.1f} min" if minutes < 10 else f"{minutes:.0f} min"


@dataclass(frozen=True)
class Duration:
    """Estimated wall-clock seconds of a grid's training, evaluation and first-time judges."""

    training: float
    evaluation: float
    judges: float

    @property
    def total(self) -> float:
        return self.training + self.evaluation + self.judges

    def __str__(self) -> str:
        judges = f"judges ≈ {_minutes(self.judges)} (first time only)" if self.judges else "judges cached"
        return f"training ≈ {_minutes(self.training)}, evaluation ≈ {_minutes(self.evaluation)}, {judges}"


def _kinds(cells: Sequence[Cell], key) -> List[List[Cell]]:
    groups: Dict[tuple, List[Cell]] = {}
    for cell in cells:
        groups.setdefault(key(cell), []).append(cell)
    return list(groups.values())


def _training_kind(cell: Cell) -> tuple:
    return cell.method, cell.options, cell.dataset, cell.networks, cell.data, cell.batch_size, cell.precision


def _evaluation_kind(cell: Cell) -> tuple:
    data = tuple((k, v) for k, v in cell.data if k not in _OBSERVATION)
    return cell.method, cell.options, cell.dataset, cell.networks, data, cell.z_dim


def training_seconds(experiment, cells: Sequence[Cell], warmup: int = 2, timed: int = 3) -> float:
    """Seconds the cells' training takes in one process: ``timed`` steps (after ``warmup``) of
    every kind of cell at its precision, times the kind's steps."""
    total = 0.0
    for group in _kinds(cells, _training_kind):
        cell = group[0]
        with torch.random.fork_rng():
            torch.manual_seed(0)
            vae, train = experiment.build(cell)
            per_step = experiment.seconds_per_step(vae, train, cell, warmup, timed)
        total += per_step * sum(c.steps for c in group)
    return total


@contextmanager
def _fewer_samples(experiment, factor: int):
    """Within the block, the experiment evaluates on ``1/factor`` of its samples."""
    saved = {name: experiment.__dict__[name] for name in experiment.evaluation_samples if name in experiment.__dict__}
    counts = {name: getattr(experiment, name) for name in experiment.evaluation_samples if hasattr(experiment, name)}
    for name, count in counts.items():
        setattr(experiment, name, max(1, count // factor))
    try:
        yield
    finally:
        for name in counts:
            if name in saved:
                setattr(experiment, name, saved[name])
            else:
                delattr(experiment, name)


def evaluation_seconds(experiment, cells: Sequence[Cell]) -> float:
    """Seconds the cells' evaluation takes in one process (see the module)."""
    counts = [getattr(experiment, name) for name in experiment.evaluation_samples if hasattr(experiment, name)]
    factor = max(1, min(counts) // _TIMED_SAMPLES) if counts else 1
    total = 0.0
    for group in _kinds(cells, _evaluation_kind):
        cell = group[0]
        with torch.random.fork_rng(), experiment.data.stand_in_judges(), _fewer_samples(experiment, factor):
            torch.manual_seed(0)
            vae, _ = experiment.build(cell)
            vae.eval()
            start = time.perf_counter()
            experiment.evaluate(vae, cell)
            total += (time.perf_counter() - start) * factor * len(group)
    return total


def estimate_duration(experiment, cells: Sequence[Cell], jobs: int = 1, judge_threads: int = 1) -> Duration:
    """The :class:`Duration` of training and evaluating ``cells`` in ``jobs`` processes side by side
    (measured at the thread count in effect: one job's), the judges trained on ``judge_threads``."""
    if not cells:
        return Duration(0.0, 0.0, 0.0)
    side_by_side = min(jobs, len(cells))
    return Duration(training_seconds(experiment, cells) / side_by_side,
                    evaluation_seconds(experiment, cells) / side_by_side, experiment.judges_seconds(cells, judge_threads))
