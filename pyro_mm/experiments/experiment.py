"""What an experiment of ``pyro-mm reproduce`` is, and the pieces its cells share.

An :class:`Experiment` lists its grid (:meth:`Experiment.cells`, quick or full, over seeds) and
the smallest part of it that can test its claim (:meth:`Experiment.minimum_cells`), builds a
cell's method and training data (:meth:`Experiment.build`), trains it (:meth:`Experiment.fit`,
timed by :meth:`Experiment.seconds_per_step`: by default the method's own ``fit``; an experiment
may train what it built its own way, e.g. a plain :class:`pyro.infer.SVI` loop), evaluates a
trained cell (:meth:`Experiment.evaluate`), names the data and judges a cell's figures depend on
(:meth:`Experiment.fingerprint`) and writes the table and the figure of every cell's result
(:meth:`Experiment.report`). Data sets, their content hashes, their judging classifiers and
their test batches are built once per process and shared by the cells (:class:`DataCache`).
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import torch

from ..data.catalog import load_dataset, num_modalities_of, observation_scheme
from ..registry import METHODS
from .grid import Cell

__all__ = ["Experiment", "DataCache", "GENERATION_PARAMS", "generation_params"]

#: the data values of a cell that are its data set's own generation parameters, passed to the data
#: set (a cell without them has the data set's defaults)
GENERATION_PARAMS = ("scale",)


def generation_params(cell: Cell) -> Dict:
    """The values of :data:`GENERATION_PARAMS` that ``cell``'s data carry."""
    return {k: v for k, v in cell.data_values.items() if k in GENERATION_PARAMS}


def _frozen(params) -> tuple:
    return tuple(sorted((params or {}).items()))


class DataCache:
    """Data sets, their content hashes, judging classifiers and complete test batches, built once
    per process (a pickled cache, e.g. sent to a worker process, arrives empty and builds its own).

    :param size: use only this many base samples of every split (default: all of them).
    :ivar progress: show the judges' training progress (when they are not cached yet).
    """

    def __init__(self, size=None):
        self.size = size
        self.progress = False
        self._sets: Dict[tuple, object] = {}
        self._hashes: Dict[tuple, str] = {}
        self._judges: Dict[tuple, tuple] = {}
        self._judges_hashes: Dict[tuple, str] = {}
        self._stand_ins: Dict[tuple, tuple] = {}
        self._standing_in = False

    def __getstate__(self):
        return {"size": self.size, "progress": self.progress}

    def __setstate__(self, state):
        self.__init__(state["size"])
        self.progress = state["progress"]

    def dataset(self, name: str, split: str, num_modalities=None, scheme="paired", fraction=1.0, size=None,
                params=None):
        """A split of data set ``name`` (built once); ``params``: its generation parameters
        (:data:`GENERATION_PARAMS`) where they are not its defaults."""
        size = self.size if size is None else size
        key = (name, split, num_modalities, scheme, fraction, size, _frozen(params))
        if key not in self._sets:
            count = num_modalities_of(name, num_modalities)
            observation = observation_scheme(scheme, fraction, count) if split == "train" else None
            self._sets[key] = load_dataset(name, split, size=size, observation=observation,
                                           num_modalities=num_modalities, **(params or {}))
        return self._sets[key]

    def content_hash(self, name: str, split: str, num_modalities=None, size=None, params=None) -> str:
        """:attr:`~pyro_mm.data.base.MultimodalDataset.content_hash` of a split (computed once)."""
        size = self.size if size is None else size
        key = (name, split, num_modalities, size, _frozen(params))
        if key not in self._hashes:
            self._hashes[key] = self.dataset(name, split, num_modalities, size=size, params=params).content_hash
        return self._hashes[key]

    def judges(self, name: str, num_modalities=None, params=None):
        """``(classifiers, accuracies)`` trained on the whole training split (cached on disk too);
        inside :meth:`stand_in_judges`, untrained classifiers of the same architecture."""
        from ..metrics import classifiers_for
        from ..metrics.classifiers import make_classifier

        key = (name, num_modalities, _frozen(params))
        if self._standing_in and key not in self._judges:
            if key not in self._stand_ins:
                train = self.dataset(name, "train", num_modalities, params=params)
                self._stand_ins[key] = ({n: make_classifier(train, n).eval() for n in train.names}, {})
            return self._stand_ins[key]
        if key not in self._judges:
            self._judges[key] = classifiers_for(self.dataset(name, "train", num_modalities, params=params),
                                                self.dataset(name, "test", num_modalities, params=params),
                                                progress=self.progress)
        return self._judges[key]

    def judges_sha256(self, name: str, num_modalities=None, params=None) -> str:
        """:func:`~pyro_mm.metrics.classifiers.judges_sha256` of :meth:`judges` (computed once)."""
        from ..metrics.classifiers import judges_sha256

        key = (name, num_modalities, _frozen(params))
        if key not in self._judges_hashes:
            self._judges_hashes[key] = judges_sha256(self.judges(name, num_modalities, params)[0])
        return self._judges_hashes[key]

    def judges_seconds(self, name: str, num_modalities=None, threads: int = 1, counted=None, params=None) -> float:
        """Seconds :meth:`judges` will spend training classifiers (0 where they are cached), called
        with ``threads`` torch threads (that many classifiers train at once); ``counted``: see
        :func:`~pyro_mm.metrics.classifiers.classifiers_training_seconds`."""
        from ..metrics.classifiers import classifiers_training_seconds

        if (name, num_modalities, _frozen(params)) in self._judges:
            return 0.0
        return classifiers_training_seconds(self.dataset(name, "train", num_modalities, params=params),
                                            self.dataset(name, "test", num_modalities, params=params),
                                            workers=threads, counted=counted)

    @contextmanager
    def stand_in_judges(self):
        """Within the block, :meth:`judges` not built yet are untrained classifiers of the same
        architecture, neither trained nor cached: an evaluation can be timed before the judges
        exist (the cost of judging does not depend on the weights)."""
        self._standing_in = True
        try:
            yield
        finally:
            self._standing_in = False

    def test_batch(self, name: str, num: int, num_modalities=None, params=None):
        """The first ``num`` test samples, every modality observed."""
        test = self.dataset(name, "test", num_modalities, params=params)
        return test.batch(torch.arange(min(num, len(test))), complete=True)


