"""Where a measurement was made: the commit, the machine, the software and the date, stamped on
every table of results (``pyro-mm reproduce``, the benchmarks, the main job's ``timing.json``) so
that a figure can be traced and compared. The CPU's instruction-set flags and the float32 matmul
precision in effect say which arithmetic units the numbers came from (:mod:`pyro_mm.precision`)."""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
from pathlib import Path
from typing import Any, Dict, List

__all__ = ["provenance", "stamp", "cpu_flags", "RELEVANT_CPU_FLAGS"]

#: the CPU flags that decide which float32 / bfloat16 kernels torch and oneDNN can run
RELEVANT_CPU_FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16", "amx_int8")


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


def cpu_flags() -> List[str]:
    """Which of :data:`RELEVANT_CPU_FLAGS` this CPU has, in that order (from ``/proc/cpuinfo``;
    empty where it cannot be read, e.g. outside Linux)."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            line = next((line for line in cpuinfo if line.startswith("flags")), "")
    except OSError:
        return []
    present = set(line.partition(":")[2].split())
    return [flag for flag in RELEVANT_CPU_FLAGS if flag in present]


def provenance() -> Dict[str, Any]:
    """Where the current process runs: ``commit``; ``machine``, one line (architecture and CPU
    flags, CPU cores, torch threads and version, the GPU if any); ``date`` (UTC); and each part
    apart: ``torch`` and ``pyro`` (versions), ``threads`` (``torch.get_num_threads()``),
    ``matmul_precision`` (the float32 matmul precision in effect, :func:`pyro_mm.precision.in_effect`),
    ``cpu_flags`` (:func:`cpu_flags`) and ``gpu`` (the CUDA device's name, else ``""``)."""
    import pyro
    import torch

    from .precision import in_effect

    flags, threads = cpu_flags(), torch.get_num_threads()
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else ""
    machine = (f"{platform.machine()}" + (f" ({', '.join(flags)})" if flags else "")
               + f", {os.cpu_count()} CPU cores, {threads} torch threads, torch {torch.__version__}"
               + (f", {gpu}" if gpu else ""))
    return {"commit": _commit(), "machine": machine,
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d"),
            "torch": torch.__version__, "pyro": pyro.__version__, "threads": threads,
            "matmul_precision": in_effect(), "cpu_flags": flags, "gpu": gpu}


def stamp(record: Dict[str, Any]) -> str:
    """One markdown line naming the commit, machine, Pyro version, matmul precision and date of
    ``record`` (as :func:`provenance`; a record written before the last three existed leaves them
    out)."""
    extras = ([f"pyro {record['pyro']}"] if "pyro" in record else []) + \
        ([f"float32 matmul precision {record['matmul_precision']}"] if "matmul_precision" in record else [])
    machine = ", ".join([record["machine"], *extras])
    return f"Measured at commit `{record['commit']}` on {machine}, {record['date']}."
