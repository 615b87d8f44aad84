"""Training with PyTorch Lightning: data-parallel, on any accelerator, with Lightning's loggers.

An optional extra (``pip install -e .[lightning]``); the core and the built-in trainer work
without it. :class:`LightningModelGuideELBO` trains any :class:`~pyro_mm.training.ModelGuideELBO` — a
registered method, or ``ModelGuideELBO(model, guide, elbo)`` for your own Pyro model, guide and pyro_mm
ELBO — with the **same step function** as the built-in trainer: the module's ``forward``
(the loss whose gradient is the ELBO's estimator), the same fused Adam, the same
initialisation from the data (MEME's pseudo-samples). This is how Pyro itself trains at scale
(its ``svi_lightning`` example) and how the largest Pyro-based libraries train their modules.

Data parallelism (``strategy="ddp"``): every process draws its own random numbers (particles,
sampled subsets: seeded by the run's seed and the process's rank) on its shard of every batch, and
returns its loss times the number of processes, so that DDP's average of the gradients is the
gradient of the loss summed over every process's samples — the gradient one process would get on
all of them together. Parameters, MEME's pseudo-samples and learned scales included, start equal
in every process (initialised before the processes part, and broadcast by DDP).

The data order is the built-in trainer's: epoch after epoch a permutation drawn from a generator
seeded with the run's seed; with ``N`` processes each step takes the next ``N`` batches of it, one
per process (the last ones padded with the epoch's first samples so that every process gets as
many). A position in the run is therefore the built-in trainer's (epoch, batches of the order
consumed), whatever the number of processes.

Checkpoints (:class:`PyroMMCheckpoint`): pyro_mm's own training checkpoint
(:mod:`pyro_mm.checkpoint`), written by rank 0 every ``checkpoint_every`` steps and at the end,
with the position, Adam's state and every process's random state. ``resume`` continues it — with
Lightning on any number of processes (exactly, on as many as wrote it) or with the built-in trainer
(``pyro-mm train ... --resume`` without ``--devices``) — and the built-in trainer's checkpoints
continue here alike.

Stopping: SIGTERM (a scheduler's preemption) and Ctrl-C reach every process or one of them; the
processes agree at the end of the step under way (the flag travels with the step's loss), write the
checkpoint and stop together; :func:`fit_lightning` then raises
:class:`~pyro_mm.training.Terminated` or ``KeyboardInterrupt``, carrying the checkpoint's path and
step, as the built-in trainer does. When a process dies (killed, out of memory), the others end
within seconds with :class:`WorkerDied` naming its rank; the last checkpoint stays as it was.

Mixed precision is refused: the bounds' log-sum-exps over particles and strata, and the
likelihoods summed over thousands of pixels, lose the precision the estimators need in bf16 or
fp16.

:func:`fit_lightning` runs a ``lightning.Trainer`` on a pyro_mm data set and leaves the process of
rank 0 with the trained object (save it with its ``save``; the run's step losses are in its
``step_losses``).
"""

from __future__ import annotations

import math
import os
import signal
import socket
import sys
import threading
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union

import torch

try:
    import lightning as L
except ImportError as error:  # pragma: no cover - the extra is installed in the tests
    raise ImportError("pyro_mm.lightning needs PyTorch Lightning: pip install -e '.[lightning]' "
                      "(or pip install lightning)") from error

from torch.utils.data import DataLoader, Dataset, IterableDataset

from .batch import MultimodalBatch, collate_multimodal
from .checkpoint import (
    TRAINING_FORMAT,
    VERSIONS,
    DirectoryLock,
    atomic_save,
    capture_rng,
    process_alive,
    read_payload,
    remove_stale_temporaries,
    restore_rng,
)
from .monitor import log_cross_generation, log_step
from .options import BATCH_SIZE, CHECKPOINT_EVERY, LR, SEED
from .training import (
    ModelGuideELBO,
    Trainer,
    _masks,
    adam,
    check_settings,
    interruption,
    load_state,
    warn_if_short_of_space,
)

__all__ = ["LightningModelGuideELBO", "PyroMMCheckpoint", "WorkerDied", "fit_lightning", "data_loader",
           "launched_as_rank_zero", "SUPPORTED_PRECISION"]

