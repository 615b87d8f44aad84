"""MNIST-label: an MNIST image and its digit as two modalities; exact, class-balanced numbers of
labelled samples (PairedCount); a user's MultimodalDataset with a label modality and the errors
that name what is wrong with it."""

import numpy as np
import pytest
import torch

from pyro_mm.data import MNISTLabel, MultimodalDataset, PairedCount, preview
from pyro_mm.data.catalog import DATASETS, default_scheme, load_dataset, observation_scheme
from pyro_mm.data.checksums import RECORDED
from pyro_mm.data.integrity import array_sha256
from pyro_mm.data.mnist import mnist_split
from pyro_mm.data.observation import PairedFraction, paired_count_masks


def test_images_and_labels_are_mnist_s_own(make, mnist_dir):
    data = make(MNISTLabel, split="test", size=300, seed=4)
    images, labels = mnist_split("test", source_dir=mnist_dir)
    assert data.names == ("image", "label") and len(data) == 300
    assert data.likelihoods == {"image": "bernoulli", "label": "categorical"}
    assert data.event_shapes == {"image": (1, 28, 28), "label": ()} and data.num_categories == {"label": 10}
    index = data.mnist_index.numpy()
    assert np.all(np.diff(index) > 0) and index.max() < 10_000  # distinct images, in MNIST order
    batch = data.batch(torch.arange(300))
    assert batch["label"].dtype == torch.long and batch["label"].shape == (300,)
    assert torch.equal(batch["label"], data.labels)
    assert torch.equal(data.labels, torch.from_numpy(labels[index].astype(np.int64)))
    assert torch.equal(batch["image"], torch.from_numpy(images[index][:, None]).float() / 255)
    item = data[0]
    assert item["data"]["label"].shape == () and item["label"] == int(item["data"]["label"])
    assert make(MNISTLabel, split="test", size=300, seed=4).content_hash == data.content_hash
    assert make(MNISTLabel, split="test", size=300, seed=5).content_hash != data.content_hash


def test_the_default_build_is_recorded_and_is_the_mnist_split(make, mnist_dir):
    """The whole test split, built here, passes its recorded digests (a build that differs is
    refused), and the record is MNIST's own images and labels in their order."""
    assert "mnist-label" in DATASETS and set(RECORDED["mnist-label"]) == {"train", "test"}
    data = make(MNISTLabel, split="test")
    images, labels = mnist_split("test", source_dir=mnist_dir)
    record = RECORDED["mnist-label"]["test"]
    assert record["image"] == array_sha256(images[:, None])
    assert record["labels"] == array_sha256(labels.astype(np.int64))
    assert record["mnist_index"] == array_sha256(np.arange(10_000, dtype=np.int64))
    assert len(data) == 10_000 and torch.equal(data.mnist_index, torch.arange(10_000))


@pytest.mark.parametrize("scheme", ["s", "t", "alternate"])
def test_paired_count_keeps_exactly_count_balanced_per_class(scheme):
    labels = torch.arange(1000) % 10
    masks = paired_count_masks(1000, 600, scheme, seed=3, labels=labels)
    paired = masks.all(1)
    assert int(paired.sum()) == 600 and masks.any(1).all()
    assert labels[paired].bincount().tolist() == [60] * 10
    if scheme == "s":  # semi-supervised: every image, 600 labels
        assert masks[:, 0].all() and int(masks[:, 1].sum()) == 600
    other = paired_count_masks(1000, 600, scheme, seed=4, labels=labels)
    assert not torch.equal(other, masks) and torch.equal(paired_count_masks(1000, 600, scheme, 3, labels), masks)
    uneven = paired_count_masks(1000, 35, scheme, seed=3, labels=labels).all(1)
    assert int(uneven.sum()) == 35 and sorted(labels[uneven].bincount().tolist()) == [3] * 5 + [4] * 5
    plain = paired_count_masks(1000, 17, scheme, seed=3)
    assert int(plain.all(1).sum()) == 17


def test_paired_count_errors_name_what_does_not_fit():
    labels = torch.tensor([0] * 8 + [1] * 2)
    with pytest.raises(ValueError, match="needs 3 of class 1, which has only 2 samples"):
        paired_count_masks(10, 6, "s", labels=labels)
    with pytest.raises(ValueError, match="11 paired samples asked of a data set of 10 samples"):
        paired_count_masks(10, 11, "s")
    with pytest.raises(ValueError, match="must be an integer >= 0, got 2.5"):
        PairedCount(2.5)
    with pytest.raises(ValueError, match="unknown observation scheme 'x'"):
        PairedCount(3, "x")
    with pytest.raises(ValueError, match="defined for two modalities, the data set has 3"):
        PairedCount(3).masks(10, 3)


