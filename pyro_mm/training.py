"""pyro_mm's one training loop.

:class:`ModelGuideELBO` binds a Pyro model, a guide and a pyro_mm ELBO into one ``torch.nn.Module``
whose ``forward(batch)`` is the training step's loss — the same step function the built-in
:class:`Trainer` and the Lightning adapter (:mod:`pyro_mm.lightning`) call. Every piece of training
state lives in the module's own state (``state_dict``): the networks, the ELBO's state
(``elbo.state_dict()``, e.g. MVAE's annealing step), what a data-initialised module keeps
(``get_extra_state``, e.g. whether MEME's pseudo-samples were set from data) and the loss history.

:class:`Trainer` runs Adam over mini-batches of a pyro_mm data set, a
:class:`~pyro_mm.batch.MultimodalBatch` or any iterable of batches, for a number of epochs or of
steps, with a progress bar (steps, time left, running loss), callbacks after every step,
periodic checkpoints and an exact resume: a resumed run repeats the losses and parameters of one
that was never interrupted (:mod:`pyro_mm.checkpoint`). Its loop runs at a float32 matmul precision
of its own (:mod:`pyro_mm.precision`), recorded in the checkpoint with the data's content hash: a
resumed run must repeat both.

Stopping: while the loop runs in the main thread, Ctrl-C (SIGINT) and SIGTERM (how schedulers
preempt a job) let the step under way finish, write the checkpoint and raise — ``KeyboardInterrupt``
for the one, :class:`Terminated` (a ``KeyboardInterrupt`` too) for the other; ``pyro-mm`` exits
with status 130 or 143 (:func:`exit_status`). A second signal during the same step raises at once.
A handler the program installed itself is left in place.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import shutil
import signal
import threading
import time
import warnings
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Union

import torch
from torch import nn
from tqdm.auto import tqdm

from .batch import MultimodalBatch
from .checkpoint import (
    TRAINING_FORMAT,
    VERSIONS,
    DirectoryLock,
    atomic_save,
    capture_rng,
    read_payload,
    remove_stale_temporaries,
    restore_rng,
)
from .infer.initialisation import initialise
from .options import (BATCH_SIZE, CHECKPOINT_EVERY, EPOCHS, LR, LR_SCHEDULE, LR_SCHEDULES, SEED, STEPS, TIME_BUDGET,
                      WARMUP_STEPS)
from .precision import check_precision, float32_precision

__all__ = ["ModelGuideELBO", "Trainer", "StepRecord", "adam", "seconds_per_step", "LR_SCHEDULES", "Terminated",
           "exit_status", "raise_on_signal", "StopSignals", "DiskSpaceWarning", "checkpoint_size"]


class ModelGuideELBO(nn.Module):
    """A Pyro model, a guide and an objective (a pyro_mm ELBO, or any ``pyro.infer.ELBO`` with a
    ``differentiable_loss``) as one module.

    ``forward(batch)`` is the loss of a training step: the negative bound summed over the batch,
    whose gradient is the ELBO's estimator. :attr:`history` holds the mean loss per sample of
    every finished epoch and :attr:`step_losses` the loss per sample of every step; both, and the
    ELBO's state, are part of :meth:`state_dict`, and so is :attr:`data_sha256`, the content
    hash of the data set it was last trained on.
    """

    def __init__(self, model, guide, elbo):
        super().__init__()
        self.model, self.guide, self.elbo = model, guide, elbo
        self.history: List[float] = []  #: mean loss per sample of every epoch
        self.step_losses: List[float] = []  #: loss per sample of every training step
        #: hex SHA-256 of the content of the data its last training ran on (the
        #: ``content_hash`` of ``self.training_data(data)``; ``None``: not trained, or on data
        #: without one, such as a ``MultimodalBatch``)
        self.data_sha256: Optional[str] = None
        #: where the last ``fit`` of this object left off (Adam's state, the data order and
        #: position, the settings), for the next ``fit`` to continue; not part of the state_dict
        self._continuation: Optional[Dict] = None

    def forward(self, batch) -> torch.Tensor:
        return self.elbo.differentiable_loss(self.model, self.guide, batch)

    def get_extra_state(self) -> Dict:
        state = {"history": list(self.history), "step_losses": list(self.step_losses),
                 "data_sha256": self.data_sha256}
        if hasattr(self.elbo, "state_dict"):
            state["elbo"] = self.elbo.state_dict()
        return state

    def set_extra_state(self, state: Dict) -> None:
        self.history = list(state["history"])
        self.step_losses = list(state["step_losses"])
        self.data_sha256 = state.get("data_sha256")  # absent from files written before it existed
        if "elbo" in state:
            self.elbo.load_state_dict(state["elbo"])

    def training_data(self, data):
        """The data this vae trains on, given the caller's (default: the same)."""
        return data

    def to_model(self, batch: MultimodalBatch) -> MultimodalBatch:
        """``batch`` on the module's device, its floating-point data in the module's precision
        (integer and bool data stay as they are, for the guide's input check to name)."""
        device, dtype = _device(self), _dtype(self)
        if batch.device == device and all(not t.is_floating_point() or t.dtype == dtype for t in batch.data.values()):
            return batch
        return batch.to(device=device, dtype=dtype)

    def initialise(self, data) -> None:
        """Before the first step: every :class:`~pyro_mm.protocols.DataInitialised` module of the
        model and the guide sets itself from the training data, once (the first
        ``initialisation_size`` samples of a fixed shuffle) — the public call a plain
        ``pyro.infer.SVI`` user makes, :func:`pyro_mm.infer.initialise`."""
        initialise(self.model, self.guide, data)

    def description(self) -> Dict:
        """What must agree between this object and a checkpoint it resumes (default: the class)."""
        return {"class": type(self).__name__}

    def check_compatible(self, payload: Dict, path) -> None:
        """``ValueError`` naming the first difference between a file's description and this one's."""
        mine = self.description()
        for key, value in mine.items():
            if payload.get(key) != value:
                raise ValueError(f"{path} is incompatible with this {type(self).__name__}: its {key} is "
                                 f"{payload.get(key)!r}, this object's is {value!r}")