#: the precision settings the bounds support
SUPPORTED_PRECISION = ("32", "32-true", "64", "64-true")
#: seconds a process whose peer died waits for its own error before it ends itself (a collective
#: that hangs instead of failing, e.g. NCCL's)
HANG_SECONDS = 20.0


def _distributed() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def _world_size() -> int:
    return torch.distributed.get_world_size() if _distributed() else 1


def _rank() -> int:
    return torch.distributed.get_rank() if _distributed() else 0


def launched_as_rank_zero() -> bool:
    """Whether this process is (or will be) the data-parallel run's rank 0, from the variables that
    launchers set (before Lightning starts the processes, rank 0 has none)."""
    for name in ("RANK", "SLURM_PROCID"):
        if os.environ.get(name, "").isdigit():
            return int(os.environ[name]) == 0
    return int(os.environ.get("LOCAL_RANK", "0") or 0) == 0 and int(os.environ.get("NODE_RANK", "0") or 0) == 0


class WorkerDied(RuntimeError):
    """A process of a data-parallel run died; the message names its rank and the last checkpoint."""


class _StopRequested(Exception):
    """Raised on every process at the step where they agreed to stop for a signal."""

    def __init__(self, signum: int):
        super().__init__(f"stopped by signal {signum}")
        self.signum = signum


# --- data ---------------------------------------------------------------------------------------------
class _Rows(Dataset):
    """The samples of a :class:`MultimodalBatch` as a data set of items."""

    def __init__(self, batch: MultimodalBatch):
        self.batch = batch

    def __len__(self):
        return len(self.batch)

    def __getitem__(self, i):
        item = {"data": {n: self.batch[n][i] for n in self.batch.names}, "mask": self.batch.mask[i]}
        if self.batch.labels is not None:
            item["label"] = int(self.batch.labels[i])
        return item


def data_loader(data, batch_size: int, seed: int = 0, **kwargs) -> DataLoader:
    """A shuffled ``DataLoader`` of :class:`MultimodalBatch` es over a pyro_mm data set or a batch
    (under DDP, Lightning shards it across the processes)."""
    dataset = _Rows(data) if isinstance(data, MultimodalBatch) else data
    return DataLoader(dataset, batch_size=batch_size, shuffle=True, collate_fn=collate_multimodal,
                      generator=torch.Generator().manual_seed(seed), **kwargs)


class _Stream(IterableDataset):
    """The batches of one process, an epoch per iteration (see the module): the epoch's order drawn
    from ``generator``, the first ``skip`` batches of it left out (a resumed epoch), the rest
    dealt to the processes batch by batch."""

    def __init__(self, data, batch_size: int, generator: torch.Generator, skip: int = 0):
        self.data, self.batch_size, self.generator, self.skip = data, batch_size, generator, skip
        self.batches_this_epoch = 0

    def __iter__(self):
        world, rank = _world_size(), _rank()
        order = torch.randperm(len(self.data), generator=self.generator)
        rest = order[self.skip * self.batch_size:]
        self.skip = 0
        pad = (-len(rest)) % world
        if pad:
            rest = torch.cat([rest, rest.repeat(math.ceil(pad / len(rest)))[:pad]])
        mine = rest[rank::world]
        self.batches_this_epoch = math.ceil(len(mine) / self.batch_size)
        take = self.data.select if isinstance(self.data, MultimodalBatch) else self.data.batch
        return (take(mine[i:i + self.batch_size]) for i in range(0, len(mine), self.batch_size))


def _as_is(batch):
    return batch


