"""Files written by pyro_mm: saved models and resumable training checkpoints.

Both are ``torch.save`` payloads tagged with a ``format`` and a ``version``. On disk a file is a
one-line header, ``pyro_mm-file sha256 <hex digest>``, followed by the serialised payload whose
SHA-256 it names; reading verifies every byte (header included), so a flipped byte, a truncated or
half-copied file is refused with an error naming the file instead of loading changed weights.
(Files written before this layout wrapped the same digest and payload in an outer ``torch.save``,
whose zip padding no digest covered; they are still read.) Files are written atomically (serialised in memory, written to a temporary file
beside the target, fsync-ed, then ``os.replace``-d), so an interrupted write — a full disk, a
Ctrl-C, a killed process — never leaves a half-written file in place of the previous one; the
temporary files a killed write leaves behind are removed by :func:`remove_stale_temporaries`.

A training checkpoint also holds everything that makes a resumed run continue *exactly* like an
uninterrupted one: the optimiser state, the data-order generator as it was at the start of the
current epoch with the number of batches already consumed, the global random states (torch CPU
and CUDA, Python, NumPy) that drive the objective's sampling, and the module's state — weights and
every piece of training state its modules keep (``get_extra_state``).

:class:`DirectoryLock` keeps two processes from training into the same output directory.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import io
import json
import os
import pickletools
import random
import re
import socket
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Dict, Optional

import numpy as np
import torch

__all__ = ["MODEL_FORMAT", "TRAINING_FORMAT", "VERSIONS", "SaveError", "atomic_save", "read_payload", "verified_content",
           "capture_rng", "restore_rng", "remove_stale_temporaries", "DirectoryLock", "LockedError", "process_alive"]

MODEL_FORMAT = "pyro_mm-model"
TRAINING_FORMAT = "pyro_mm-training"
#: the layout version of each format that this pyro_mm writes and reads
VERSIONS = {MODEL_FORMAT: 2, TRAINING_FORMAT: 3}
_WRAPPER = "pyro_mm-file"
_HEADER = b"pyro_mm-file sha256 "
_DIGEST_LENGTH = 64
_TEMPORARY = ".tmp"


class SaveError(OSError):
    """Writing a pyro_mm file failed (a full disk, a read-only or vanished directory ...): the
    message names the file and says that its previous version is intact. An ``OSError`` with the
    underlying ``errno``."""

    def __init__(self, path: Path, error: OSError, what: str):
        super().__init__(error.errno, error.strerror or str(error), str(path))
        if path.is_file():
            kept = f"the last {what} in {path} is intact" if what == "checkpoint" else f"the previous {path} is intact"
        else:
            kept = "no checkpoint was written" if what == "checkpoint" else "nothing was written in its place"
        hint = "; free some space and run again" if error.errno == errno.ENOSPC else ""
        self.message = f"could not write {path}: {error.strerror or error}; {kept}{hint}"

    def __str__(self) -> str:
        return self.message


def atomic_save(payload: Dict, path) -> Path:
    """``torch.save(payload)`` with its checksum to ``path`` through a temporary file renamed over
    it. A failed write (e.g. a full disk) raises :class:`SaveError` naming the file; the previous
    file is left whole and no temporary file stays behind."""
    path = Path(path)
    inner = io.BytesIO()
    torch.save(payload, inner)
    content = inner.getvalue()
    what = "checkpoint" if isinstance(payload, dict) and payload.get("format") == TRAINING_FORMAT else "file"
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=_TEMPORARY)
        with os.fdopen(fd, "wb") as f:
            f.write(_HEADER + hashlib.sha256(content).hexdigest().encode() + b"\n")
            f.write(content)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as error:
        raise SaveError(path, error, what) from error
    finally:
        if tmp is not None and os.path.exists(tmp):
            try:
                os.remove(tmp)
            except OSError:  # pragma: no cover - removed at the next start (remove_stale_temporaries)
                pass
    return path


def remove_stale_temporaries(path) -> list:
    """Remove the temporary files that interrupted writes of ``path`` left beside it (call it only
    while no other process writes ``path``); returns the removed paths."""
    path = Path(path)
    if not path.parent.is_dir():
        return []
    stale = [p for p in path.parent.glob(f"{path.name}*{_TEMPORARY}") if p.is_file()]
    for p in stale:
        p.unlink(missing_ok=True)
    return stale


def read_payload(path, fmt: str, map_location="cpu") -> Dict:
    """The payload of a pyro_mm file of format ``fmt``; ``FileNotFoundError`` or ``ValueError``
    naming the problem otherwise (the file is left as it is). The payload is unpickled (it holds the
    modalities' networks): read only files you trust."""
    path = Path(path)
    what = "checkpoint" if fmt == TRAINING_FORMAT else "model file"
    if path.is_dir():
        raise ValueError(f"{path} is a directory, not a pyro_mm {what}")
    if not path.is_file():
        raise FileNotFoundError(f"no pyro_mm {what} at {path}")
    content = verified_content(path, what)
    try:
        payload = torch.load(io.BytesIO(content), map_location=map_location, weights_only=False)
    except Exception as error:
        raise ValueError(_plain(f"{path} is corrupt or not a pyro_mm {what} ({type(error).__name__}: {error})")) \
            from None
    if not isinstance(payload, dict) or payload.get("format") != fmt:
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise ValueError(f"{path} is not a pyro_mm {what} (format {found!r}, expected {fmt!r})")
    if payload.get("version") != VERSIONS[fmt]:
        raise ValueError(f"{path} has {what} version {payload.get('version')}, this pyro_mm reads version "
                         f"{VERSIONS[fmt]}")
    return payload


def verified_content(path, what: str = "file") -> bytes:
    """The serialised payload of the pyro_mm file ``path``, once its SHA-256 matches the header's
    (or, for a file of the older layout, the outer wrapper's); ``ValueError`` naming the file
    otherwise."""
    path = Path(path)
    data = path.read_bytes()
    start = len(_HEADER) + _DIGEST_LENGTH + 1
    if data.startswith(_HEADER):
        digest, separator, content = data[len(_HEADER):start - 1], data[start - 1:start], data[start:]
        if separator != b"\n" or hashlib.sha256(content).hexdigest().encode() != digest:
            raise ValueError(f"{path} is corrupt: its content does not match its checksum (a changed or damaged file)")
        return content
    try:  # the older layout: an outer torch.save of {"wrapper", "sha256", "content"}
        outer = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as error:
        foreign = _torch_save_content(data)
        if foreign is not None:
            raise ValueError(_foreign_message(path, foreign, what)) from None
        raise ValueError(_plain(f"{path} is corrupt or not a pyro_mm {what} ({type(error).__name__}: {error})")) \
            from None
    if not isinstance(outer, dict) or outer.get("wrapper") != _WRAPPER:
        foreign = _torch_save_content(data)
        if foreign is not None:
            raise ValueError(_foreign_message(path, foreign, what))
        raise ValueError(f"{path} is not a pyro_mm {what} (no pyro_mm checksum wrapper)")
    content = outer.get("content")
    if not isinstance(content, bytes) or hashlib.sha256(content).hexdigest() != outer.get("sha256"):
        raise ValueError(f"{path} is corrupt: its content does not match its checksum (a changed or damaged file)")
    return content


def _plain(text: str) -> str:
    """The first line of ``text`` without terminal colour codes."""
    return re.sub(r"\x1b\[[0-9;]*m", "", text).split("\n")[0]


def _torch_save_content(data: bytes) -> Optional[str]:
    """What a file written by a plain ``torch.save`` holds — the qualified name of the pickled
    object's class, or ``"dict"`` / ``"list"`` — read from its pickle's opcodes without unpickling
    anything; ``None`` for anything else."""
    if not data.startswith(b"PK\x03\x04"):
        return None
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            name = next((n for n in archive.namelist() if n == "data.pkl" or n.endswith("/data.pkl")), None)
            if name is None:
                return None
            pickled = archive.read(name)
        strings = []
        for opcode, arg, _ in pickletools.genops(pickled):
            if opcode.name in ("EMPTY_DICT", "DICT"):
                return "dict"
            if opcode.name in ("EMPTY_LIST", "LIST"):
                return "list"
            if opcode.name in ("GLOBAL", "INST"):
                return str(arg).replace(" ", ".")
            if "UNICODE" in opcode.name:
                strings.append(str(arg))
            if opcode.name == "STACK_GLOBAL":
                return ".".join(strings[-2:])
    except Exception:  # not a readable archive or pickle: not a torch.save file we can describe
        return None
    return None


def _foreign_message(path: Path, content: str, what: str) -> str:
    """What a file written by ``torch.save`` is, and how to make a pyro_mm file of it."""
    if content in ("dict", "list", "collections.OrderedDict"):
        name = content.rsplit(".", 1)[-1]
        article = "an" if name[0].lower() in "aeiou" else "a"
        return (f"{path} holds {article} {name} written by torch.save() (a state_dict?), not a pyro_mm "
                f"{what}: load it into a model built the same way (vae.load_state_dict(torch.load(path))) and write "
                "that with vae.save(path)")
    return (f"{path} holds a {content} written by torch.save(), not a pyro_mm {what} (written by its .save(path)): "
            "if you trust the file, load it with torch.load(path, weights_only=False) and write it with .save(path)")


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


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` of this machine runs (a zombie, dead but not yet reaped, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[-1].split()[0] not in ("Z", "X")
    except OSError:
        return True  # no /proc (not Linux): kill(pid, 0) said it exists


class LockedError(RuntimeError):
    """Another process holds the lock of an output directory."""


class DirectoryLock:
    """An exclusive lock on a directory (``.pyro_mm.lock`` inside it, ``fcntl.flock``: released by
    the operating system when the holder exits, however it exits).

    Used as a context manager; another process gets :class:`LockedError` naming the holder (its
    process id, host and start time). Within the process that holds it, taking it again (e.g. a
    grid's cell, then its training) is allowed."""

    NAME = ".pyro_mm.lock"
    _held: Dict[Path, int] = {}  # directories this process holds, and how many times

    def __init__(self, directory):
        self.directory = Path(directory)
        self.path = self.directory / self.NAME
        self._file = None
        self._nested = False

    def holder(self) -> Optional[dict]:
        """Who wrote the lock file last (``None``: nobody)."""
        try:
            return json.loads(self.path.read_text())
        except (OSError, ValueError):
            return None

    def __enter__(self) -> "DirectoryLock":
        self.directory.mkdir(parents=True, exist_ok=True)
        key = self.directory.resolve()
        if key in self._held:
            self._held[key] += 1
            self._nested = True
            return self
        f = open(self.path, "a+")
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.close()
            who = self.holder() or {}
            raise LockedError(
                f"{self.directory} is in use by another pyro-mm process (pid {who.get('pid', '?')} on "
                f"{who.get('host', '?')}, since {who.get('since', '?')}); wait for it or choose another output "
                "directory") from None
        f.seek(0)
        f.truncate()
        f.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                            "since": time.strftime("%Y-%m-%d %H:%M:%S")}))
        f.flush()
        self._file = f
        self._held[key] = 1
        return self

    def __exit__(self, *exc) -> None:
        key = self.directory.resolve()
        if self._nested:
            self._held[key] -= 1
            self._nested = False
            return
        self._held.pop(key, None)
        if self._file is not None:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            self._file.close()
            self._file = None