def _device(module: nn.Module) -> torch.device:
    for tensor in itertools.chain(module.parameters(), module.buffers()):
        return tensor.device
    return torch.device("cpu")


def _dtype(module: nn.Module) -> torch.dtype:
    for tensor in itertools.chain(module.parameters(), module.buffers()):
        if tensor.is_floating_point():
            return tensor.dtype
    return torch.get_default_dtype()


def adam(params, lr: float) -> torch.optim.Adam:
    """Adam with its update fused into one kernel where the parameters' device has one (CPU and
    CUDA), else the multi-tensor one."""
    params = list(params)
    try:
        return torch.optim.Adam(params, lr=lr, fused=True)
    except RuntimeError:  # a device or dtype without a fused kernel
        return torch.optim.Adam(params, lr=lr)


# --- data ---------------------------------------------------------------------------------------------
def _masks(data) -> Optional[torch.Tensor]:
    """The observation masks of a :class:`MultimodalBatch` or a pyro_mm data set (else ``None``)."""
    if isinstance(data, MultimodalBatch):
        return data.mask
    if hasattr(data, "batch") and hasattr(data, "masks"):
        return data.masks
    return None


def batches(data, batch_size: int, generator: torch.Generator, skip: int = 0) -> Iterable[MultimodalBatch]:
    """Shuffled mini-batches of a pyro_mm data set or a MultimodalBatch (the order drawn from
    ``generator``), or the batches of any iterable, without the first ``skip`` batches."""
    if _masks(data) is not None:
        order = torch.randperm(len(data), generator=generator)
        take = data.select if isinstance(data, MultimodalBatch) else data.batch
        return (take(order[i:i + batch_size]) for i in range(skip * batch_size, len(data), batch_size))
    return itertools.islice(iter(data), skip, None)


def batches_per_epoch(data, batch_size: int) -> Optional[int]:
    """Batches per epoch (``None`` for an iterable without a length)."""
    if _masks(data) is not None:
        return math.ceil(len(data) / batch_size)
    return len(data) if hasattr(data, "__len__") else None


def seconds_per_step(vae: ModelGuideELBO, data, batch_size: int, lr: float, warmup: int = 2, timed: int = 3,
                     matmul_precision: str = "highest") -> float:
    """Seconds one training step of ``vae`` takes on this machine: ``timed`` steps (after
    ``warmup``) of the trainer's step on the first batch of ``data``, at the float32 matmul
    precision ``matmul_precision`` (:mod:`pyro_mm.precision`). The steps change ``vae``:
    measure on a copy that is thrown away. The global random state is kept."""
    with torch.random.fork_rng(), float32_precision(matmul_precision):
        first = next(iter(batches(vae.training_data(data), batch_size, torch.Generator().manual_seed(0))))
        batch = vae.to_model(first)
        vae.initialise(batch)
        optim = adam(vae.parameters(), lr)
        for step in range(warmup + timed):
            if step == warmup:
                start = time.perf_counter()
            optim.zero_grad()
            vae(batch).backward()
            optim.step()
    return (time.perf_counter() - start) / timed


def _data_settings(data) -> dict:
    """What a resumed run checks about its data: the size, a hash of the observation masks and the
    content hash of a pyro_mm data set (``content_hash``: the samples' stores, rows and labels)."""
    masks = _masks(data)
    content = getattr(data, "content_hash", None)
    if masks is None:
        return {"data_size": None, "masks_sha1": None, "data_sha256": content}
    digest = hashlib.sha1(masks.detach().cpu().numpy().tobytes()).hexdigest()[:16]
    return {"data_size": len(data), "masks_sha1": digest, "data_sha256": content}


