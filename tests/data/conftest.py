"""Fixtures for the data tests: MNIST is obtained once (real cache), generated sets go to tmp."""

import os
from pathlib import Path

import pytest

from pyro_mm.data.cache import data_dir
from pyro_mm.data.mnist import load_mnist


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """A directory holding verified MNIST IDX files (fetched into the user cache if needed)."""
    load_mnist()
    env = os.environ.get("PYRO_MM_MNIST_DIR")
    return Path(env) if env else data_dir() / "mnist"


@pytest.fixture
def make(tmp_path, mnist_dir):
    """``make(cls, **kw)`` builds a data set in a fresh tmp cache from the verified MNIST files."""

    def build(cls, root=None, **kwargs):
        return cls(root=root or tmp_path, source_dir=mnist_dir, **kwargs)

    return build