class Experiment:
    """Base class of the experiments of ``pyro-mm reproduce``.

    :cvar name: the command's name for it. :cvar title: a heading. :cvar claim: what the paper
    claims that the table tests.
    """

    name = ""
    title = ""
    claim = ""
    #: the command that runs it, as its table states it (default: ``pyro-mm reproduce <name>``)
    command = ""
    #: the attributes that say how many samples the evaluation uses (those an experiment has): the
    #: duration estimate times the evaluation on fewer samples and scales it up
    evaluation_samples = ("test_samples", "probe_samples")

    def __init__(self, size=None):
        """:param size: base samples of every data split (default: all; the tests use a few)."""
        self.data = DataCache(size)

    def cells(self, quick: bool, seeds: int) -> List[Cell]:  # pragma: no cover - abstract
        raise NotImplementedError

    def describe(self, quick: bool, seeds: int) -> str:
        """One line on the grid the setting runs (what ``--quick`` leaves out)."""
        return ""

    #: the seeds of the minimum grid; ``None``: the experiment has none (its full grid is small)
    minimum_seeds = None

    def in_minimum(self, cell: Cell) -> bool:
        """Whether ``cell`` of the full grid belongs to the minimum grid (at any seed)."""
        return True

    def priority(self, cell: Cell) -> int:
        """Where ``cell`` comes in the full grid (:func:`~pyro_mm.experiments.grid.by_priority`, 0
        first), so that a grid spread over sessions holds its minimum comparison as early as
        possible. Default: 0 for a cell of the minimum grid, 1 for the rest."""
        return 0 if self.in_minimum(cell) else 1

    def minimum_cells(self) -> List[Cell]:
        """The minimum grid: the cells of the full grid over :attr:`minimum_seeds` seeds that
        :meth:`in_minimum` keeps, the smallest grid that can test the claim (its full grid may not
        fit the time a user has; ``pyro-mm reproduce --minimum``)."""
        if self.minimum_seeds is None:
            raise ValueError(f"{self.name} has no minimum grid: its full grid is the smallest that tests its claim")
        return [cell for cell in self.cells(False, self.minimum_seeds) if self.in_minimum(cell)]

    def build(self, cell: Cell):
        """``(method, training data)`` of ``cell``: the registry's method with the cell's options,
        pyro_mm's default networks for the data set (with the cell's network options)."""
        data = cell.data_values
        train = self.data.dataset(cell.dataset, "train", data.get("num_modalities"), data.get("scheme", "paired"),
                                  data.get("fraction", 1.0), data.get("size"), generation_params(cell))
        vae = METHODS[cell.method].for_dataset(train, cell.z_dim, networks=cell.network_values, **cell.option_values)
        return vae, train

    def fit(self, vae, train, cell: Cell, checkpoint: Path, callback) -> None:
        """Train ``vae`` (what :meth:`build` returned) on ``train`` for ``cell.steps`` steps,
        resuming ``checkpoint`` where the file exists and writing it from time to time; call
        ``callback(record)`` after every step (``record.step``: the steps done, the resumed ones
        included); leave the loss of every step in ``vae.step_losses``; raise
        :class:`FloatingPointError` on a non-finite loss. Default: the method's
        :meth:`~pyro_mm.multimodal_vae.MultimodalVAE.fit` with the cell's batch, learning rate, schedule
        and precision."""
        vae.fit(train, epochs=None, steps=cell.steps, batch_size=cell.batch_size, lr=cell.lr, seed=cell.seed,
                lr_schedule=cell.lr_schedule, warmup_steps=cell.warmup_steps,
                progress=False, callback=callback, checkpoint=checkpoint, checkpoint_every=max(cell.steps // 4, 1),
                resume=checkpoint.is_file(), matmul_precision=cell.precision)

    def seconds_per_step(self, vae, train, cell: Cell, warmup: int, timed: int) -> float:
        """Seconds one training step of ``vae`` (what :meth:`build` returned) takes here: ``timed``
        steps after ``warmup``, on a throw-away ``vae``, keeping the global random state. Default:
        :func:`pyro_mm.training.seconds_per_step` with the cell's batch, learning rate and precision."""
        from ..training import seconds_per_step

        return seconds_per_step(vae, train, cell.batch_size, cell.lr, warmup, timed, cell.precision)

    def evaluate(self, vae, cell: Cell) -> dict:  # pragma: no cover - abstract
        raise NotImplementedError

    def fingerprint(self, cell: Cell) -> dict:
        """What ``cell``'s figures depend on beyond its configuration: ``{"data_sha256": {"train":
        ..., "test": ...}, "judges_sha256": ...}``, the content hashes of the cell's training and
        test sets and the hash of the classifiers that judge it (trained here if not cached)."""
        data, params = cell.data_values, generation_params(cell)
        count = data.get("num_modalities")
        return {"data_sha256": {"train": self.data.content_hash(cell.dataset, "train", count, data.get("size"), params),
                                "test": self.data.content_hash(cell.dataset, "test", count, params=params)},
                "judges_sha256": self.data.judges_sha256(cell.dataset, count, params)}

    def judges_seconds(self, cells: Sequence[Cell], threads: int = 1) -> float:
        """Seconds the judges of ``cells`` will take to train where they are not cached yet, on
        ``threads`` torch threads; a classifier that several sets share (the same modality and
        training images) is trained, and counted, once."""
        judged = {(c.dataset, c.data_values.get("num_modalities"), _frozen(generation_params(c))) for c in cells}
        counted = set()
        return sum(self.data.judges_seconds(name, count, threads, counted, dict(params))
                   for name, count, params in sorted(judged, key=str))

    def report(self, records: Sequence[dict], out: Path, seeds: int) -> Tuple[str, dict]:  # pragma: no cover
        """Write ``figure.png`` into ``out``; return the markdown table and its JSON form. ``seeds``:
        the seeds the grid has per setting (an entry over fewer says so, "n=2 of 3")."""
        raise NotImplementedError