# --- the module ---------------------------------------------------------------------------------------
class LightningModelGuideELBO(L.LightningModule):
    """A pyro_mm :class:`~pyro_mm.training.ModelGuideELBO` as a ``LightningModule``.

    :param vae: a registered method or ``ModelGuideELBO(model, guide, elbo)``.
    :param float lr: Adam's learning rate.
    :param int seed: seed of every process's sampling (process r uses ``seed + 1 + r``).
    :param int log_every: steps between logged losses and terms.
    :param images: a batch whose cross-generations are logged every ``images_every`` steps.
    :param hparams: the run's settings, logged as its hyper-parameters (``hparams.yaml``).
    """

    def __init__(self, vae: ModelGuideELBO, lr: float = LR.default, seed: int = SEED.default, log_every: int = 1,
                 images: Optional[MultimodalBatch] = None, images_every: int = 0, hparams: Optional[dict] = None):
        super().__init__()
        if not isinstance(vae, ModelGuideELBO):
            raise TypeError(f"LightningModelGuideELBO trains a pyro_mm ModelGuideELBO, got {type(vae).__name__}")
        self.vae = vae
        self.lr, self.seed, self.log_every, self.images, self.images_every = lr, seed, log_every, images, images_every
        if hparams:
            self.save_hyperparameters(dict(hparams))
        self._last = None
        self.stream: Optional[_Stream] = None
        self.position = {"epoch": 1, "skip": 0, "total": 0.0, "count": 0}
        self.epoch_generator = None  # the data-order generator's state at the start of position's epoch
        self.stop_signal = 0  # a signal this process received (0: none)
        self.stop_agreed = 0  # the signal the processes agreed to stop for (0: none)
        self._resumed: Optional[dict] = None
        self._epoch_steps = 0

    def follow(self, stream: _Stream, state: Optional[dict] = None) -> None:
        """Train on ``stream`` from the start, or from a checkpoint's ``state`` (its position, Adam's
        state and the processes' random states)."""
        self.stream, self._resumed = stream, state
        self.epoch_generator = stream.generator.get_state()
        if state is not None:
            self.position = dict(state["position"])

    def on_fit_start(self) -> None:
        precision = str(self.trainer.precision)
        if precision not in SUPPORTED_PRECISION:
            raise ValueError(f"precision {precision!r} is not supported: the bounds' log-sum-exps and summed "
                             f"likelihoods need float32 or float64 ({', '.join(SUPPORTED_PRECISION)})")
        rank, world = self.global_rank, self.trainer.world_size
        states = (self._resumed or {}).get("lightning", {}).get("rng")
        if states is not None and len(states) == world:
            restore_rng(states[rank])  # exactly where every process was
        elif self._resumed is not None and world == 1:
            restore_rng(self._resumed["rng"])
        elif self._resumed is not None:  # another number of processes: fresh draws, not those of the first run's
            torch.manual_seed((self.seed + 1 + rank + 1_000_003 * len(self.vae.step_losses)) % 2 ** 63)
        else:
            torch.manual_seed(self.seed + 1 + rank)  # every process draws its own particles

    def transfer_batch_to_device(self, batch, device, dataloader_idx):
        return batch.to(device)

    def training_step(self, batch, batch_idx):
        loss = self.vae(self.vae.to_model(batch))  # the built-in trainer's step function
        self._last = (loss.detach(), len(batch))
        return loss * _world_size()  # DDP averages: the gradient of the sum over every process's samples

    def record_step(self) -> None:
        """After a step (once): gather every process's loss, sample count and stop request; record
        the loss per sample, the position in the data order and the epoch's mean loss, log."""
        if self._last is None:
            return
        loss, count = self._last
        self._last = None
        gathered = self.all_gather(torch.stack([loss, loss.new_tensor(float(count)),
                                                loss.new_tensor(float(self.stop_signal))]))
        gathered = gathered.reshape(-1, 3)
        total, samples = gathered[:, 0].sum(), gathered[:, 1].sum()
        self.stop_agreed = int(gathered[:, 2].max().item())  # SIGTERM (15) wins over SIGINT (2)
        per_sample = (total / samples).item()
        if not math.isfinite(per_sample):
            raise FloatingPointError(f"the loss is {per_sample} at step {len(self.vae.step_losses) + 1}; lower "
                                     "the learning rate or check the data")
        self.vae.step_losses.append(per_sample)
        step = len(self.vae.step_losses)
        if self.stream is not None:
            self.position = {**self.position, "skip": self.position["skip"] + gathered.shape[0],
                             "total": self.position["total"] + total.item(),
                             "count": self.position["count"] + int(samples.item())}
            self._epoch_steps += 1
            if self._epoch_steps >= self.stream.batches_this_epoch:  # the epoch's data ran out
                self.vae.history.append(self.position["total"] / max(self.position["count"], 1))
                self.position = {"epoch": self.position["epoch"] + 1, "skip": 0, "total": 0.0, "count": 0}
                self.epoch_generator = self.stream.generator.get_state()
                self._epoch_steps = 0
        if self.trainer.is_global_zero and self.loggers and step % self.log_every == 0:
            epoch = self.position["epoch"] - (self.position["skip"] == 0)  # the epoch of this step
            log_step(self.loggers, self.vae, per_sample, step, epoch)
        if self.trainer.is_global_zero and self.loggers and self.images_every and step % self.images_every == 0 \
                and self.images is not None:
            log_cross_generation(self.loggers, self.vae, self.images, step)

    def on_train_batch_end(self, outputs, batch, batch_idx) -> None:
        self.record_step()

    def on_train_epoch_start(self) -> None:
        self._epoch_start = len(self.vae.step_losses)

    def on_train_epoch_end(self) -> None:
        if self.stream is None:  # trained on a loader of the caller's: the mean of the epoch's steps
            done = self.vae.step_losses[self._epoch_start:]
            if done:
                self.vae.history.append(sum(done) / len(done))

    def configure_optimizers(self):
        optim = adam(self.vae.parameters(), self.lr)
        if self._resumed is not None:
            optim.load_state_dict(self._resumed["optimizer"])
        return optim


