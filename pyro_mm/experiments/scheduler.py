"""Which process trains which cell of a grid, and the training of one cell.

Any number of processes may run one grid into one output directory ``out`` at the same time — on
one machine, on several machines sharing a file system (NFS included), or as the tasks of a
SLURM job array — and each may spread its cells over ``jobs`` worker processes. They cooperate
through the files alone:

* a cell with a finished record (:func:`~pyro_mm.experiments.records.mismatch`) in ``out`` or in
  the results store is not trained again (the store's copy is refreshed from ``out``'s);
* every other cell is *attempted*: the attempt takes the cell's lock
  (:class:`~pyro_mm.experiments.cell_lock.CellLock`); a cell locked by a live process is skipped
  (a stale lock, its holder dead, is taken over); under the lock the record is looked for again,
  since another process may have just finished the cell; then the cell is trained — resuming its
  ``checkpoint.pt`` exactly where an interrupted run left it — evaluated, and its record written
  to ``out/cells/<key>/result.json`` and to the store (the record only, never a checkpoint);
* after a pass over the grid, cells skipped because others held them are waited for when
  ``wait`` is set: every :data:`POLL_SECONDS` the process looks for their records, and attempts
  them again — so a cell whose holder died (its lock goes stale) is trained here. Without
  ``wait`` the process returns what it has, and the grid's table says it is partial.

With ``jobs > 1`` the attempts run in ``jobs`` worker processes started with ``spawn`` (torch
and ``fork`` do not mix), each on ``threads`` torch threads; they report their training steps
through a queue to the one progress bar of the parent, which runs over the steps of the whole
grid.
"""

from __future__ import annotations

import multiprocessing
import statistics
import threading
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
from tqdm.auto import tqdm

from ..precision import in_effect
from ..provenance import provenance
from .cell_lock import CellLock
from .grid import Cell, cell_dir
from .records import ResultsStore, make_record, mismatch, out_path, read_record, write_record

__all__ = ["POLL_SECONDS", "survey", "run_grid", "attempt", "train_cell"]

#: seconds between two looks at the cells other processes hold
POLL_SECONDS = 30.0

Report = Callable[[str, int], None]


def _finished(cell: Cell, out: Path, store: Optional[ResultsStore], threads: Optional[int],
              fingerprint: Optional[dict]) -> Tuple[Optional[dict], Optional[str]]:
    """``(record, None)`` for a finished record of ``cell`` in ``out`` or the store; else
    ``(None, why the records there do not count)`` (``None`` when there are none)."""
    reasons = []
    for record in (read_record(out_path(out, cell)), store.read(cell) if store is not None else None):
        why = mismatch(record, cell, threads, fingerprint)
        if why is None:
            return record, None
        if record is not None:
            reasons.append(why)
    return None, (reasons[0] if reasons else None)


def survey(cells: Sequence[Cell], out: Path, store: Optional[ResultsStore], threads: Optional[int],
           fingerprints: Optional[Dict[str, dict]] = None) -> Tuple[Dict[str, dict], List[Cell], Counter]:
    """``(finished records by key, cells to train, why the records of cells to train do not
    count)``. Without ``fingerprints`` the data and judges are not compared (a first look, before
    the data sets are loaded), without ``threads`` the thread count is not (a table built from
    the records alone)."""
    finished, todo, reasons = {}, [], Counter()
    for cell in cells:
        record, why = _finished(cell, out, store, threads, None if fingerprints is None else fingerprints[cell.key])
        if record is None:
            todo.append(cell)
            if why is not None:
                reasons[why] += 1
        else:
            finished[cell.key] = record
    return finished, todo, reasons


def train_cell(experiment, cell: Cell, directory: Path, threads: int, fingerprint: dict, report: Report) -> dict:
    """Train ``cell`` in ``directory`` (resuming its checkpoint), evaluate it and return its record
    (the caller holds the cell's lock)."""
    checkpoint = directory / "checkpoint.pt"
    torch.manual_seed(cell.seed)
    vae, train = experiment.build(cell)
    seen = {"step": 0, "first": None, "precision": cell.precision}

    def advance(step):  # the first step of this process also counts the steps it resumed after
        if seen["first"] is None:
            seen["first"], seen["precision"] = step.step, in_effect()
        report(cell.key, step.step - seen["step"])
        seen["step"] = step.step

    start = time.perf_counter()
    diverged = None
    try:
        experiment.fit(vae, train, cell, checkpoint, advance)
    except FloatingPointError as error:  # a non-finite loss: the cell's outcome, recorded as such
        diverged = str(error)
    training_seconds = time.perf_counter() - start
    steps = len(vae.step_losses)
    result, evaluation_seconds = None, 0.0
    if diverged is None:
        with torch.random.fork_rng():
            torch.manual_seed(cell.seed)
            vae.eval()
            start = time.perf_counter()
            result = experiment.evaluate(vae, cell)
            evaluation_seconds = time.perf_counter() - start
    finite = [loss for loss in vae.step_losses[-20:] if loss == loss]
    training = {"steps": steps, "resumed_from": steps if seen["first"] is None else seen["first"] - 1,
                "seconds": round(training_seconds, 2), "final_loss": statistics.fmean(finite) if finite else None,
                "diverged": diverged}
    return make_record(cell, result, training, evaluation_seconds, torch.get_num_threads(), seen["precision"],
                       fingerprint, provenance())


