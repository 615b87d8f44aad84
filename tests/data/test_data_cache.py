"""Cache files: checksums beside them; corrupt, truncated or unverified files are rebuilt."""

import hashlib

import numpy as np
import pytest
import torch

from pyro_mm.data.cache import load_arrays, save_arrays
from pyro_mm.data.polymnist import PolyMNIST


def test_save_load_roundtrip(tmp_path):
    arrays = {"a": np.arange(10, dtype=np.uint8), "b": np.ones((2, 3))}
    save_arrays(tmp_path / "x.npz", arrays)
    assert (tmp_path / "x.npz.sha256").exists()
    assert not list(tmp_path.glob("*.tmp"))
    back = load_arrays(tmp_path / "x.npz")
    assert all(np.array_equal(back[k], arrays[k]) for k in arrays)
    assert load_arrays(tmp_path / "missing.npz") is None


def _cache_file(root):
    (path,) = list(root.glob("polymnist-*.npz"))
    return path


@pytest.mark.parametrize("damage", ["truncate", "flip", "drop_checksum", "garbage"])
def test_damaged_cache_detected_and_rebuilt(make, tmp_path, damage):
    first = make(PolyMNIST, split="test", num_modalities=2, size=100)
    path = _cache_file(tmp_path)
    data = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "flip":
        data = bytearray(data)
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))
    elif damage == "drop_checksum":
        path.with_name(path.name + ".sha256").unlink()
    else:  # a wrong file with a matching checksum file still cannot be read
        path.write_bytes(b"garbage")
        path.with_name(path.name + ".sha256").write_text(hashlib.sha256(b"garbage").hexdigest())
    with pytest.warns(UserWarning, match="corrupt or truncated"):
        second = make(PolyMNIST, split="test", num_modalities=2, size=100)
    for name in first.names:
        assert torch.equal(first.modality(name, slice(None)), second.modality(name, slice(None)))
    assert load_arrays(path) is not None  # rebuilt with a valid checksum