# --- checkpoints, signals and dead processes -----------------------------------------------------------
class PyroMMCheckpoint(L.Callback):
    """Writes pyro_mm training checkpoints (:mod:`pyro_mm.checkpoint`) of a
    :class:`LightningModelGuideELBO` trained on :func:`fit_lightning`'s data stream: every ``every``
    steps, at the end, and when SIGTERM or Ctrl-C stops the run. On a signal (in any process) the
    processes finish the step under way together, the checkpoint is written, and every process
    raises the stop; a second Ctrl-C stops at once.

    :param path: the checkpoint's path (``None``: none written; signals still stop the run cleanly).
    :param int every: steps between checkpoints (0: only at the end and on a signal).
    :param dict settings: what a resumed run must repeat (:meth:`pyro_mm.training.Trainer.settings`).
    """

    def __init__(self, path=None, every: int = 0, settings: Optional[dict] = None):
        self.path = Path(path) if path is not None else None
        self.every, self.settings = every, dict(settings or {})
        self.saved_step: Optional[int] = None  # the steps the checkpoint on disk holds (of this run)
        self._unconfirmed: Optional[int] = None
        self._last_save: Optional[int] = None
        self.peers: Optional[_Peers] = None
        self._previous: Dict[int, object] = {}
        self._module: Optional[LightningModelGuideELBO] = None
        self.interruption: Optional[KeyboardInterrupt] = None  # what stopped the run, if a signal did

    # signals
    def on_train_start(self, trainer, pl_module) -> None:
        self._module = pl_module
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):  # in place of Lightning's SIGTERM handling
                self._previous[signum] = signal.getsignal(signum)
                signal.signal(signum, self._handle)

    def _handle(self, signum, frame) -> None:
        module = self._module
        if module is None or module.stop_signal:  # a second one: at once
            raise interruption(signum)
        module.stop_signal = signum

    def _restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
        self._previous = {}

    def on_train_end(self, trainer, pl_module) -> None:
        self._restore()
        if self.path is not None and self._last_save != len(pl_module.vae.step_losses):
            self.save(trainer, pl_module)
        if self.peers is not None:  # the training is over: a peer that exits from now on has finished
            self.peers.stopping = True

    def on_exception(self, trainer, pl_module, exception) -> None:
        self._restore()
        if isinstance(exception, KeyboardInterrupt):  # Lightning answers it with sys.exit(1)
            self.interruption = exception

    def teardown(self, trainer, pl_module, stage) -> None:
        self._restore()

    # the steps
    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        pl_module.record_step()
        if self._unconfirmed is not None:
            self.saved_step, self._unconfirmed = self._unconfirmed, None
        steps = len(pl_module.vae.step_losses)
        stop = pl_module.stop_agreed
        if self.path is not None and (stop or (self.every and steps % self.every == 0)):
            self.save(trainer, pl_module)
        if stop:
            if self.peers is not None:
                self.peers.stopping = True  # the others end now too: not a death
            raise _StopRequested(stop)

    def save(self, trainer, module: LightningModelGuideELBO) -> None:
        """Write the checkpoint (a collective: every process calls it; rank 0 writes)."""
        states = [capture_rng()]
        if trainer.world_size > 1:
            states = [None] * trainer.world_size
            torch.distributed.all_gather_object(states, capture_rng())
        steps = self._last_save = len(module.vae.step_losses)  # the same in every process
        if not trainer.is_global_zero:  # rank 0 has written it once it joins the next step's gathering
            self._unconfirmed = steps
            return
        atomic_save({"format": TRAINING_FORMAT, "version": VERSIONS[TRAINING_FORMAT],
                     "description": module.vae.description(), "state_dict": module.vae.state_dict(),
                     "optimizer": trainer.optimizers[0].state_dict(), "rng": states[0],
                     "epoch_generator": module.epoch_generator, "position": dict(module.position),
                     "settings": self.settings, "lightning": {"world_size": trainer.world_size, "rng": states}},
                    self.path)
        self.saved_step = steps

    # dead processes
    def setup(self, trainer, pl_module, stage) -> None:
        if trainer.world_size > 1 and self.peers is not None:
            self.peers.start(trainer.global_rank, trainer.world_size)