def test_labelled_subsets_through_the_catalog(make):
    train = make(MNISTLabel, split="train", size=500)
    assert default_scheme("mnist-label", 2) == "s" and default_scheme("mnist-syndigits", 2) == "alternate"
    assert default_scheme("polymnist", 5) == "random"
    scheme = observation_scheme("s", 0.5, 2, count=50, seed=1)
    assert isinstance(scheme, PairedCount) and scheme.balanced
    labelled = train.with_observation(scheme)
    seen = labelled.masks[:, 1]
    assert labelled.masks[:, 0].all() and int(seen.sum()) == 50
    assert labelled.labels[seen].bincount().tolist() == [5] * 10
    again = train.with_observation(observation_scheme("s", 0.5, 2, count=50, seed=2))
    assert not torch.equal(again.masks, labelled.masks)  # another seed, another labelled subset
    hidden = labelled[int(torch.nonzero(~seen)[0])]
    assert int(hidden["data"]["label"]) == 0 and not bool(hidden["mask"][1])
    assert isinstance(observation_scheme("t", 0.3, 2), PairedFraction)
    with pytest.raises(ValueError, match="not for 'random'"):
        observation_scheme("random", 0.5, 2, count=5)


def test_mnist_label_is_in_the_catalog_and_previews(make, tmp_path, monkeypatch, mnist_dir):
    monkeypatch.setenv("PYRO_MM_DATA_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("PYRO_MM_MNIST_DIR", str(mnist_dir))
    data = load_dataset("mnist-label", "test", size=12, observation=PairedCount(4, "s"))
    assert isinstance(data, MNISTLabel) and int(data.masks[:, 1].sum()) == 4
    assert preview(data, tmp_path / "sheet.png", n=6).stat().st_size > 0


def _user_set(labels, **kwargs):
    images = torch.rand(len(labels), 1, 8, 8)
    return MultimodalDataset({"image": images, "label": labels}, {"image": "bernoulli", "label": "categorical"},
                             torch.zeros(len(labels), dtype=torch.long), **kwargs)


def test_a_users_label_modality_and_what_is_wrong_with_it():
    labels = torch.tensor([0, 3, 9, 2])
    data = _user_set(labels, num_categories={"label": 10})
    assert data.event_shapes["label"] == () and data.num_categories == {"label": 10}
    assert torch.equal(data.batch(torch.arange(4))["label"], labels)
    assert _user_set(labels).num_categories == {"label": 10}  # one more than the largest id
    assert _user_set(labels, num_categories={"label": 12}).num_categories == {"label": 12}
    assert _user_set(labels.to(torch.uint8)).batch(torch.arange(4))["label"].dtype == torch.long
    with pytest.raises(TypeError, match=r"modality 'label': a categorical modality stores integer category ids .* "
                                        r"got torch.float32 \(x.long\(\)\)"):
        _user_set(labels.float())
    with pytest.raises(TypeError, match=r"'label': .*\(one-hot or probability vectors\? .* x.argmax\(-1\)"):
        _user_set(torch.nn.functional.one_hot(labels, 10).float())
    with pytest.raises(ValueError, match=r"modality 'label': category ids must lie in \[0, 5\) \(num_categories=5\), "
                                         "got 9"):
        _user_set(labels, num_categories={"label": 5})
    with pytest.raises(ValueError, match="modality 'label': category ids .* must be >= 0, got -1"):
        _user_set(torch.tensor([0, -1, 2, 3]))
    with pytest.raises(ValueError, match=r"num_categories given for \['image'\], which are not categorical"):
        _user_set(labels, num_categories={"image": 10})
    with pytest.raises(ValueError, match="modality 'label': num_categories must be an integer >= 2, got 1"):
        _user_set(labels, num_categories={"label": 1})
    with pytest.raises(TypeError, match=r"labels must be a 1-D tensor of integer class labels \[N\], got torch.float"):
        MultimodalDataset({"x": torch.rand(4, 3)}, {"x": "bernoulli"}, torch.zeros(4))
    with pytest.raises(ValueError, match=r"no likelihood given for modalities \['label'\]"):
        MultimodalDataset({"x": torch.rand(4, 3), "label": labels}, {"x": "bernoulli"}, labels)
