"""Content checks of the data: SHA-256 digests of arrays, and what happens when they differ.

Every built-in data set depends only on inputs the project pins (the MNIST files, the arrays
shipped in :mod:`pyro_mm.data.assets`, scikit-image's sample photographs at a pinned version),
and its build steps compute in float64 before rounding to ``uint8``, so the same arguments give
the same arrays on every CPU and thread count. :func:`verify_arrays` holds a build against the
digests recorded for it; a difference is a :class:`DataMismatchError` that names the first array
that differs, the CPU and the library versions, unless the user opts out with
``PYRO_MM_ALLOW_DATA_MISMATCH=1`` (then it is a warning and the arrays are used).

A digest is taken of an array's content, not of a file: ``sha256(dtype | shape | bytes)``, so
it does not depend on how (or whether) the array was compressed on disk.
"""

from __future__ import annotations

import hashlib
import os
import platform
import warnings
from typing import Dict, Mapping

import numpy as np

__all__ = ["ALLOW_MISMATCH_ENV", "DataMismatchError", "array_sha256", "arrays_sha256", "build_environment",
           "verify_arrays"]

#: set to 1 to use data whose arrays differ from the recorded ones (a warning instead of an error)
ALLOW_MISMATCH_ENV = "PYRO_MM_ALLOW_DATA_MISMATCH"


class DataMismatchError(RuntimeError):
    """A data set's arrays differ from the digests recorded for them."""


def array_sha256(array) -> str:
    """Hex SHA-256 of an array's dtype, shape and C-ordered bytes."""
    array = np.ascontiguousarray(array)
    return hashlib.sha256(f"{array.dtype.str}|{array.shape}|".encode() + array.tobytes()).hexdigest()


def arrays_sha256(arrays: Mapping[str, np.ndarray]) -> Dict[str, str]:
    """:func:`array_sha256` of every array, by name."""
    return {name: array_sha256(array) for name, array in arrays.items()}


def build_environment() -> str:
    """The CPU and the library versions a build ran with, in one line."""
    import torch

    from ..provenance import cpu_flags

    versions = [f"numpy {np.__version__}", f"torch {torch.__version__}"]
    try:
        import skimage

        versions.append(f"scikit-image {skimage.__version__}")
    except ImportError:
        pass
    flags = ", ".join(cpu_flags()) or "no recorded flags"
    return (f"{platform.processor() or platform.machine()} ({flags}), {torch.get_num_threads()} torch threads, "
            + ", ".join(versions))


def verify_arrays(arrays: Mapping[str, np.ndarray], expected: Mapping[str, str], what: str) -> None:
    """Check ``arrays`` against the recorded digests ``expected`` (name -> hex SHA-256).

    :raises DataMismatchError: naming the first array (in the recorded order) that is missing or
        differs, unless ``PYRO_MM_ALLOW_DATA_MISMATCH=1``, which turns it into a warning.
    """
    for name, digest in expected.items():
        if name not in arrays:
            problem = f"has no array {name!r}"
        else:
            actual = array_sha256(arrays[name])
            if actual == digest:
                continue
            problem = f"array {name!r} differs from the recorded one (sha256 {actual[:12]}… instead of {digest[:12]}…)"
        message = f"{what}: {problem}; built on {build_environment()}"
        if os.environ.get(ALLOW_MISMATCH_ENV) == "1":
            warnings.warn(message + f" — used anyway ({ALLOW_MISMATCH_ENV}=1)")
            return
        raise DataMismatchError(message + f"; set {ALLOW_MISMATCH_ENV}=1 to use it anyway")