#: the settings of a checkpoint written before they were recorded: what such a run had
_SETTINGS_BEFORE_RECORDED = {"matmul_precision": "highest"}


def check_settings(path, state: dict, settings: dict) -> None:
    """``ValueError`` naming the first setting of ``settings`` that the checkpoint ``state`` (read
    from ``path``) was not written with."""
    saved = {**_SETTINGS_BEFORE_RECORDED, **state["settings"]}
    for key, value in settings.items():
        if key == "data_sha256":
            _check_content(path, saved.get(key), value, recorded=key in saved)
        elif saved.get(key) != value:
            raise ValueError(f"{path} was written with {key}={saved.get(key)!r}, this run has "
                             f"{key}={value!r}; resume with the same settings")


def _continuation_settings(settings: dict) -> dict:
    """What a second call of ``fit`` must share with the first to continue its data order: the
    data, the batch size and the seed."""
    return {key: settings.get(key) for key in ("batch_size", "seed", "data_size", "masks_sha1", "data_sha256")}


def _check_content(path, then: Optional[str], now: Optional[str], recorded: bool) -> None:
    """Refuse a resume on data whose content hash differs from the checkpoint's; a checkpoint
    written before the hash was recorded is accepted with a warning."""
    if not recorded:
        if now is not None:
            warnings.warn(f"{path} does not record its data's content hash (written by an older pyro_mm): resuming "
                          "without checking that the data set is the same", UserWarning, stacklevel=5)
        return
    if then != now:
        def short(digest):
            return f"{digest[:8]}…" if digest else "none"
        raise ValueError(f"{path}: the data set's content changed since the checkpoint was written (sha256 "
                         f"{short(now)} now, {short(then)} then): resume on the same data or start a new run")


# --- stopping: signals and disk space ----------------------------------------------------------------
class Terminated(KeyboardInterrupt):
    """SIGTERM — how schedulers (SLURM, Kubernetes, systemd) preempt a job — raised as an exception
    while pyro_mm handles the signal. A ``KeyboardInterrupt``, so that it takes Ctrl-C's path: the
    trainer writes its checkpoint and raises it again; ``pyro-mm`` exits with status 143.

    An interruption the trainer saved before raising carries ``checkpoint`` (the path) and
    ``step`` (the steps it holds)."""


def exit_status(interruption: BaseException) -> int:
    """The exit status of a process that ``interruption`` ends: 143 (128 + SIGTERM) for
    :class:`Terminated`, 130 (128 + SIGINT) for any other ``KeyboardInterrupt``."""
    return 128 + int(signal.SIGTERM if isinstance(interruption, Terminated) else signal.SIGINT)


def interruption(signum: int) -> KeyboardInterrupt:
    """The exception a signal becomes: :class:`Terminated` for SIGTERM, else ``KeyboardInterrupt``."""
    return Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


def raise_on_signal(signum, frame) -> None:
    """A signal handler raising :func:`interruption` (``pyro-mm`` installs it for SIGTERM)."""
    raise interruption(signum)


class StopSignals:
    """SIGINT and SIGTERM while a training loop runs (a context manager; main thread only): between
    :meth:`hold` and :meth:`release` (a step, a checkpoint being written) a signal waits until
    the section ends and is then raised (:func:`interruption`); elsewhere it is raised at once,
    and so is a second one that comes while the first waits. Only handlers that pyro_mm or Python
    set (the default ones, :func:`raise_on_signal`) are replaced, and they are put back on exit."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.pending: Optional[int] = None
        self._depth = 0
        self._previous: Dict[int, object] = {}

    def __enter__(self) -> "StopSignals":
        if threading.current_thread() is threading.main_thread():
            for signum in self.SIGNALS:
                current = signal.getsignal(signum)
                if current in (signal.SIG_DFL, signal.default_int_handler, raise_on_signal):
                    self._previous[signum] = current
                    signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}

    def _handle(self, signum, frame) -> None:
        if self._depth and self.pending is None:
            self.pending = signum
            return
        raise interruption(signum)

    def hold(self) -> None:
        """Start a section in which signals wait (sections nest)."""
        self._depth += 1

    def release(self) -> None:
        """End a section; raise the signal that came during it, if any."""
        self._depth = max(self._depth - 1, 0)
        if not self._depth and self.pending is not None:
            signum, self.pending = self.pending, None
            raise interruption(signum)


class DiskSpaceWarning(UserWarning):
    """Less free space where checkpoints go than two of them need."""


def checkpoint_size(vae: nn.Module, steps: int = 0) -> int:
    """An estimate, in bytes, of a training checkpoint of ``vae``: its tensors, Adam's two
    moments of every parameter, and the loss history."""
    tensors = sum(t.numel() * t.element_size() for t in vae.state_dict().values() if torch.is_tensor(t))
    moments = 2 * sum(p.numel() * p.element_size() for p in vae.parameters())
    return tensors + moments + 24 * steps + 64 * 1024


def warn_if_short_of_space(vae: nn.Module, path: Path, stacklevel: int = 3) -> None:
    """Warn (:class:`DiskSpaceWarning`) when the disk of ``path`` has less free space than two
    checkpoints: a checkpoint is written beside the previous one before it replaces it."""
    size = checkpoint_size(vae, len(getattr(vae, "step_losses", ())))
    try:
        free = shutil.disk_usage(path.parent if path.parent.exists() else Path.cwd()).free
    except OSError:
        return
    if free < 2 * size:
        warnings.warn(f"{path.parent} has {_megabytes(free)} free, less than two checkpoints need (about "
                      f"{_megabytes(size)} each; a new one is written beside the last before replacing it): free "
                      "some space or choose another directory", DiskSpaceWarning, stacklevel=stacklevel)


def _megabytes(count: int) -> str:
    return f"{count / 1e6:.2f} MB" if count < 1e9 else f"{count / 1e9:.2f} GB"


# --- the loop -----------------------------------------------------------------------------------------
class StepRecord:
    """What a callback learns after every training step.

    :ivar int step: steps taken so far in all (1 after the first).
    :ivar int epoch: the epoch of this step (from 1).
    :ivar int batch: the batch of this step within its epoch (from 1).
    :ivar float seconds: training time since this call of ``fit`` began.
    :ivar int batch_size: samples in the step's batch.
    :ivar vae: the module being trained.
    """

    def __init__(self, step: int, epoch: int, batch: int, loss, seconds: float, batch_size: int, vae):
        self.step, self.epoch, self.batch, self.seconds = step, epoch, batch, seconds
        self.batch_size, self.vae = batch_size, vae
        self._loss = loss

    @property
    def loss(self) -> float:
        """The step's loss per sample (on a GPU, reading it waits for the step to finish)."""
        return float(self._loss)


