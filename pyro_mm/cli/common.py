"""What the sub-commands of ``pyro-mm`` share: argument types, the help formatter, devices, data
sets named by options, output directories checked before any work, and errors that end a command
in one line.

The rule of the command: a mistake the user can make ends in one line naming the problem and what
to do — exit status 2 for a usage error (argparse's), 1 for everything else (:class:`CommandError`
and the library's ``ValueError``, ``TypeError``, ``KeyError``, ``OSError`` ... caught in
:func:`pyro_mm.cli.main`); a traceback appears only with ``--debug``. An error whose message lists
its reasons (one per line, as when every way of obtaining MNIST failed) keeps them: the first line,
then one indented line per reason (:func:`error_lines`). A command that Ctrl-C or SIGTERM stopped
ends with :class:`Stopped`: the line saying what was saved and how to continue, exit status 130 or
143.
"""

from __future__ import annotations

import argparse
import json
import os
import uuid
from pathlib import Path
from typing import Any, Callable

from ..options import SEED, Option

__all__ = ["CommandError", "Stopped", "error_lines", "interrupted", "Formatter", "argument", "positive_int",
           "non_negative_int", "fraction", "unit", "seed", "out_dir", "device", "add_matmul_precision", "dataset",
           "writable_dir", "trained_run", "write_json"]


class CommandError(Exception):
    """A command cannot go on: its message is the one line the user reads (exit status 1)."""


class Stopped(Exception):
    """A command stopped by Ctrl-C or SIGTERM after saving what it could: ``message`` is the line
    the user reads (``None``: nothing to print, e.g. in a data-parallel worker whose rank 0 says
    it), ``status`` the exit status (130 or 143, :func:`pyro_mm.training.exit_status`)."""

    def __init__(self, message, status: int):
        super().__init__(message)
        self.message, self.status = message, status


#: at most this many reason lines follow an error's first line
MAX_REASONS = 20


def error_lines(message: str) -> list:
    """The lines ``pyro-mm`` prints for an error: ``pyro-mm: error: <first line>``, then one
    indented line per further non-empty line of the message (its reasons), at most
    :data:`MAX_REASONS` of them."""
    lines = [line.strip() for line in str(message).splitlines() if line.strip()] or ["error"]
    reasons = lines[1:]
    if len(reasons) > MAX_REASONS:
        reasons = reasons[:MAX_REASONS] + [f"... and {len(reasons) - MAX_REASONS} more lines (--debug shows them)"]
    return [f"pyro-mm: error: {lines[0]}"] + [f"  {reason}" for reason in reasons]


def interrupted(interruption: BaseException) -> str:
    """``interrupted by Ctrl-C`` or ``terminated by SIGTERM``, with where the training saved
    itself when it did (the ``checkpoint`` and ``step`` the trainer attaches)."""
    from ..training import Terminated

    what = "terminated by SIGTERM" if isinstance(interruption, Terminated) else "interrupted by Ctrl-C"
    checkpoint = getattr(interruption, "checkpoint", None)
    if checkpoint is None:
        return what
    return f"{what} after step {interruption.step}; saved {checkpoint}"


def argument(option: Option, check: bool = True) -> Callable[[str], Any]:
    """The argparse ``type`` of ``option``: the value its text spells (:meth:`Option.read`) and,
    with ``check``, checked (:meth:`Option.check`); a usage error saying what is wrong otherwise."""
    def convert(text: str):
        try:
            value = option.read(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(f"invalid value {text!r} ({error})") from None
        if not check:
            return value
        try:
            return option.check(value)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None
    convert.__name__ = option.name
    return convert


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a non-negative integer, got {text}")
    return value


def fraction(text: str) -> float:
    value = float(text)
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"must lie in [0, 1), got {text}")
    return value


def unit(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must lie in [0, 1], got {text}")
    return value


#: the argparse type of a seed
seed = argument(SEED)


def out_dir(text: str) -> Path:
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"output directory {path} is a file")
    return path


