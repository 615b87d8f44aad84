"""The data are the same on every machine: shipped assets and recorded digests are checked, and the
builds give the same bytes at 1 and 2 threads, with torch's scalar kernels and with an extra font."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from pyro_mm.data import assets
from pyro_mm.data.cache import cached_arrays
from pyro_mm.data.captions import CaptionedDigits
from pyro_mm.data.catalog import DATASETS
from pyro_mm.data.checksums import RECORDED
from pyro_mm.data.integrity import DataMismatchError, array_sha256, verify_arrays


def test_every_catalog_entry_records_both_splits():
    assert set(RECORDED) == set(DATASETS)
    for name, splits in RECORDED.items():
        assert set(splits) == {"train", "test"}, name
        for digests in splits.values():
            assert "labels" in digests and all(len(d) == 64 for d in digests.values())


def test_shipped_assets_are_verified(tmp_path, monkeypatch):
    arrays = assets.syndigits_assets()
    assert arrays["glyphs"].shape == (30, 10, 64, 64) and arrays["glyphs"].dtype == np.uint8
    assert not arrays["glyphs"].flags.writeable
    changed = dict(arrays, glyphs=arrays["glyphs"].copy())
    changed["glyphs"][3, 4, 30, 30] ^= 1
    np.savez_compressed(tmp_path / "syndigits.npz", **changed)
    monkeypatch.setattr(assets, "ASSET_DIR", tmp_path)
    assets.syndigits_assets.cache_clear()
    try:
        with pytest.raises(DataMismatchError, match=r"array 'glyphs' differs .* set PYRO_MM_ALLOW_DATA_MISMATCH=1"):
            assets.syndigits_assets()
        (tmp_path / "syndigits.npz").unlink()
        with pytest.raises(FileNotFoundError, match="reinstall pyro_mm"):
            assets.syndigits_assets()
    finally:
        assets.syndigits_assets.cache_clear()


def test_a_mismatch_names_the_first_differing_array_the_cpu_and_versions(tmp_path, monkeypatch):
    arrays = {"a": np.arange(3), "b": np.ones(2), "c": np.zeros(1)}
    expected = {name: array_sha256(a) for name, a in arrays.items()}
    verify_arrays(arrays, expected, "toy")
    expected["b"] = expected["c"] = "0" * 64
    with pytest.raises(DataMismatchError) as error:
        cached_arrays(tmp_path / "toy.npz", lambda: arrays, expected, "toy")
    message = str(error.value)
    assert "array 'b' differs" in message and "'c'" not in message
    assert "numpy" in message and "torch" in message and "torch threads" in message
    assert not (tmp_path / "toy.npz").exists()  # a refused build is not cached
    monkeypatch.setenv("PYRO_MM_ALLOW_DATA_MISMATCH", "1")
    with pytest.warns(UserWarning, match="used anyway"):
        cached_arrays(tmp_path / "toy.npz", lambda: arrays, expected, "toy")
    assert (tmp_path / "toy.npz").exists()


def test_a_default_build_is_held_against_its_record(make, tmp_path, monkeypatch):
    """The 10 000 test pairs of CaptionedDigits, built here, equal their recorded digests; a
    record that disagrees stops the build."""
    make(CaptionedDigits, root=tmp_path / "a", split="test")
    wrong = json.loads(json.dumps(RECORDED))
    wrong["captioned-digits"]["test"]["image"] = "0" * 64
    monkeypatch.setattr("pyro_mm.data.checksums.RECORDED", wrong)
    with pytest.raises(DataMismatchError, match=r"CaptionedDigits test .* array 'image' differs"):
        make(CaptionedDigits, root=tmp_path / "b", split="test")


_BUILD = """
import json, sys, torch
torch.set_num_threads(int(sys.argv[1]))
from pyro_mm.data import CaptionedDigits, MNISTSynDigits
from pyro_mm.data.polymnist import TranslatedPolyMNIST
sets = {"syndigits": MNISTSynDigits("test", size=300, pairings=2), "translated": TranslatedPolyMNIST("test", size=300),
        "captions": CaptionedDigits("test", size=300)}
print(json.dumps({name: data.content_hash for name, data in sets.items()}))
"""


def _hashes(tmp_path, tag, mnist_dir, threads, **env):
    """Content hashes of three small builds in a fresh process, cache and home directory."""
    home = tmp_path / tag / "home"
    home.mkdir(parents=True, exist_ok=True)
    environment = {"PATH": "/usr/bin:/bin", "HOME": str(home), "PYRO_MM_DATA_DIR": str(tmp_path / tag / "cache"),
                   "PYRO_MM_MNIST_DIR": str(mnist_dir), "PYRO_MM_PROGRESS": "0", **env}
    out = subprocess.run([sys.executable, "-c", _BUILD, str(threads)], env=environment, capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_builds_are_the_same_on_every_kernel_thread_count_and_font_set(tmp_path, mnist_dir):
    reference = _hashes(tmp_path, "two-threads", mnist_dir, 2)
    assert _hashes(tmp_path, "one-thread", mnist_dir, 1) == reference
    # torch's scalar kernels stand in for another CPU's vector units
    assert _hashes(tmp_path, "scalar", mnist_dir, 2, ATEN_CPU_CAPABILITY="default") == reference
    # a font in ~/.fonts (a bundled one under a new name: a new font to a font scan) changes nothing
    import matplotlib

    fonts = tmp_path / "font" / "home" / ".fonts"
    fonts.mkdir(parents=True)
    shutil.copy(f"{matplotlib.get_data_path()}/fonts/ttf/DejaVuSerif-Bold.ttf", fonts / "ExtraSerif.ttf")
    assert _hashes(tmp_path, "font", mnist_dir, 2) == reference
