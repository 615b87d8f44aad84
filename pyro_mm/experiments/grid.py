"""A grid of training runs: its cells, where each one's run directory is, and the mean ± sd the
tables give over seeds.

A :class:`Cell` is one method with its options, trained on one data set under one observation
scheme for a fixed number of steps from one seed at one float32 matmul precision: its figures
depend on the seed, the torch build, the thread count and the CPU's kernels, not on the machine's
speed. Its :attr:`~Cell.key` names its directory ``out/cells/<key>/`` (:func:`cell_dir`) and its
record in a results store (:mod:`.records`); :mod:`.scheduler` trains and evaluates the cells.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import statistics
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from ..precision import check_precision

__all__ = ["Cell", "by_priority", "mean_sd", "atomic_write_text", "cell_dir"]


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
    :ivar data: the data set's options (``num_modalities``, ``scheme``, ``fraction``, ``size``) and
        generation parameters (:data:`~pyro_mm.experiments.experiment.GENERATION_PARAMS`, e.g. ``scale``).
    :ivar networks: keyword arguments of :func:`~pyro_mm.defaults.default_modalities`.
    :ivar labels: what the table reads the cell as (e.g. ``{"f": 0.5, "kept": "mnist"}``).
    :ivar lr, lr_schedule, warmup_steps: Adam's (peak) learning rate and its schedule
        (:data:`pyro_mm.training.LR_SCHEDULES`), as :meth:`~pyro_mm.multimodal_vae.MultimodalVAE.fit` takes them.
    :ivar precision: the float32 matmul precision of the training (one of
        :data:`pyro_mm.precision.PRECISIONS`; ``"highest"``: exact float32), passed to
        :meth:`~pyro_mm.multimodal_vae.MultimodalVAE.fit` as ``matmul_precision``. It is part of the
        configuration, so cells of different precisions never share a record or a table.
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
    lr_schedule: str = "constant"
    warmup_steps: int = 0
    precision: str = "highest"

    def __post_init__(self):
        check_precision(self.precision)

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


def by_priority(cells: Sequence[Cell], priority: Callable[[Cell], int]) -> List[Cell]:
    """``cells`` in order of ``priority(cell)`` (0 first: the grid's minimum comparison), seed by
    seed within each, so that a grid spread over sessions holds its minimum grid as early as possible."""
    return sorted(cells, key=lambda c: (priority(c), c.seed))


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


def mean_sd(values: Sequence[float]) -> Tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value; NaNs skipped)."""
    values = [v for v in values if v is not None and not math.isnan(v)]
    if not values:
        return math.nan, math.nan
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)