def _how(code: Optional[int]) -> str:
    if code is None:
        return "died"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"was killed by {name}"
    return f"exited with status {code}"


class _Peers:
    """The processes of a data-parallel run, as one of them sees them: their process ids (gathered
    at the start), the ones that died, and a watcher thread that ends this process when a peer died
    and this one is stuck in a collective for :data:`HANG_SECONDS`."""

    def __init__(self, describe_checkpoint):
        self.rank, self.table = 0, []
        self.children: List = []  # the processes Lightning started from this one (rank 1, 2, ... of its machine)
        self.stopping = False  # the processes agreed to stop: an exit is not a death
        self.finished = threading.Event()
        self.describe_checkpoint = describe_checkpoint
        self._thread: Optional[threading.Thread] = None

    def start(self, rank: int, world: int) -> None:
        self.rank = rank
        self.table = [None] * world
        torch.distributed.all_gather_object(self.table, (socket.gethostname(), os.getpid()))
        self._thread = threading.Thread(target=self._watch, name="pyro_mm-peer-watcher", daemon=True)
        self._thread.start()

    def dead(self) -> Optional[tuple]:
        """``(rank, pid, how)`` of a peer of this machine that died, or ``None``."""
        host = socket.gethostname()
        for rank, entry in enumerate(self.table):
            if rank == self.rank or entry is None or entry[0] != host:
                continue
            pid = entry[1]
            child = next((p for p in self.children if p.pid == pid), None)
            if child is not None:
                code = child.poll()
                if code is not None and code != 0 and not self.stopping:
                    return rank, pid, _how(code)
            elif not self.stopping and not process_alive(pid):
                return rank, pid, _how(None)
        return None

    def wait_for_dead(self, seconds: float) -> Optional[tuple]:
        deadline = time.monotonic() + seconds
        while True:
            found = self.dead()
            if found is not None or time.monotonic() > deadline:
                return found
            time.sleep(0.2)

    def message(self, dead: tuple) -> str:
        rank, pid, how = dead
        return (f"data-parallel rank {rank} (pid {pid}) {how}; the other processes stopped (this is rank "
                f"{self.rank}); {self.describe_checkpoint()}")

    def _watch(self) -> None:
        while not self.finished.wait(1.0):
            found = None if self.stopping else self.dead()
            if found is None:
                continue
            if self.finished.wait(HANG_SECONDS):  # the main thread ended by itself, naming it
                return
            print(f"pyro-mm: error: {self.message(found)}", file=sys.stderr, flush=True)
            self.kill_children()
            os._exit(1)

    def kill_children(self) -> None:
        for child in self.children:
            if child.poll() is None:
                child.kill()

    def stop(self) -> None:
        self.finished.set()

    def __getstate__(self):  # a spawned process (ddp_spawn) gets its own, unstarted
        state = {**self.__dict__, "children": [], "_thread": None}
        del state["finished"]
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self.finished = threading.Event()


@contextmanager
def _lightning_observer_replaced(peers: _Peers):
    """While Lightning's launcher starts processes from this one: record them in ``peers`` instead
    of starting Lightning's observer, which kills every process — this one included, before it can
    say anything — as soon as one of them exits with an error (our watcher names it instead)."""
    try:
        from lightning.pytorch.strategies.launchers import subprocess_script
    except ImportError:  # pragma: no cover - another Lightning layout: keep its observer
        yield
        return
    original = getattr(subprocess_script, "_launch_process_observer", None)
    if original is None:  # pragma: no cover
        yield
        return
    subprocess_script._launch_process_observer = peers.children.extend
    try:
        yield
    finally:
        subprocess_script._launch_process_observer = original