def _checkpoint(vae: ModelGuideELBO, optimizer_state: dict, epoch_generator, position: dict, settings: dict) -> dict:
    """A training checkpoint's content: everything a resumed run needs to continue exactly."""
    return {"format": TRAINING_FORMAT, "version": VERSIONS[TRAINING_FORMAT], "description": vae.description(),
            "state_dict": vae.state_dict(), "optimizer": optimizer_state, "rng": capture_rng(),
            "epoch_generator": epoch_generator, "position": position, "settings": settings}


def _not_finite(value, step: int, position: dict, batch_index: int) -> str:
    return (f"the loss is {value} at step {step} (epoch {position['epoch']}, batch {batch_index + 1}); this step "
            "updated no parameter and wrote no checkpoint; lower the learning rate or check the data")


def _read_back(vae: ModelGuideELBO, position: dict) -> None:
    """Turn the losses a GPU run kept on the device into numbers, at once; a non-finite one is a
    ``FloatingPointError`` naming its step (whose update the fused optimiser skipped)."""
    pending = [i for i, v in enumerate(vae.step_losses) if torch.is_tensor(v)]
    if pending:
        values = torch.stack([vae.step_losses[i] for i in pending]).tolist()
        for i, v in zip(pending, values):
            vae.step_losses[i] = v
        bad = next((i for i, v in zip(pending, values) if not math.isfinite(v)), None)
        if bad is not None:
            raise FloatingPointError(f"the loss is {vae.step_losses[bad]} at step {bad + 1}; that step updated "
                                     "no parameter; lower the learning rate or check the data")
    if torch.is_tensor(position["total"]):
        position["total"] = float(position["total"])


