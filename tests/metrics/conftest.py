"""Fixtures for the metrics tests: small MNIST subsets, a quickly trained classifier, small
captioned-digit sets."""

import os

import numpy as np
import pytest
import torch

from pyro_mm.data.base import MultimodalDataset
from pyro_mm.data.mnist import load_mnist
from pyro_mm.metrics.classifiers import train_classifier


@pytest.fixture(scope="session")
def small_mnist():
    """``small_mnist(split, n)``: the first ``n`` images of a split as a one-modality data set."""
    arrays = load_mnist()

    def build(split: str, n: int) -> MultimodalDataset:
        images = torch.from_numpy(np.ascontiguousarray(arrays[f"{split}_images"][:n, None]))
        labels = torch.from_numpy(arrays[f"{split}_labels"][:n].astype(np.int64))
        return MultimodalDataset({"mnist": images}, {"mnist": "bernoulli"}, labels)

    return build


@pytest.fixture(scope="session")
def mnist_test(small_mnist):
    """600 MNIST test images: ``(images [600, 1, 28, 28] in [0, 1], labels [600])``."""
    test = small_mnist("test", 600)
    return test.modality("mnist", torch.arange(len(test))), test.labels


@pytest.fixture(scope="session")
def mnist_classifier(small_mnist):
    """An MNIST classifier trained for a few seconds (2000 images, 3 passes)."""
    return train_classifier(small_mnist("train", 2000), "mnist", epochs=3, progress=False, seed=0)


@pytest.fixture(scope="session")
def captions(tmp_path_factory):
    """Small captioned-digit train and test sets, generated in a temporary cache."""
    from pyro_mm.data import CaptionedDigits
    from pyro_mm.data.cache import data_dir

    root = tmp_path_factory.mktemp("captions")
    source = os.environ.get("PYRO_MM_MNIST_DIR") or data_dir() / "mnist"
    load_mnist()  # makes sure the verified files are in the user cache
    return (CaptionedDigits("train", size=600, root=root, source_dir=source),
            CaptionedDigits("test", size=300, root=root, source_dir=source))