def _distributed_failure(error: BaseException) -> bool:
    text = f"{type(error).__name__} {error}".lower()
    return isinstance(error, getattr(torch.distributed, "DistError", ())) or any(
        word in text for word in ("gloo", "nccl", "connection", "broken pipe", "peer", "timed out", "timeout"))


# --- fitting ------------------------------------------------------------------------------------------
def fit_lightning(vae: ModelGuideELBO, data, batch_size: int = BATCH_SIZE.default, lr: float = LR.default,
                  seed: int = SEED.default, epochs: Optional[int] = None, steps: Optional[int] = None,
                  accelerator: str = "auto", devices="auto", strategy: str = "auto", num_nodes: int = 1,
                  precision: str = "32-true", loggers: Sequence = (), log_every: int = 1,
                  images: Optional[MultimodalBatch] = None, images_every: int = 0, progress: bool = True,
                  default_root_dir=None, callbacks: Sequence = (), checkpoint=None,
                  checkpoint_every: int = CHECKPOINT_EVERY.default, resume: Union[bool, str, Path] = False,
                  config: Optional[dict] = None, hparams: Optional[dict] = None) -> "L.Trainer":
    """Train ``vae`` on ``data`` (a pyro_mm data set or a :class:`MultimodalBatch`) with a
    ``lightning.Trainer``; returns the trainer.

    ``batch_size`` is per process. ``epochs`` and ``steps`` as in the built-in trainer (whichever
    ends first; ``epochs`` defaults to 1 when neither is given; with ``resume``, in all).
    ``callbacks`` are Lightning callbacks, passed to the trainer.

    :param checkpoint: path of a pyro_mm training checkpoint, written by rank 0 every
        ``checkpoint_every`` steps (0: only at the end), at the end, and on SIGTERM or Ctrl-C (then
        :class:`~pyro_mm.training.Terminated` or ``KeyboardInterrupt`` is raised, with its
        ``checkpoint`` and ``step``). Its directory is locked against other pyro_mm processes.
    :param resume: ``True`` continues from ``checkpoint``, a path from that file — a checkpoint of
        this function or of the built-in trainer; the settings must be the same (the number of
        processes may differ).
    :param config: further settings stored in the checkpoint that a resumed run must repeat.
    :param hparams: the run's settings, logged to ``loggers`` as its hyper-parameters.
    :raises WorkerDied: a process of a data-parallel run died (the message names its rank).
    """
    if str(precision) not in SUPPORTED_PRECISION:
        raise ValueError(f"precision {precision!r} is not supported: the bounds' log-sum-exps and summed likelihoods "
                         f"need float32 or float64 ({', '.join(SUPPORTED_PRECISION)})")
    data = vae.training_data(data)
    if _masks(data) is None:
        raise TypeError(f"fit_lightning trains on a pyro_mm data set or a MultimodalBatch, got {type(data).__name__}")
    if len(data) == 0:
        raise ValueError("the training data hold no sample (an empty data set or batch)")
    plan = Trainer(epochs=epochs if epochs is not None or steps is not None else 1, steps=steps, batch_size=batch_size,
                   lr=lr, seed=seed, progress=False, checkpoint=checkpoint, checkpoint_every=checkpoint_every)
    settings = plan.settings(data, config)
    source = plan.checkpoint if resume is True else (Path(resume) if resume else None)
    if resume is True and plan.checkpoint is None:
        raise ValueError("resume=True needs a checkpoint path")
    path = plan.checkpoint if plan.checkpoint is not None else source
    rank_zero = launched_as_rank_zero()
    with DirectoryLock(path.parent) if path is not None and rank_zero else nullcontext():
        state = None
        if path is not None and rank_zero:
            remove_stale_temporaries(path)
        if source is not None:
            state = read_payload(source, TRAINING_FORMAT)
            check_settings(source, state, settings)
            vae.check_compatible(state["description"], source)
            load_state(vae, state["state_dict"], source)
        if path is not None and rank_zero:
            warn_if_short_of_space(vae, path)
        vae.data_sha256 = settings["data_sha256"]
        vae.initialise(data)  # before the processes part: every process starts from the same state
        generator = torch.Generator().manual_seed(seed)
        position = {"epoch": 1, "skip": 0}
        if state is not None:
            generator.set_state(state["epoch_generator"])
            position = state["position"]
        done = len(vae.step_losses)
        steps_left = None if plan.steps is None else plan.steps - done
        epochs_left = None if plan.epochs is None else plan.epochs - (position["epoch"] - 1)
        module = LightningModelGuideELBO(vae, lr=lr, seed=seed, log_every=log_every, images=images,
                                    images_every=images_every, hparams=hparams)
        stream = _Stream(data, batch_size, generator, position["skip"])
        module.follow(stream, state)
        saver = PyroMMCheckpoint(path, checkpoint_every, settings)
        describe_checkpoint = _LastCheckpoint(path, saver, resumed=state is not None)
        peers = _Peers(describe_checkpoint)
        saver.peers = peers
        try:
            trainer = L.Trainer(accelerator=accelerator, devices=devices, strategy=strategy, num_nodes=num_nodes,
                                precision=precision, max_epochs=-1 if epochs_left is None else max(epochs_left, 0),
                                max_steps=-1 if steps_left is None else max(steps_left, 0),
                                logger=list(loggers) or False, enable_checkpointing=False,
                                enable_progress_bar=progress, enable_model_summary=False,
                                default_root_dir=default_root_dir, deterministic=False, log_every_n_steps=log_every,
                                callbacks=[saver, *callbacks])
        except Exception as error:  # Lightning's MisconfigurationException (devices, accelerator ...)
            if type(error).__name__ != "MisconfigurationException":
                raise
            raise ValueError(str(error).strip()) from None
        if (steps_left is not None and steps_left <= 0) or (epochs_left is not None and epochs_left <= 0):
            return trainer  # the checkpointed run is complete: nothing to train
        # a generator of its own: a DataLoader draws a seed for its workers from it at every epoch's start
        loader = DataLoader(stream, batch_size=None, collate_fn=_as_is, generator=torch.Generator().manual_seed(seed))
        try:
            with _lightning_observer_replaced(peers):
                trainer.fit(module, loader)
        except _StopRequested as stop:
            raise _saved(interruption(stop.signum), path, saver) from None
        except SystemExit:  # Lightning's way out of a KeyboardInterrupt (a second Ctrl-C, a signal during set-up)
            if saver.interruption is None:
                raise
            raise _saved(saver.interruption, path, saver) from None
        except KeyboardInterrupt as stop:
            raise _saved(stop, path, saver)
        except Exception as error:
            if not peers.table or not _distributed_failure(error):
                peers.kill_children()  # (rank 0) the others would only wait for it, then report it gone
                raise
            dead = peers.wait_for_dead(3.0)
            peers.kill_children()
            if dead is not None:
                raise WorkerDied(peers.message(dead)) from None
            else:
                first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
                raise WorkerDied(f"the data-parallel process group failed on rank {peers.rank} ({first}); "
                                 f"{describe_checkpoint()}") from None
        finally:
            peers.stop()
    return trainer