class Trainer:
    """Adam over mini-batches, with progress, callbacks, checkpoints and exact resume.

    On a GPU with the fused Adam, a step reads nothing back from the device: its loss is kept
    there and read with the others every :attr:`READ_EVERY` steps (and at epoch ends and
    checkpoints); a non-finite loss makes the fused update skip itself (``found_inf``) and is
    reported at the next reading. On the CPU every loss is read at once, before the update.

    Calling :meth:`fit` again on the same object continues the training: ``steps`` and ``epochs``
    then count from where the last call stopped, and Adam's state, the data order (the position in
    the current epoch and the order of the next ones) and every piece of training state the object
    keeps (MVAE's annealing, the histories) carry on, so that ``fit(steps=4)`` twice equals
    ``fit(steps=8)`` once, bit for bit. That holds when the data (size, observation masks,
    content), ``batch_size`` and ``seed`` are those of the last call; otherwise the call starts a
    fresh Adam and data order on the trained networks. With ``resume`` the counts are those of the
    checkpointed run instead (``steps`` and ``epochs`` in all: the same command completes it).

    :param int epochs: passes over the data (with ``steps``: at most this many); epoch ends in this
        call (the first completes an epoch a previous call left unfinished).
    :param int steps: stop after this many steps of this call (with ``resume``: in all, counting
        those of the checkpointed run).
    :param int batch_size: samples per step (data sets and ``MultimodalBatch`` es).
    :param float lr: Adam's learning rate (its peak, with a schedule).
    :param str lr_schedule: ``"constant"`` (default) or ``"cosine"``: after ``warmup_steps`` of
        linear rise, the rate falls along a half cosine to zero at the last of ``steps`` steps
        (which it needs). The rate of a step is a function of the step's number, so a resumed run
        follows the same schedule exactly.
    :param int warmup_steps: steps of linear rise from ``lr / warmup_steps`` (cosine only).
    :param time_budget: stop after this many seconds of this call (checked after every step).
    :param int seed: seed of the data order (the caller seeds the weights and the sampling).
    :param bool progress: show a progress bar.
    :param callbacks: called with a :class:`StepRecord` after every step.
    :param checkpoint: path of a training checkpoint, written atomically every
        ``checkpoint_every`` steps (if > 0) and at the end. On Ctrl-C or SIGTERM the step under way
        finishes, the checkpoint is written once more and the ``KeyboardInterrupt`` (or
        :class:`Terminated`) is raised again; an interrupt raised inside a step by other means
        leaves the last checkpoint as it was. While training, the checkpoint's directory is
        locked against other pyro_mm processes; a warning (:class:`DiskSpaceWarning`) says when
        its disk has less free space than two checkpoints. A write that fails (a full disk) raises
        an ``OSError`` naming the file, the previous checkpoint left whole.
    :param int checkpoint_every: steps between checkpoints (0: only at the end).
    :param str matmul_precision: ``"highest"`` (default: float32 arithmetic), ``"high"`` or
        ``"medium"``: the precision of float32 matrix products and convolutions inside the training
        loop only (:mod:`pyro_mm.precision`; on CPUs with AMX-BF16 ``medium`` uses bfloat16 units,
        on CUDA ``high`` and ``medium`` use TF32). Recorded in the checkpoint: a resumed run must
        use the same one.
    """

    #: steps between read-backs of the losses on a GPU
    READ_EVERY = 50

    def __init__(self, epochs: Optional[int] = EPOCHS.default, steps: Optional[int] = STEPS.default,
                 batch_size: int = BATCH_SIZE.default, lr: float = LR.default,
                 time_budget: Optional[float] = TIME_BUDGET.default, seed: int = SEED.default, progress: bool = True,
                 callbacks: Sequence[Callable[[StepRecord], None]] = (), checkpoint=None,
                 checkpoint_every: int = CHECKPOINT_EVERY.default, lr_schedule: str = LR_SCHEDULE.default,
                 warmup_steps: int = WARMUP_STEPS.default, matmul_precision: str = "highest"):
        self.epochs = None if epochs is None and steps is not None else EPOCHS.validate(epochs)
        self.steps = STEPS.validate(steps)
        self.batch_size = BATCH_SIZE.validate(batch_size)
        self.lr = LR.validate(lr)
        self.time_budget = TIME_BUDGET.validate(time_budget)
        self.seed = SEED.validate(seed)
        self.checkpoint_every = CHECKPOINT_EVERY.validate(checkpoint_every)
        if checkpoint_every and checkpoint is None:
            raise ValueError("checkpoint_every needs a checkpoint path")
        self.lr_schedule = LR_SCHEDULE.validate(lr_schedule)
        if lr_schedule == "cosine" and steps is None:
            raise ValueError("lr_schedule='cosine' needs the number of steps (steps=...)")
        self.warmup_steps = WARMUP_STEPS.validate(warmup_steps)
        self.matmul_precision = check_precision(matmul_precision)
        self.progress = progress
        self.callbacks = list(callbacks)
        self.checkpoint = Path(checkpoint) if checkpoint is not None else None

    def settings(self, data, config: Optional[dict]) -> dict:
        """What a resumed run must repeat: the caller's ``config``, batch size, lr, seed, matmul
        precision and the data (size, masks, content)."""
        schedule = {} if self.lr_schedule == "constant" else {"lr_schedule": self.lr_schedule, "steps": self.steps,
                                                              "warmup_steps": self.warmup_steps}
        return {**(config or {}), "batch_size": self.batch_size, "lr": self.lr, "seed": self.seed, **schedule,
                "matmul_precision": self.matmul_precision, **_data_settings(data)}

    def rate(self, step: int) -> float:
        """The learning rate of step ``step`` (counted from 0)."""
        if self.lr_schedule == "constant":
            return self.lr
        if step < self.warmup_steps:
            return self.lr * (step + 1) / self.warmup_steps
        span = max(self.steps - self.warmup_steps, 1)
        return self.lr * 0.5 * (1.0 + math.cos(math.pi * min(step - self.warmup_steps, span) / span))

    def fit(self, vae: ModelGuideELBO, data, resume: Union[bool, str, Path] = False,
            config: Optional[dict] = None) -> List[float]:
        """Train ``vae`` on ``data``; returns the mean loss per sample of every epoch.

        A second call on the same object continues the first (see the class).

        :param resume: ``True`` continues from the trainer's checkpoint, a path continues from that
            file (and, without a checkpoint path, keeps writing to it). A file of another class,
            modalities, options or settings (the matmul precision included), or written on data
            of another content hash, is refused with an error naming the difference, and left as
            it is.
        :param config: further settings stored in the checkpoint that a resumed run must repeat
            (e.g. the data set's name and observation scheme, as ``pyro-mm train`` passes).
        """
        data = vae.training_data(data)
        if (_masks(data) is not None or hasattr(data, "__len__")) and len(data) == 0:
            raise ValueError("the training data hold no sample (an empty data set, batch or list of batches)")
        source = self.checkpoint if resume is True else (Path(resume) if resume else None)
        if resume is True and self.checkpoint is None:
            raise ValueError("resume=True needs a checkpoint path")
        checkpoint = self.checkpoint if self.checkpoint is not None else source
        if checkpoint is None:
            return self._run(vae, data, None, None, self.settings(data, config))
        with DirectoryLock(checkpoint.parent):
            remove_stale_temporaries(checkpoint)
            settings = self.settings(data, config)
            state = self._read(vae, source, settings) if source is not None else None
            warn_if_short_of_space(vae, checkpoint)
            return self._run(vae, data, checkpoint, state, settings)

    def _read(self, vae: ModelGuideELBO, path: Path, settings: dict) -> dict:
        """Load a checkpoint into ``vae`` and return it, after checking that it was written by
        an object and a run like these (else ``ValueError``, the object untouched)."""
        state = read_payload(path, TRAINING_FORMAT)
        check_settings(path, state, settings)
        vae.check_compatible(state["description"], path)
        load_state(vae, state["state_dict"], path)
        return state

    def _run(self, vae: ModelGuideELBO, data, checkpoint: Optional[Path], state: Optional[dict],
             settings: dict) -> List[float]:
        """Train from ``state`` (a checkpoint being resumed) or from where the vae stands,
        until the limits or the time budget; returns the mean loss of every epoch."""
        vae.data_sha256 = settings["data_sha256"]
        with float32_precision(self.matmul_precision), StopSignals() as stops:
            run = _Run(self, vae, data, checkpoint, state, settings, stops)
            try:
                while not run.finished() and not run.out_of_time:
                    run.epoch()
            except KeyboardInterrupt as error:
                run.interrupted(error)
                raise
            finally:
                run.bar.close()
            return run.finish()