class Formatter(argparse.RawDescriptionHelpFormatter):
    """Wraps each paragraph of a description; keeps the lines of an epilog of examples as written."""

    def _fill_text(self, text, width, indent):
        if text.startswith("examples:"):
            return super()._fill_text(text, width, indent)
        return "\n\n".join(argparse.HelpFormatter._fill_text(self, part, width, indent)
                           for part in text.split("\n\n"))


def device(text: str):
    """``torch.device(text)`` if this machine has it, else :class:`CommandError` saying why not."""
    import torch

    try:
        dev = torch.device(text)
    except RuntimeError:
        raise CommandError(f"unknown device {text!r} (use cpu, cuda or cuda:N)") from None
    if dev.type not in ("cpu", "cuda"):
        raise CommandError(f"device {text!r} is not supported (use cpu, cuda or cuda:N)")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise CommandError(f"device {text!r} requested but CUDA is not available")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise CommandError(f"device {text!r} requested but this machine has {torch.cuda.device_count()} CUDA "
                           "device(s)")
    return dev


def add_matmul_precision(parser: argparse.ArgumentParser) -> None:
    """``--matmul-precision`` of the commands that train (:mod:`pyro_mm.precision`)."""
    from ..precision import PRECISIONS

    parser.add_argument("--matmul-precision", choices=PRECISIONS, default="highest",
                        help="precision of float32 matrix products and convolutions while training (not in data "
                        "building or evaluation): highest (default) computes in float32; medium uses bfloat16 units "
                        "on CPUs with AMX-BF16 and TF32 on CUDA GPUs, high TF32 on CUDA GPUs; elsewhere they stay "
                        "float32. A resumed run must use the same one")


def dataset(name: str, split: str, size=None, observation=None, option: str = "--size", num_modalities=None):
    """Split ``split`` of data set ``name``; :class:`CommandError` naming ``option`` when ``size``
    is out of range."""
    from ..data.catalog import load_dataset

    try:
        return load_dataset(name, split, size=size, observation=observation, num_modalities=num_modalities)
    except ValueError as error:
        if "size must be between" in str(error):
            raise CommandError(f"{option}: {error}") from None
        raise


def writable_dir(path: Path, option: str = "--out") -> Path:
    """Create ``path`` if needed and prove it writable now, before any work (a training that
    cannot save at its end is refused at its start)."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".pyro_mm-write-test-{uuid.uuid4().hex}"
        probe.write_bytes(b"")
        probe.unlink()
    except FileExistsError:
        raise CommandError(f"{option} {path}: a file is in the way of this directory") from None
    except OSError as error:
        raise CommandError(f"{option} {path} cannot be written ({error.strerror or error}); choose a writable "
                           "directory") from None
    return path


def trained_run(run: Path) -> dict:
    """The record of the run in ``run`` (its ``history.json``: config and losses), or a
    :class:`CommandError` saying what is missing or damaged."""
    history, model = run / "history.json", run / "model.pt"
    if not history.is_file() or not model.is_file():
        hint = (" (an interrupted run: finish it with `pyro-mm train ... --resume`)"
                if (run / "checkpoint.pt").is_file() else "")
        missing = "history.json" if not history.is_file() else "model.pt"
        raise CommandError(f"{run} holds no trained run (no {missing}){hint}; run `pyro-mm train` first")
    try:
        record = json.loads(history.read_text())
    except (ValueError, UnicodeDecodeError) as error:
        raise CommandError(f"{history} is corrupt ({type(error).__name__}); train the run again") from None
    if not isinstance(record, dict) or not isinstance(record.get("config"), dict) or \
            not {"dataset", "size"} <= set(record["config"]):
        raise CommandError(f"{history} is not a pyro-mm training record (no config with the data set); train the "
                           "run again")
    return record


def write_json(path: Path, payload) -> Path:
    """Write JSON through a temporary file renamed over ``path`` (an interrupted write leaves the
    previous file whole)."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        tmp.write_text(json.dumps(payload, indent=2))
        os.replace(tmp, path)
    except OSError as error:
        kept = f"the previous {path.name} is intact" if path.is_file() else f"no {path.name} was written"
        raise CommandError(f"could not write {path}: {error.strerror or error}; {kept}") from None
    finally:
        tmp.unlink(missing_ok=True)
    return path