class _LastCheckpoint:
    """What the checkpoint on disk holds, for a message about a failed run."""

    def __init__(self, path: Optional[Path], saver: PyroMMCheckpoint, resumed: bool):
        self.path, self.saver, self.resumed = path, saver, resumed

    def __call__(self) -> str:
        if self.path is None:
            return "no checkpoint is written in this run"
        step = self.saver.saved_step if self.saver.saved_step is not None else self._step_on_disk()
        if step is None and self.resumed:
            return (f"{self.path} still holds the checkpoint this run resumed from: continue with the same command "
                    "and --resume")
        if step is None:
            return "no checkpoint was written before it"
        return f"{self.path} holds the last checkpoint (step {step}): continue with the same command and --resume"

    def _step_on_disk(self) -> Optional[int]:
        """The steps the checkpoint file holds (``None``: none, or unreadable), for a process that
        did not write it itself — rank 0 writes, and may have died having written one."""
        try:
            payload = read_payload(self.path, TRAINING_FORMAT)
            return len(payload["state_dict"]["_extra_state"]["step_losses"])
        except (OSError, ValueError, KeyError):
            return None


def _saved(stop: KeyboardInterrupt, path: Optional[Path], saver: PyroMMCheckpoint) -> KeyboardInterrupt:
    """``stop`` with the checkpoint it saved (as the built-in trainer attaches it)."""
    if path is not None and saver.saved_step is not None:
        stop.checkpoint, stop.step = path, saver.saved_step
    return stop
