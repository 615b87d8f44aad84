"""Reduced-precision float32 matrix products and convolutions, for the duration of a training run.

:func:`float32_precision` is a context manager that sets how torch computes the *inside* of
float32 matrix products (``mm``, ``bmm``, ``linear``) and convolutions, and restores every setting
it changed when the block ends, an exception included. Tensors stay float32; only the arithmetic
of these products may use narrower units. pyro_mm's :class:`~pyro_mm.training.Trainer` enters it
around its training loop only: data building, evaluation, the judging classifiers and the
queries of a trained model run at whatever the process has (torch's default: exact float32).

The three names are torch's (:func:`torch.set_float32_matmul_precision`), extended to
convolutions, and map onto torch's per-backend ``fp32_precision`` settings (oneDNN on CPUs,
cuBLAS and cuDNN on CUDA GPUs):

===========  ===================  =================  ====================  =================
name         oneDNN matmul (CPU)  oneDNN conv (CPU)  cuBLAS matmul (CUDA)  cuDNN conv (CUDA)
===========  ===================  =================  ====================  =================
``highest``  ``ieee``             ``ieee``           ``ieee``              ``ieee``
``high``     ``tf32``             ``tf32``           ``tf32``              ``tf32``
``medium``   ``bf16``             ``bf16``           ``tf32``              ``tf32``
===========  ===================  =================  ====================  =================

* ``highest``: float32 arithmetic throughout (24-bit significands; relative rounding 6e-8 per
  operation). It also turns off cuDNN's TF32 convolutions, which torch enables by default, so
  that a run recorded as ``highest`` is float32 everywhere.
* ``high``: TF32 (10 explicit significand bits, relative rounding ≈ 5e-4 per product) where the
  hardware has it: NVIDIA GPUs from Ampere on. oneDNN's x86 CPU kernels have no TF32 arithmetic
  and stay float32.
* ``medium``: bfloat16 products (7 explicit significand bits: inputs rounded to 2⁻⁹ relative,
  products accumulated in float32; ≈ 2e-3 relative error on a 256 × 784 by 784 × 512 product of
  random numbers) where oneDNN has kernels that take float32 inputs into bfloat16 units: x86 CPUs
  with AMX-BF16 (Intel Sapphire Rapids and later). oneDNN's bfloat16 mode only *permits* the
  down-conversion: on a CPU with AVX512-BF16 but no AMX (AMD Zen 4, Intel Cooper Lake) it keeps
  its float32 kernels, and ``medium`` then only moves matrix products from MKL to oneDNN —
  float32 results that differ in the last bits (≈ 4e-7 relative), at about the same speed.
  cuBLAS has no bfloat16 mode for float32 inputs: on CUDA ``medium`` is TF32, as in torch.

The setting is process-wide while the block runs (other threads see it too). Matrix products are
set through :func:`torch.set_float32_matmul_precision` as well, so that torch's own getters
(:func:`torch.get_float32_matmul_precision`, ``torch.backends.cuda.matmul.allow_tf32``) keep
answering inside the block; where the caller had set the per-backend values apart from it (torch
then refuses to name one precision), only those are set and restored.
"""

from __future__ import annotations

import contextlib
from typing import Dict, Iterator

import torch

__all__ = ["PRECISIONS", "check_precision", "float32_precision", "in_effect"]

#: per name, the ``fp32_precision`` of each torch backend (``torch.backends.<path>.fp32_precision``)
_SETTINGS: Dict[str, Dict[str, str]] = {
    "highest": {"mkldnn.matmul": "ieee", "mkldnn.conv": "ieee", "cuda.matmul": "ieee", "cudnn.conv": "ieee"},
    "high": {"mkldnn.matmul": "tf32", "mkldnn.conv": "tf32", "cuda.matmul": "tf32", "cudnn.conv": "tf32"},
    "medium": {"mkldnn.matmul": "bf16", "mkldnn.conv": "bf16", "cuda.matmul": "tf32", "cudnn.conv": "tf32"},
}
#: the names :func:`float32_precision` takes, from exact to fastest
PRECISIONS = tuple(_SETTINGS)


def check_precision(name) -> str:
    """``name`` if it is one of :data:`PRECISIONS`, else a ``ValueError`` listing them."""
    if not isinstance(name, str) or name not in _SETTINGS:
        raise ValueError(f"matmul_precision must be one of {list(PRECISIONS)}, got {name!r}")
    return name


def _backend(path: str):
    module = torch.backends
    for part in path.split("."):
        module = getattr(module, part)
    return module


def _backend_values() -> Dict[str, str]:
    """The current ``fp32_precision`` of every backend :func:`float32_precision` sets."""
    return {path: _backend(path).fp32_precision for path in _SETTINGS["highest"]}


def _legacy_precision():
    """torch's one float32 matmul precision, or ``None`` where the caller set the backends apart
    from it (torch then refuses to name one)."""
    try:
        return torch.get_float32_matmul_precision()
    except RuntimeError:
        return None


def in_effect() -> str:
    """The float32 matmul precision now in effect: torch's name (``highest``, ``high``,
    ``medium``), or the backends' own values where they were set apart from it."""
    legacy = _legacy_precision()
    if legacy is not None:
        return legacy
    return ", ".join(f"{path} {value}" for path, value in _backend_values().items())


@contextlib.contextmanager
def float32_precision(name: str) -> Iterator[None]:
    """Compute float32 matrix products and convolutions at precision ``name`` (one of
    :data:`PRECISIONS`; see the module's table) inside the block; every setting it changed is
    restored when the block ends, by an exception too."""
    check_precision(name)
    saved, legacy = _backend_values(), _legacy_precision()
    try:
        if legacy is not None:
            torch.set_float32_matmul_precision(name)
        for path, value in _SETTINGS[name].items():
            _backend(path).fp32_precision = value
        yield
    finally:
        if legacy is not None:
            torch.set_float32_matmul_precision(legacy)
        for path, value in saved.items():
            _backend(path).fp32_precision = value
