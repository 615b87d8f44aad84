"""MNIST-SynDigits: pairing by label through the recorded indices, pairings per image, fonts."""

import numpy as np
import torch

from pyro_mm.data.assets import syndigits_assets
from pyro_mm.data.mnist import mnist_split
from pyro_mm.data.syndigits import MNISTSynDigits


def test_pairs_share_label_and_pairings(make, mnist_dir):
    ds = make(MNISTSynDigits, split="train", size=400, pairings=5)
    assert len(ds) == 2000 and ds.names == ("mnist", "syndigits")
    assert ds.event_shapes == {"mnist": (1, 28, 28), "syndigits": (3, 32, 32)}
    _, labels = mnist_split("train", source_dir=mnist_dir)
    mnist_labels = torch.from_numpy(labels.astype(np.int64))
    assert (mnist_labels[ds.mnist_index] == ds.labels).all()
    assert (ds.syndigits_labels[ds.syndigits_index] == ds.labels).all()
    # every MNIST image and every SynDigits image is used exactly `pairings` times
    assert set(torch.bincount(ds.mnist_index)[ds.mnist_index.unique()].tolist()) == {5}
    assert set(torch.bincount(ds.syndigits_index).tolist()) == {5}
    # an MNIST image meets 5 different SynDigits partners
    pairs = set(zip(ds.mnist_index.tolist(), ds.syndigits_index.tolist()))
    assert len(pairs) > 0.95 * len(ds)
    item = ds[3]
    assert torch.equal(item["data"]["mnist"][0] * 255, torch.from_numpy(
        mnist_split("train", source_dir=mnist_dir)[0][int(ds.mnist_index[3])]).float())


def test_images_vary_in_style(make):
    ds = make(MNISTSynDigits, split="test", size=300, pairings=1)
    x = ds.modality("syndigits", slice(None))
    assert x.shape == (300, 3, 32, 32) and 0 <= x.min() and x.max() <= 1
    assert x.mean((1, 2, 3)).std() > 0.1  # colours / backgrounds vary
    assert len(ds.syndigits_font.unique()) > len(ds.fonts) // 2
    assert ds.fonts == tuple(syndigits_assets()["fonts"]) and len(ds.fonts) == 30
