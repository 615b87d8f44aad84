"""The ``pyro-mm`` command, one module per sub-command.

* ``pyro-mm main`` — the main job (:mod:`pyro_mm.main_job`);
* ``pyro-mm train`` — train a registered method on an offline data set, save the model
  (``model.pt``), its loss history and a checkpoint that ``--resume`` continues exactly;
* ``pyro-mm evaluate`` — every metric of a saved model: ``metrics.json``, ``report.md``, figures;
* ``pyro-mm sample`` — samples of a saved model, from the prior or given a modality;
* ``pyro-mm reproduce`` — the seed papers' experiments (``pyro-mm demo``: the linear-Gaussian one);
* ``pyro-mm data`` — build and cache a data set (``prepare``) or draw a preview image.

Without a sub-command it prints its help. A mistake ends in one line on stderr naming the problem
(followed by one indented line per reason when the error has several): exit status 2 for a usage
error, 1 otherwise; ``--debug`` shows the traceback instead. Ctrl-C and SIGTERM (a scheduler's
preemption) end every command the same way: what a training has done is saved, a line says how to
continue, and the exit status is 130 or 143.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import warnings
from contextlib import contextmanager
from typing import List, Optional

from .. import __version__
from ..registry import METHODS
from ..training import exit_status, raise_on_signal
from . import common, data, evaluate, main_job, reproduce, sample, train

__all__ = ["main", "build_parser"]

#: what a command may raise that the user, not the library, has to fix: one line, exit status 1
USER_ERRORS = (common.CommandError, ValueError, TypeError, KeyError, OSError, ImportError, FloatingPointError,
               RuntimeError)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pyro-mm",
        description="Multimodal VAEs as Pyro models, guides and ELBOs; the methods (train --method): "
        f"{', '.join(METHODS)}. Every command has its own --help.",
        formatter_class=common.Formatter,
        epilog="examples:\n"
        "  pyro-mm main                                     # the main job: MEME on MNIST-SynDigits\n"
        "  pyro-mm data prepare --dataset mnist-syndigits   # build and cache a data set\n"
        "  pyro-mm train --method mmvae+ --steps 2000 --out runs/mmvae+\n"
        "  pyro-mm evaluate --run runs/mmvae+\n"
        "  pyro-mm sample --run runs/mmvae+ --given syndigits\n"
        "  pyro-mm reproduce meme-table --quick",
    )
    parser.add_argument("--version", action="version", version=f"pyro-mm {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module, add in ((main_job, main_job.add_parser), (train, train.add_parser), (evaluate, evaluate.add_parser),
                        (sample, sample.add_parser), (reproduce, reproduce.add_parser),
                        (reproduce, reproduce.add_demo_parser), (data, data.add_parser)):
        command = add(sub)
        command.set_defaults(func=reproduce.run_demo if add is reproduce.add_demo_parser else module.run)
        command.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                             help="show the full traceback of an error")
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        parser.print_help()
        return 0
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    if args.command == "train":
        args.method_options = train.method_options(args, lambda message: parser.error(f"train: {message}"))
    quiet = getattr(args, "no_progress", False)
    before = os.environ.get("PYRO_MM_PROGRESS")
    if quiet:  # the data sets' builds too
        os.environ["PYRO_MM_PROGRESS"] = "0"
    try:
        with _signals_raise(), _short_warnings():
            return args.func(args)
    except common.Stopped as stop:
        if getattr(args, "debug", False):
            raise
        if stop.message:
            print(f"pyro-mm: {stop.message}", file=sys.stderr)
        return stop.status
    except USER_ERRORS as error:
        if getattr(args, "debug", False):
            raise
        message = str(error.args[0]) if isinstance(error, KeyError) and error.args else str(error)
        print("\n".join(common.error_lines(message or type(error).__name__)), file=sys.stderr)
        if type(error).__name__ == "WorkerDied":  # pyro_mm.lightning's (named: Lightning is an optional extra)
            # a gloo process group whose peer died aborts the interpreter's teardown ("terminate called
            # without an active exception", now and then): end here, the message out, the status kept
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(1)
        return 1
    except KeyboardInterrupt as interruption:
        if getattr(args, "debug", False):
            raise
        print(f"pyro-mm: {common.interrupted(interruption)}", file=sys.stderr)
        return exit_status(interruption)
    finally:
        if quiet:
            if before is None:
                os.environ.pop("PYRO_MM_PROGRESS", None)
            else:
                os.environ["PYRO_MM_PROGRESS"] = before


@contextmanager
def _signals_raise():
    """While a command runs: SIGTERM raises :class:`~pyro_mm.training.Terminated` (a
    ``KeyboardInterrupt``), so that it takes Ctrl-C's path — a training saves and says how to
    continue — and the command exits with status 143."""
    installed = threading.current_thread() is threading.main_thread() \
        and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
    if installed:
        signal.signal(signal.SIGTERM, raise_on_signal)
    try:
        yield
    finally:
        if installed:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)


@contextmanager
def _short_warnings():
    """Warnings of the library as ``pyro-mm: warning: ...`` lines on stderr (not Python's two lines
    with a source excerpt)."""
    shown = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, (UserWarning, RuntimeWarning)) and "pyro_mm" in str(filename) + str(
                getattr(category, "__module__", "")):
            lines = str(message).splitlines() or [category.__name__]
            print("\n".join([f"pyro-mm: warning: {lines[0]}"] + [f"  {text.strip()}" for text in lines[1:]
                                                                  if text.strip()]), file=file or sys.stderr)
        else:
            shown(message, category, filename, lineno, file, line)

    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = shown


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
