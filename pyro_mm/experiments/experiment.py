"""What an experiment of ``pyro-mm reproduce`` is, and the pieces its cells share.

An :class:`Experiment` lists its grid (:meth:`Experiment.cells`, quick or full, over seeds),
builds a cell's method and training data (:meth:`Experiment.build`), evaluates a trained cell
(:meth:`Experiment.evaluate`) and writes the table and the figure of every cell's result
(:meth:`Experiment.report`). Data sets, their judging classifiers and their test batches are
built once per process and shared by the cells (:class:`DataCache`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import torch

from ..data.catalog import load_dataset, num_modalities_of, observation_scheme
from ..methods import METHODS
from ..training import seconds_per_step
from .grid import Cell

__all__ = ["Experiment", "DataCache", "measure_duration"]


class DataCache:
    """Data sets, judging classifiers and complete test batches, built once per process.

    :param size: use only this many base samples of every split (default: all of them).
    """

    def __init__(self, size=None):
        self.size = size
        self._sets: Dict[tuple, object] = {}
        self._judges: Dict[tuple, tuple] = {}

    def dataset(self, name: str, split: str, num_modalities=None, scheme="paired", fraction=1.0, size=None):
        size = self.size if size is None else size
        key = (name, split, num_modalities, scheme, fraction, size)
        if key not in self._sets:
            count = num_modalities_of(name, num_modalities)
            observation = observation_scheme(scheme, fraction, count) if split == "train" else None
            self._sets[key] = load_dataset(name, split, size=size, observation=observation,
                                           num_modalities=num_modalities)
        return self._sets[key]

    def judges(self, name: str, num_modalities=None, progress: bool = False):
        """``(classifiers, accuracies)`` trained on the whole training split (cached on disk too)."""
        from ..metrics import classifiers_for

        key = (name, num_modalities)
        if key not in self._judges:
            self._judges[key] = classifiers_for(self.dataset(name, "train", num_modalities),
                                                self.dataset(name, "test", num_modalities), progress=progress)
        return self._judges[key]

    def test_batch(self, name: str, num: int, num_modalities=None):
        """The first ``num`` test samples, every modality observed."""
        test = self.dataset(name, "test", num_modalities)
        return test.batch(torch.arange(min(num, len(test))), complete=True)


class Experiment:
    """Base class of the experiments of ``pyro-mm reproduce``.

    :cvar name: the command's name for it. :cvar title: a heading. :cvar claim: what the paper
    claims that the table tests.
    """

    name = ""
    title = ""
    claim = ""

    def __init__(self, size=None):
        """:param size: base samples of every data split (default: all; the tests use a few)."""
        self.data = DataCache(size)

    def cells(self, quick: bool, seeds: int) -> List[Cell]:  # pragma: no cover - abstract
        raise NotImplementedError

    def describe(self, quick: bool, seeds: int) -> str:
        """One line on the grid the setting runs (what ``--quick`` leaves out)."""
        return ""

    def build(self, cell: Cell):
        """``(method, training data)`` of ``cell``: the registry's method with the cell's options,
        pyro_mm's default networks for the data set (with the cell's network options)."""
        data = cell.data_values
        train = self.data.dataset(cell.dataset, "train", data.get("num_modalities"), data.get("scheme", "paired"),
                                  data.get("fraction", 1.0), data.get("size"))
        vae = METHODS[cell.method].for_dataset(train, cell.z_dim, networks=cell.network_values, **cell.option_values)
        return vae, train

    def evaluate(self, vae, cell: Cell) -> dict:  # pragma: no cover - abstract
        raise NotImplementedError

    def report(self, records: Sequence[dict], out: Path) -> Tuple[str, dict]:  # pragma: no cover - abstract
        """Write ``figure.png`` into ``out``; return the markdown table and its JSON form."""
        raise NotImplementedError


def measure_duration(experiment: Experiment, cells: Sequence[Cell], warmup: int = 2, timed: int = 3) -> float:
    """Seconds the cells' training will take on this machine, measured: a few steps of every
    kind of cell (method, options, data set, networks) times its number of steps."""
    kinds: Dict[tuple, List[Cell]] = {}
    for cell in cells:
        kinds.setdefault((cell.method, cell.options, cell.dataset, cell.networks, cell.data, cell.batch_size), []
                         ).append(cell)
    total = 0.0
    for group in kinds.values():
        cell = group[0]
        with torch.random.fork_rng():
            torch.manual_seed(0)
            vae, train = experiment.build(cell)
            per_step = seconds_per_step(vae, train, cell.batch_size, cell.lr, warmup, timed)
        total += per_step * sum(c.steps for c in group)
    return total
