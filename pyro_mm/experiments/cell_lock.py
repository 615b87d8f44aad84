"""The lock that lets any number of ``pyro-mm reproduce`` processes share one ``--out``: on one
machine, on several machines over a network file system, or as the tasks of a SLURM job array.

A process trains a cell only while it holds the cell's lock, the file ``cell.lock`` in the cell's
directory. ``fcntl.flock`` is not used: it is unreliable on network file systems (NFS). Instead:

* **taking** the lock creates the file atomically (``os.open`` with ``O_CREAT | O_EXCL``, atomic
  on NFSv3 and later and on every local file system): of two processes racing for a cell exactly
  one creates it. The file holds the holder's ``host``, ``pid``, a random ``token``, ``since`` and
  ``heartbeat`` (seconds since the epoch);
* while the lock is held, a background thread rewrites ``heartbeat`` every :attr:`CellLock.interval`
  seconds (30), in place through the descriptor that created the file — so a holder never writes
  into a lock file that is not its own;
* a lock is **stale** when its heartbeat is older than :attr:`CellLock.ttl` (5 minutes: its holder
  died or hangs, on whatever host), or when its holder is a process of this host that no longer
  exists. A stale lock is **taken over** atomically: it is renamed away under a name unique to
  the taker (of several takers only one rename finds it), the taker checks that what it moved is
  stale (not a lock taken over a moment earlier by someone else, which it puts back with
  ``os.link``, itself atomic and refusing to overwrite), deletes it, and then competes with
  ``O_EXCL`` like anybody else;
* **releasing** deletes the file if it is still the holder's own.

A live lock held by another process means the cell is skipped, not an error
(:meth:`CellLock.acquire` returns ``False``). Hosts must keep their clocks in step (NTP) to well
within the TTL, as clusters do.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
import warnings
from pathlib import Path
from typing import Optional

from ..checkpoint import process_alive

__all__ = ["CellLock"]

#: the lock file's fixed size: a heartbeat overwrites all of it in one write, no truncation
_SIZE = 512


class CellLock:
    """An exclusive, network-file-system-safe lock on one cell directory (see the module).

    :param directory: the cell's directory (created if missing).
    :param ttl: seconds without a heartbeat after which the lock is stale.
    :param interval: seconds between heartbeats (well below ``ttl``).
    """

    NAME = "cell.lock"

    def __init__(self, directory, ttl: float = 300.0, interval: float = 30.0):
        if not 0 < interval < ttl:
            raise ValueError(f"the heartbeat interval must lie in (0, ttl), got {interval} and {ttl}")
        self.directory = Path(directory)
        self.path = self.directory / self.NAME
        self.ttl, self.interval = float(ttl), float(interval)
        self._fd: Optional[int] = None
        self._info: dict = {}
        self._stop = threading.Event()
        self._beat: Optional[threading.Thread] = None

    # --- reading ------------------------------------------------------------------------------
    @staticmethod
    def _read(path: Path) -> Optional[dict]:
        try:
            with open(path, "rb") as f:
                return json.loads(f.read().decode().strip())
        except (OSError, ValueError, UnicodeDecodeError):
            return None

    def holder(self) -> Optional[dict]:
        """The lock file's content (``host``, ``pid``, ``token``, ``since``, ``heartbeat``);
        ``None`` when there is no lock file or it cannot be read."""
        return self._read(self.path)

    def stale(self, holder: Optional[dict], path: Optional[Path] = None) -> bool:
        """Whether a lock file holding ``holder`` (at ``path``, default the lock's) may be taken
        over: a heartbeat older than the TTL, or a holder on this host that has exited. A file
        that cannot be read (being written, or damaged) is judged by its modification time."""
        if holder is None:
            try:
                return time.time() - os.stat(path or self.path).st_mtime > self.ttl
            except FileNotFoundError:
                return True
        try:
            if time.time() - float(holder["heartbeat"]) > self.ttl:
                return True
            return holder["host"] == socket.gethostname() and not process_alive(int(holder["pid"]))
        except (KeyError, TypeError, ValueError):
            return True

    @property
    def held(self) -> bool:
        """Whether this object holds the lock now."""
        return self._fd is not None

    # --- taking and releasing -------------------------------------------------------------------
    def _content(self) -> bytes:
        text = json.dumps({**self._info, "heartbeat": round(time.time(), 3)}).encode()
        return text.ljust(_SIZE)

    def _create(self) -> bool:
        self.directory.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        self._fd = fd
        self._info = {"host": socket.gethostname(), "pid": os.getpid(), "token": uuid.uuid4().hex,
                      "since": time.strftime("%Y-%m-%d %H:%M:%S")}
        os.pwrite(fd, self._content(), 0)
        os.fsync(fd)
        return True

    def _take_over(self) -> bool:
        """Move a stale lock aside; false when what was moved was live (someone else took the
        stale lock over first)."""
        aside = self.path.with_name(f"{self.NAME}.stale-{uuid.uuid4().hex}")
        try:
            os.rename(self.path, aside)
        except FileNotFoundError:
            return True  # released or taken over meanwhile: compete for a fresh one
        moved = self._read(aside)
        if self.stale(moved, aside):
            aside.unlink(missing_ok=True)
            return True
        try:  # a live lock, taken over a moment before: put it back unless a new one is there
            os.link(aside, self.path)
        except FileExistsError:
            warnings.warn(f"{self.path}: three processes raced for a stale lock; the lock of {moved} was lost")
        aside.unlink(missing_ok=True)
        return False

    def acquire(self) -> bool:
        """Take the lock: true when this process holds it now, false when another process holds
        it live (a stale lock is taken over). Starts the heartbeat."""
        if self.held:
            raise RuntimeError(f"{self.path} is already held by this lock object")
        for _ in range(3):
            if self._create():
                self._stop.clear()
                self._beat = threading.Thread(target=self._heartbeat, name=f"heartbeat {self.directory.name}",
                                              daemon=True)
                self._beat.start()
                return True
            if not self.stale(self.holder()) or not self._take_over():
                return False
        return False

    def _owned(self) -> bool:
        """Whether the lock file at the path is still the one this object created."""
        try:
            return os.path.samestat(os.fstat(self._fd), os.stat(self.path))
        except (OSError, TypeError):
            return False

    def _heartbeat(self) -> None:
        while not self._stop.wait(self.interval):
            if not self._owned():
                warnings.warn(f"{self.path}: the lock was taken over by another process (no heartbeat for "
                              f"{self.ttl:.0f} s?); this process keeps training the cell")
                return
            try:
                os.pwrite(self._fd, self._content(), 0)
                os.fsync(self._fd)
            except OSError as error:  # a file-system hiccup: the next beat tries again
                warnings.warn(f"{self.path}: the heartbeat could not be written ({error})")

    def release(self) -> None:
        """Stop the heartbeat and delete the lock file if it is still this object's."""
        if not self.held:
            return
        self._stop.set()
        if self._beat is not None:
            self._beat.join()
        if self._owned():
            self.path.unlink(missing_ok=True)
        os.close(self._fd)
        self._fd, self._beat = None, None