class _Run:
    """One call of :meth:`Trainer.fit` under way: the vae and its Adam, the data order,
    where the next step starts, the limits, and the progress bar, time and divergence watch.

    :attr:`position` is where the next step starts: its ``epoch`` (from 1), the batches of that
    epoch already taken (``skip``) and their summed loss (``total``) and samples (``count``);
    the data order of that epoch is drawn from the generator state :attr:`epoch_start`. A step
    replaces the dict (a checkpoint or the continuation keeps the one it was given).
    """

    def __init__(self, trainer: Trainer, vae: ModelGuideELBO, data, checkpoint: Optional[Path],
                 state: Optional[dict], settings: dict, stops: StopSignals):
        self.trainer, self.vae, self.data = trainer, vae, data
        self.checkpoint, self.settings, self.stops = checkpoint, settings, stops
        vae.initialise(data)
        self.optim = adam(vae.parameters(), trainer.lr)
        self.generator = torch.Generator().manual_seed(trainer.seed)
        self.position = {"epoch": 1, "skip": 0, "total": 0.0, "count": 0}
        done_before = len(vae.step_losses)
        self._pick_up(state, done_before)
        #: the steps and epochs the limits count from: none when resuming (``steps`` and
        #: ``epochs`` in all), else those the vae has taken (this call's)
        self.base_steps = 0 if state is not None else done_before
        base_epochs = 0 if state is not None else self.position["epoch"] - 1
        self.step_limit = None if trainer.steps is None else self.base_steps + trainer.steps
        self.epoch_limit = None if trainer.epochs is None else base_epochs + trainer.epochs
        self.epoch_start = self.generator.get_state()
        self.per_epoch = batches_per_epoch(data, trainer.batch_size)
        #: whether the losses stay on the device until a read-back (the fused Adam on a GPU)
        self.deferred = bool(self.optim.defaults.get("fused")) and _device(vae).type == "cuda"
        total = self._total_steps(done_before)
        self.bar = tqdm(total=total, initial=min(done_before, total) if total else done_before, unit="step",
                        disable=not trainer.progress, dynamic_ncols=True, leave=False)
        self.start = time.time()
        self.out_of_time = False
        #: whether the run stands between two steps (what an interruption may save)
        self.between_steps = True
        self.last_saved: Optional[int] = None  #: the step of the last periodic checkpoint
        self.watch = _DivergenceWatch()
        vae.train()

    # --- starting ---------------------------------------------------------------------------------
    def _pick_up(self, state: Optional[dict], done_before: int) -> None:
        """Continue the checkpointed run ``state``, or the vae's last call of fit when it
        ended after ``done_before`` steps on the same data, batch size and seed; else start afresh."""
        previous = getattr(self.vae, "_continuation", None)
        self.vae._continuation = None
        if state is not None:
            self.optim.load_state_dict(state["optimizer"])
            self.generator.set_state(state["epoch_generator"])
            restore_rng(state["rng"])
            self.position = state["position"]
        elif previous is not None and previous["settings"] == _continuation_settings(self.settings) \
                and previous["steps"] == done_before:
            self.optim.load_state_dict(previous["optimizer"])
            for group in self.optim.param_groups:
                group["lr"] = self.trainer.lr
            self.generator.set_state(previous["epoch_generator"])
            self.position = dict(previous["position"])

    def _total_steps(self, done_before: int) -> Optional[int]:
        """Steps the run will have taken when it ends (``None``: unknown)."""
        by_epochs = None
        if self.epoch_limit is not None and self.per_epoch is not None:
            by_epochs = (done_before - (self.position["epoch"] - 1) * self.per_epoch - self.position["skip"]
                         + self.epoch_limit * self.per_epoch)
        candidates = [t for t in (by_epochs, self.step_limit) if t is not None]
        return min(candidates) if candidates else None

    # --- the loop -----------------------------------------------------------------------------------
    def finished(self) -> bool:
        """Whether the epoch or the step limit is reached."""
        return ((self.epoch_limit is not None and self.position["epoch"] > self.epoch_limit)
                or (self.step_limit is not None and len(self.vae.step_losses) >= self.step_limit))

    def epoch(self) -> None:
        """The steps of the current epoch from :attr:`position`, until the epoch ends or the run
        stops."""
        skip = self.position["skip"]
        for batch_index, batch in enumerate(batches(self.data, self.trainer.batch_size, self.generator, skip), skip):
            if self.step(batch_index, batch) or self.position["skip"] == 0:
                return  # done, or the epoch ended (the next one reshuffles)
        # an iterable of batches ran out: its epoch ended
        if self.position["skip"] == 0:
            raise ValueError(f"the training data yielded no batch in epoch {self.position['epoch']}")
        self.between_steps = False
        self.end_epoch()
        self.between_steps = True

    def step(self, batch_index: int, batch: MultimodalBatch) -> bool:
        """One training step on ``batch``, the ``batch_index``-th of its epoch (from 0), and what
        follows it: callbacks, the periodic checkpoint and the progress bar. A signal that comes
        during it waits for its end. Returns whether the run stops after it."""
        self.stops.hold()
        self.between_steps = False
        batch = self.vae.to_model(batch)
        if len(batch) == 0:
            raise ValueError(f"batch {batch_index + 1} of epoch {self.position['epoch']} holds no sample")
        value = self._update(batch, batch_index)
        per_sample = self._record(value, batch_index, len(batch))
        step = len(self.vae.step_losses)
        if self.per_epoch is not None and self.position["skip"] >= self.per_epoch:
            self.end_epoch()
        self.between_steps = True
        self._report(step, batch_index, per_sample, len(batch))
        trainer = self.trainer
        self.out_of_time = trainer.time_budget is not None and time.time() - self.start > trainer.time_budget
        stop = self.out_of_time or self.finished()
        if self.checkpoint is not None and trainer.checkpoint_every and step % trainer.checkpoint_every == 0 \
                and not stop:
            self.save()
            self.last_saved = step
        self._show_progress(step, stop)
        self.stops.release()  # raises the signal that came during the step
        return stop

    def _update(self, batch: MultimodalBatch, batch_index: int):
        """Adam's update from the loss of ``batch``; returns the loss (on a GPU, a tensor left on
        the device). A non-finite loss updates no parameter."""
        optim = self.optim
        if self.trainer.lr_schedule != "constant":
            for group in optim.param_groups:
                group["lr"] = self.trainer.rate(len(self.vae.step_losses) - self.base_steps)
        optim.zero_grad()
        loss = self.vae(batch)
        loss.backward()
        if self.deferred:  # no read-back: a non-finite loss makes the fused update skip itself
            value = loss.detach()
            optim.found_inf = (~torch.isfinite(value)).to(torch.float32)
        else:
            value = loss.item()  # read before the update: a NaN step changes no parameter
            if not math.isfinite(value):
                raise FloatingPointError(_not_finite(value, len(self.vae.step_losses) + 1, self.position,
                                                     batch_index))
        optim.step()
        return value

    def _record(self, value, batch_index: int, batch_size: int):
        """Keep the step's loss ``value`` (summed over ``batch_size`` samples) and move
        :attr:`position` past its batch; returns the loss per sample."""
        per_sample = value / batch_size
        self.vae.step_losses.append(per_sample)
        position = self.position
        self.position = {**position, "skip": batch_index + 1, "total": position["total"] + value,
                         "count": position["count"] + batch_size}
        if self.deferred and len(self.vae.step_losses) % self.trainer.READ_EVERY == 0:
            _read_back(self.vae, self.position)
        return per_sample

    def _report(self, step: int, batch_index: int, per_sample, batch_size: int) -> None:
        """The step's :class:`StepRecord` to the callbacks; a warning when the loss diverges."""
        epoch = self.position["epoch"] - (self.position["skip"] == 0)
        record = StepRecord(step, epoch, batch_index + 1, per_sample, time.time() - self.start, batch_size,
                            self.vae)
        for callback in self.trainer.callbacks:
            callback(record)
        warning = self.watch(step, per_sample) if not self.deferred else None
        if warning:
            warnings.warn(warning, RuntimeWarning, stacklevel=2)
            self.bar.write(f"warning: {warning}")

    def _show_progress(self, step: int, stop: bool) -> None:
        """Advance the bar; every 10 steps (on a GPU, at each read-back) and at the end, show the
        epoch, the running loss and the last checkpoint."""
        self.bar.update(1)
        if step % (self.trainer.READ_EVERY if self.deferred else 10) == 0 or stop:
            position, per_epoch = self.position, self.per_epoch
            postfix = {"epoch": f"{position['epoch']}" + (f" ({position['skip']}/{per_epoch})" if per_epoch else ""),
                       "loss": f"{position['total'] / max(position['count'], 1):.2f}"}
            if self.last_saved:
                postfix["checkpoint"] = f"step {self.last_saved}"
            self.bar.set_postfix(postfix, refresh=False)

    def end_epoch(self) -> None:
        """Record the mean loss per sample of the epoch that ended and start the next one."""
        self.read_back()
        position = self.position
        self.vae.history.append(position["total"] / max(position["count"], 1))
        self.position = {"epoch": position["epoch"] + 1, "skip": 0, "total": 0.0, "count": 0}
        self.epoch_start = self.generator.get_state()

    # --- what is kept -------------------------------------------------------------------------------
    def read_back(self) -> None:
        """On a GPU, turn the losses kept on the device into numbers (:func:`_read_back`)."""
        if self.deferred:
            _read_back(self.vae, self.position)

    def save(self) -> None:
        """Write the checkpoint: everything a resumed run needs to continue from :attr:`position`."""
        self.read_back()
        atomic_save(_checkpoint(self.vae, self.optim.state_dict(), self.epoch_start, self.position,
                                self.settings), self.checkpoint)

    def keep_place(self) -> None:
        """Leave on the vae where the next call of fit continues."""
        self.vae._continuation = {"optimizer": self.optim.state_dict(), "epoch_generator": self.epoch_start,
                                        "position": dict(self.position), "steps": len(self.vae.step_losses),
                                        "settings": _continuation_settings(self.settings)}

    def interrupted(self, error: KeyboardInterrupt) -> None:
        """Ctrl-C or SIGTERM: between steps, keep the place and write the checkpoint (a second
        signal does not cut it short), and attach its path and step to ``error``."""
        if not self.between_steps:
            return
        self.keep_place()
        if self.checkpoint is not None:
            self.stops.hold()
            self.save()
            error.checkpoint, error.step = self.checkpoint, len(self.vae.step_losses)

    def finish(self) -> List[float]:
        """The end of the call: read back, write the checkpoint, keep the place; returns the mean loss
        per sample of every epoch."""
        self.read_back()
        if self.checkpoint is not None:
            self.save()
        self.keep_place()
        return list(self.vae.history)


