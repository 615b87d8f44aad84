"""Files written by pyro_mm's user classes: saved models and resumable training checkpoints.

Both are ``torch.save`` payloads tagged with a ``format`` and a ``version``, written atomically
(serialised in memory, written to a temporary file beside the target, then ``os.replace``), so an
interrupted write — a full disk, a Ctrl-C — never leaves a half-written file in place of the
previous one. Reading names what is wrong with a missing, corrupt, foreign or incompatible file
and never modifies it.

A training checkpoint also holds everything that makes a resumed run continue *exactly* like an
uninterrupted one: the optimiser state, the data-order generator as it was at the start of the
current epoch with the number of batches already consumed, the global random states (torch CPU
and CUDA, Python, NumPy) that drive the ELBO's sampling, and the loss history of every step.
"""

from __future__ import annotations

import io
import os
import random
import tempfile
from pathlib import Path
from typing import Dict

import numpy as np
import torch

__all__ = ["MODEL_FORMAT", "TRAINING_FORMAT", "VERSIONS", "atomic_save", "read_payload", "capture_rng",
           "restore_rng"]

MODEL_FORMAT = "pyro_mm-model"
TRAINING_FORMAT = "pyro_mm-training"
#: the layout version of each format that this pyro_mm writes and reads
VERSIONS = {MODEL_FORMAT: 1, TRAINING_FORMAT: 2}


def atomic_save(payload: Dict, path) -> Path:
    """``torch.save(payload)`` to ``path`` through a temporary file renamed over it."""
    path = Path(path)
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(buffer.getvalue())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def read_payload(path, fmt: str, map_location="cpu") -> Dict:
    """The payload of a pyro_mm file of format ``fmt``; ``FileNotFoundError`` or ``ValueError``
    naming the problem otherwise (the file is left as it is). The payload is unpickled (it holds the
    modalities' networks): read only files you trust."""
    path = Path(path)
    what = "checkpoint" if fmt == TRAINING_FORMAT else "model file"
    if not path.is_file():
        raise FileNotFoundError(f"no pyro_mm {what} at {path}")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as error:
        raise ValueError(f"{path} is corrupt or not a pyro_mm {what} ({type(error).__name__}: {error})") from None
    if not isinstance(payload, dict) or payload.get("format") != fmt:
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise ValueError(f"{path} is not a pyro_mm {what} (format {found!r}, expected {fmt!r})")
    if payload.get("version") != VERSIONS[fmt]:
        raise ValueError(f"{path} has {what} version {payload.get('version')}, this pyro_mm reads version "
                         f"{VERSIONS[fmt]}")
    return payload


def capture_rng() -> Dict:
    """Every global random state a training step consumes: torch (CPU, and CUDA once it is in
    use), Python's ``random`` and NumPy's."""
    state = {"torch": torch.get_rng_state(), "python": random.getstate(), "numpy": np.random.get_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: Dict) -> None:
    """Undo :func:`capture_rng`."""
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