def attempt(experiment, cell: Cell, out: Path, store: Optional[ResultsStore], threads: int, fingerprint: dict,
            report: Report) -> Tuple[str, Optional[dict]]:
    """Finish ``cell`` unless another process holds it: ``("trained", record)``, ``("found",
    record)`` (finished meanwhile by another process) or ``("held", the lock's holder)``."""
    lock = CellLock(cell_dir(out, cell))
    if not lock.acquire():
        record, _ = _finished(cell, out, store, threads, fingerprint)
        return ("found", record) if record is not None else ("held", lock.holder())
    try:
        record, _ = _finished(cell, out, store, threads, fingerprint)
        if record is not None:
            return "found", record
        record = train_cell(experiment, cell, cell_dir(out, cell), threads, fingerprint, report)
        write_record(out_path(out, cell), record)
        if store is not None:
            store.write(record)
        return "trained", record
    finally:
        lock.release()


# --- worker processes --------------------------------------------------------------------------
_WORKER: dict = {}


def _start_worker(experiment, out, store, threads, queue) -> None:
    torch.set_num_threads(threads)
    _WORKER.update(experiment=experiment, out=out, store=store, threads=threads, queue=queue)


def _work(cell: Cell, fingerprint: dict):
    w = _WORKER
    return attempt(w["experiment"], cell, w["out"], w["store"], w["threads"], fingerprint,
                   lambda key, steps: w["queue"].put((key, steps)))


class _Progress:
    """The grid's one progress bar over the training steps of the cells to train."""

    def __init__(self, cells: Sequence[Cell], enabled: bool):
        self.steps = {c.key: c.steps for c in cells}
        self.done = Counter()
        self.bar = tqdm(total=sum(self.steps.values()), unit="step", disable=not enabled, dynamic_ncols=True)
        self.lock = threading.Lock()

    def advance(self, key: str, steps: int) -> None:
        with self.lock:
            steps = min(steps, self.steps[key] - self.done[key])
            self.done[key] += steps
            self.bar.update(steps)

    def describe(self, text: str) -> None:
        self.bar.set_description(text)

    def finish(self, key: str) -> None:
        """``key`` is finished (here or elsewhere): its steps count as done."""
        self.advance(key, self.steps[key])

    def close(self) -> None:
        self.bar.close()


def _label_text(cell: Cell) -> str:
    return " ".join(f"{k}={v}" for k, v in cell.labels)


def run_grid(experiment, cells: Sequence[Cell], out: Path, fingerprints: Dict[str, dict],
             store: Optional[ResultsStore] = None, threads: Optional[int] = None, jobs: int = 1, wait: bool = True,
             progress: bool = True, echo: Callable[[str], None] = print) -> Dict[str, dict]:
    """Finish ``cells`` (see the module); returns the records this process has of them by key —
    all of them unless ``wait`` is off and other processes still hold some.

    :param fingerprints: every cell's :meth:`~pyro_mm.experiments.experiment.Experiment.fingerprint`
        by key. :param threads: torch threads of a worker (default: the process's).
    :param jobs: worker processes (1: train in this process)."""
    out = Path(out)
    threads = torch.get_num_threads() if threads is None else threads
    keys = [c.key for c in cells]
    if len(set(keys)) != len(keys):
        raise ValueError("the grid holds the same cell twice")
    bar = _Progress(cells, progress)
    records: Dict[str, dict] = {}
    pending, announced = list(cells), False
    pool, listener = None, None
    if jobs > 1 and pending:
        context = multiprocessing.get_context("spawn")
        queue = context.Queue()
        pool = ProcessPoolExecutor(jobs, mp_context=context, initializer=_start_worker,
                                   initargs=(experiment, out, store, threads, queue))
        listener = threading.Thread(target=_listen, args=(queue, bar), daemon=True)
        listener.start()
    try:
        while True:
            if pool is None:
                outcomes = []
                for i, cell in enumerate(pending, 1):
                    bar.describe(f"cell {i}/{len(pending)} {cell.method} {_label_text(cell)} seed {cell.seed}")
                    outcomes.append(attempt(experiment, cell, out, store, threads, fingerprints[cell.key], bar.advance))
            else:
                bar.describe(f"{len(pending)} cells in {jobs} jobs")
                futures = [pool.submit(_work, cell, fingerprints[cell.key]) for cell in pending]
                outcomes = [future.result() for future in futures]
            held = {}
            for cell, (status, payload) in zip(pending, outcomes):
                if status == "held":
                    held[cell.key] = (cell, payload or {})
                else:
                    records[cell.key] = payload
                    bar.finish(cell.key)
            if not held or not wait:
                break
            if not announced:
                holders = Counter(f"{h.get('host', '?')}:{h.get('pid', '?')}" for _, h in held.values())
                echo(f"waiting for {len(held)} cell(s) held by other processes "
                     f"({', '.join(f'{n} by {who}' for who, n in holders.items())}); a cell whose holder stops is "
                     "trained here")
                announced = True
            time.sleep(POLL_SECONDS)
            pending = [cell for cell, _ in held.values()]
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
            queue.put(None)
            listener.join()
        bar.close()
    return records


def _listen(queue, bar: _Progress) -> None:
    """Move the parent's progress bar by the steps the workers report, until ``None`` arrives."""
    for message in iter(queue.get, None):
        bar.advance(*message)
