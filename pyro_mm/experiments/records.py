"""The record of a finished cell, and the results store that keeps records across sessions.

A cell that finishes writes its record, one small JSON file (never a checkpoint), to
``out/cells/<key>/result.json`` (:func:`out_path`) and, when ``pyro-mm reproduce`` is given a
results store (``--results DIR``, :class:`ResultsStore`), to ``DIR/<experiment>/cells/<key>.json``
as well; in this repository the store is ``docs/results``, so committing new figures is
``git add docs/results``. A record (format :data:`VERSION`) holds:

==================  ===========================================================================
``version``         the record's format, :data:`VERSION`
``key``             the cell's key (its directory and file name)
``config``          the cell's configuration (:meth:`~pyro_mm.experiments.grid.Cell.config`:
                    method, options, data set and its options, seed, steps, precision, ...)
``result``          the experiment's measurements of the trained cell
``training``        ``steps`` trained, ``resumed_from`` (the step this process resumed at, 0
                    for a fresh run), ``seconds`` (this process's training), ``final_loss``
``evaluation``      ``seconds`` of the evaluation
``threads``         ``torch.get_num_threads()`` during the cell
``matmul_precision``  the float32 matmul precision in effect during the training
``data_sha256``     ``{"train": ..., "test": ...}``: the data sets' content hashes
                    (:attr:`~pyro_mm.data.base.MultimodalDataset.content_hash`; masks excluded)
``judges_sha256``   the judging classifiers' hash (:func:`~pyro_mm.metrics.classifiers.judges_sha256`),
                    ``null`` for an experiment without judges
``provenance``      :func:`pyro_mm.provenance.provenance` in the process that ran the cell
                    (commit, machine, date, torch and pyro versions, CPU flags, ...)
==================  ===========================================================================

A record counts as **finished** for a process (:func:`mismatch` returns ``None``) when its
format, configuration, threads, precision, data hashes and judges' hash are all what that process
would use: a record made at another thread count, on other data or with other judges is trained
again. A table (:func:`check_consistent`) never mixes records of different data, judges or
precision.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Dict, Iterable, Optional

from .grid import Cell, atomic_write_text, cell_dir

__all__ = ["VERSION", "make_record", "mismatch", "read_record", "write_record", "out_path", "ResultsStore",
           "check_consistent"]

#: the format of the records this pyro_mm writes and reads
VERSION = 1
#: what distinguishes one cell's training data from another's in a table (the observation scheme
#: only changes the masks, which the data hashes leave out)
_OBSERVATION = ("scheme", "fraction")


def make_record(cell: Cell, result: dict, training: dict, evaluation_seconds: float, threads: int,
                matmul_precision: str, fingerprint: dict, provenance: dict) -> dict:
    """The record of ``cell``, finished (see the module for the fields).

    :param fingerprint: ``{"data_sha256": {"train": ..., "test": ...}, "judges_sha256": ...}``
        (:meth:`~pyro_mm.experiments.experiment.Experiment.fingerprint`)."""
    return {"version": VERSION, "key": cell.key, "config": cell.config(), "result": result, "training": training,
            "evaluation": {"seconds": round(evaluation_seconds, 2)}, "threads": threads,
            "matmul_precision": matmul_precision, "data_sha256": fingerprint["data_sha256"],
            "judges_sha256": fingerprint["judges_sha256"], "provenance": provenance}


def mismatch(record: Optional[dict], cell: Cell, threads: Optional[int] = None,
             fingerprint: Optional[dict] = None) -> Optional[str]:
    """``None`` when ``record`` is ``cell``'s, finished as this process would run it; else why not
    (a few words). ``threads`` and ``fingerprint`` left out are not compared (a table built from
    records alone)."""
    if record is None:
        return "no record"
    if record.get("version") != VERSION:
        return f"record format {record.get('version')} (this pyro_mm reads {VERSION})"
    if record.get("config") != cell.config():
        return "another configuration"
    if threads is not None and record.get("threads") != threads:
        return f"made at {record.get('threads')} threads"
    if fingerprint is not None:
        if record.get("data_sha256") != fingerprint["data_sha256"]:
            return "made on other data"
        if record.get("judges_sha256") != fingerprint["judges_sha256"]:
            return "judged by other classifiers"
    return None


def read_record(path: Path) -> Optional[dict]:
    """The record at ``path``; ``None`` when there is none or it is damaged (it is made again)."""
    try:
        record = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def write_record(path: Path, record: dict) -> None:
    """Write ``record`` to ``path`` atomically (unless the file already holds it, byte for byte)."""
    text = json.dumps(record, indent=2) + "\n"
    try:
        if Path(path).read_text() == text:
            return
    except OSError:
        pass
    atomic_write_text(Path(path), text)


def out_path(out: Path, cell: Cell) -> Path:
    """Where ``cell``'s record lies in an output directory: ``out/cells/<key>/result.json``."""
    return cell_dir(out, cell) / "result.json"


class ResultsStore:
    """Records kept across sessions and machines, one JSON file per cell:
    ``root/<experiment>/cells/<key>.json``.

    :param root: the store (``--results DIR``; this repository's is ``docs/results``).
    :param experiment: the experiment's name.
    """

    def __init__(self, root, experiment: str):
        self.directory = Path(root) / experiment / "cells"

    def path(self, cell: Cell) -> Path:
        return self.directory / f"{cell.key}.json"

    def read(self, cell: Cell) -> Optional[dict]:
        return read_record(self.path(cell))

    def write(self, record: dict) -> None:
        """Keep ``record`` (replacing the cell's older one)."""
        write_record(self.directory / f"{record['key']}.json", record)


def _data_group(config: dict) -> str:
    """The data a cell is trained and judged on, as text: its data set and the data options that
    change the content (not the observation scheme)."""
    options = {k: v for k, v in sorted(config["data"].items()) if k not in _OBSERVATION}
    return config["dataset"] + (f" {json.dumps(options)}" if options else "")


def check_consistent(records: Iterable[dict], experiment: str) -> None:
    """Refuse (``ValueError``) to tabulate records that mix matmul precisions, or cells of one data
    set made on different data or judged by different classifiers."""
    records = list(records)
    precisions = Counter(r["config"]["precision"] for r in records)
    if len(precisions) > 1:
        raise ValueError(f"the records of {experiment} mix matmul precisions ({_counts(precisions)}); tabulate "
                         "one precision at a time")
    groups: Dict[str, Dict[str, Counter]] = {}
    for r in records:
        group = groups.setdefault(_data_group(r["config"]), {"data": Counter(), "judges": Counter()})
        group["data"][json.dumps(r["data_sha256"], sort_keys=True)] += 1
        group["judges"][str(r["judges_sha256"])] += 1
    for name, hashes in groups.items():
        for what, counts in hashes.items():
            if len(counts) > 1:
                raise ValueError(
                    f"the records of {experiment} on {name} were made with different {what} ({_counts(counts)}); "
                    "remove the stale records (or keep them in another --results) and run those cells again")


def _counts(counter: Counter) -> str:
    return ", ".join(f"{n} cell{'s' if n > 1 else ''} with {value[:24]}" for value, n in counter.most_common())
