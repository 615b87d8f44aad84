"""Where a measurement was made: the commit, the machine and the date, stamped on every table of
results (``pyro-mm reproduce``, the benchmarks) so that a figure can be traced and compared."""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
from pathlib import Path
from typing import Dict

__all__ = ["provenance", "stamp"]


def _commit() -> str:
    """The checkout's short commit hash, ``+`` if its code (not its stored results) differs from
    it; ``unknown`` outside a git checkout."""
    root = Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "diff", "--quiet", "HEAD", "--", "pyro_mm", "models",
                                "guides", "benchmarks", ":(exclude)benchmarks/results"],
                               capture_output=True, timeout=10).returncode
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (head + ("+" if dirty == 1 else "")) if head else "unknown"


def provenance() -> Dict[str, str]:
    """``commit``, ``machine`` (architecture, CPU cores, torch threads and version, the GPU if any)
    and ``date`` (UTC) of the current process."""
    import torch

    machine = (f"{platform.machine()}, {os.cpu_count()} CPU cores, {torch.get_num_threads()} torch threads, "
               f"torch {torch.__version__}")
    if torch.cuda.is_available():
        machine += f", {torch.cuda.get_device_name()}"
    return {"commit": _commit(), "machine": machine,
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")}


def stamp(record: Dict[str, str]) -> str:
    """One markdown line naming the commit, machine and date of ``record`` (as :func:`provenance`)."""
    return f"Measured at commit `{record['commit']}` on {record['machine']}, {record['date']}."
