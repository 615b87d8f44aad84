"""On-disk cache for generated data sets: location, checksums and atomic compressed writes.

Every generated set is stored as one ``.npz`` file (``np.savez_compressed``) next to a
``.sha256`` file holding the SHA-256 of the ``.npz`` bytes. Both are written to a temporary file
in the same directory and moved into place with :func:`os.replace`, so a crash never leaves a
half-written file under the final name. On load the checksum is recomputed; a missing, truncated
or corrupt file is reported with a warning and rebuilt, never used.

The cache directory is, in order of precedence, the ``root`` argument, the environment variable
``PYRO_MM_DATA_DIR``, or ``~/.cache/pyro_mm``. A cache directory that cannot be created, or a
directory where a cache file belongs, is a :class:`CacheError` naming the path; a cache that
cannot be written (read-only) is a warning: the data set is built in memory and used.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
import zipfile
from pathlib import Path
from typing import Callable, Dict, Mapping, Optional, Union

import numpy as np

from pyro_mm.data.integrity import verify_arrays

__all__ = [
    "CacheError",
    "data_dir",
    "sha256_file",
    "atomic_write_bytes",
    "cache_file",
    "save_arrays",
    "load_arrays",
    "cached_arrays",
]

PathLike = Union[str, os.PathLike]


class CacheError(OSError):
    """The data cache cannot be used as it is (the message names the path and the remedy)."""

    def __str__(self) -> str:
        return self.args[0] if self.args else "data cache error"


def data_dir(root: Optional[PathLike] = None) -> Path:
    """The cache directory: ``root``, else ``$PYRO_MM_DATA_DIR``, else ``~/.cache/pyro_mm``."""
    source = "the root argument" if root is not None else (
        "$PYRO_MM_DATA_DIR" if os.environ.get("PYRO_MM_DATA_DIR") else "the default ~/.cache/pyro_mm")
    if root is None:
        root = os.environ.get("PYRO_MM_DATA_DIR") or Path.home() / ".cache" / "pyro_mm"
    path = Path(root).expanduser()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise CacheError(f"the data cache {path} ({source}) is a file, not a directory; set PYRO_MM_DATA_DIR to a "
                         "directory") from None
    except OSError as error:
        raise CacheError(f"the data cache {path} ({source}) cannot be created ({error.strerror or error}); set "
                         "PYRO_MM_DATA_DIR to a writable directory") from None
    return path


def sha256_file(path: PathLike, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def atomic_write_bytes(path: PathLike, write: Callable[[object], None]) -> None:
    """Write a file atomically: ``write(fileobj)`` fills a temp file that then replaces ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def cache_file(name: str, params: Mapping, root: Optional[PathLike] = None) -> Path:
    """Cache path for data set ``name`` built with ``params`` (a JSON-serialisable mapping).

    The file name carries a short hash of the parameters, so every distinct configuration
    (size, seed, split, generator version...) has its own file.
    """
    key = json.dumps(dict(params), sort_keys=True, default=str)
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return data_dir(root) / f"{name}-{digest}.npz"


def _checksum_path(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def save_arrays(path: PathLike, arrays: Mapping[str, np.ndarray]) -> None:
    """Store ``arrays`` compressed at ``path`` with a checksum file beside it (both atomic)."""
    path = Path(path)
    atomic_write_bytes(path, lambda f: np.savez_compressed(f, **arrays))
    digest = sha256_file(path)
    atomic_write_bytes(_checksum_path(path), lambda f: f.write((digest + "\n").encode()))


def load_arrays(path: PathLike) -> Optional[Dict[str, np.ndarray]]:
    """Load arrays saved by :func:`save_arrays`, or ``None`` when there is no valid file.

    A file whose checksum file is missing or disagrees with its bytes, or which cannot be read
    back, gives a warning naming the problem and ``None`` (the caller rebuilds it).
    """
    path = Path(path)
    if path.is_dir():
        raise CacheError(f"the cache file {path} is a directory; remove it and the data set is rebuilt")
    if not path.exists():
        return None
    check = _checksum_path(path)
    problem = None
    if not check.exists():
        problem = f"its checksum file {check.name} is missing"
    else:
        expected = check.read_text().strip()
        actual = sha256_file(path)
        if actual != expected:
            problem = f"its SHA-256 {actual[:12]}... differs from the recorded {expected[:12]}..."
    if problem is None:
        try:
            with np.load(path, allow_pickle=False) as z:
                return {k: z[k] for k in z.files}
        except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
            problem = f"it cannot be read ({type(e).__name__}: {e})"
    warnings.warn(f"cache file {path} is corrupt or truncated: {problem}; rebuilding it")
    return None


def cached_arrays(
    path: PathLike,
    build: Callable[[], Dict[str, np.ndarray]],
    expected: Optional[Mapping[str, str]] = None,
    what: str = "data set",
) -> Dict[str, np.ndarray]:
    """Load ``path`` if it holds a valid cache, else ``build()`` the arrays and store them.

    :param expected: the recorded SHA-256 of the built arrays (name -> hex digest, see
        :func:`~pyro_mm.data.integrity.verify_arrays`); a build that gives other arrays is refused
        before anything is cached. ``None``: nothing is recorded for this configuration.
    :param what: the data set's name in that error.
    """
    arrays = load_arrays(path)
    if arrays is None:
        arrays = build()
        if expected is not None:
            verify_arrays(arrays, expected, f"{what} (built into {path})")
        try:
            save_arrays(path, arrays)
        except OSError as error:
            warnings.warn(f"could not write the data cache {path} ({error.strerror or error}); the data set was built "
                          "in memory and will be built again next time (set PYRO_MM_DATA_DIR to a writable directory)")
    return arrays