class _DivergenceWatch:
    """Says once when the loss per sample has grown by orders of magnitude over its best running
    mean: training that diverges without reaching NaN (e.g. too large a learning rate)."""

    WINDOW, FACTOR = 10, 100.0

    def __init__(self):
        self.recent: List[float] = []
        self.best: Optional[float] = None
        self.warned = False

    def __call__(self, step: int, loss: float) -> Optional[str]:
        self.recent = (self.recent + [loss])[-self.WINDOW:]
        if len(self.recent) < self.WINDOW:
            return None
        mean = sum(self.recent) / self.WINDOW
        self.best = mean if self.best is None else min(self.best, mean)
        if not self.warned and mean - self.best > self.FACTOR * max(abs(self.best), 1.0):
            self.warned = True
            return (f"the loss per sample has grown from {self.best:.4g} to {mean:.4g} (mean of {self.WINDOW} steps) "
                    f"by step {step}: training is diverging; lower the learning rate")
        return None


def load_state(module: nn.Module, state_dict: Dict, path) -> None:
    """``module.load_state_dict(state_dict)``, a ``ValueError`` naming ``path`` and the mismatch
    if the file's tensors do not fit the module."""
    try:
        module.load_state_dict(state_dict)
    except RuntimeError as error:
        lines = [line.strip() for line in str(error).splitlines() if line.strip()]
        raise ValueError(f"{path} does not fit this {type(module).__name__}: {' '.join(lines[1:3]) or lines[0]}") from None
