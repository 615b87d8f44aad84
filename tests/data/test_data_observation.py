"""Partial observation: paired fraction and schemes, missing at random, masks through loaders."""

import pytest
import torch

from pyro_mm.data.captions import CaptionedDigits
from pyro_mm.data.observation import (
    MissingAtRandom,
    PairedFraction,
    missing_at_random_masks,
    paired_masks,
)
from pyro_mm.data.polymnist import PolyMNIST


@pytest.mark.parametrize("n", [1, 7, 1000, 1001])
@pytest.mark.parametrize("f", [0.0, 0.1, 0.333, 0.5, 1.0])
@pytest.mark.parametrize("scheme", ["s", "t", "alternate"])
def test_paired_fraction_and_scheme(n, f, scheme):
    m = paired_masks(n, f, scheme, seed=3)
    assert m.shape == (n, 2) and m.dtype == torch.bool
    assert m.any(1).all()
    paired = m.all(1)
    assert abs(int(paired.sum()) - f * n) <= 1  # within one sample
    s_only, t_only = m[:, 0] & ~m[:, 1], m[:, 1] & ~m[:, 0]
    unpaired = n - int(paired.sum())
    if scheme == "s":
        assert int(s_only.sum()) == unpaired and not t_only.any()
    elif scheme == "t":
        assert int(t_only.sum()) == unpaired and not s_only.any()
    else:
        assert abs(int(s_only.sum()) - int(t_only.sum())) <= 1
        assert not (s_only & t_only).any()  # disjoint originals (rows)


def test_paired_masks_deterministic_by_seed():
    first = paired_masks(500, 0.3, "alternate", 1)
    assert torch.equal(first, paired_masks(500, 0.3, "alternate", 1))
    assert not torch.equal(first, paired_masks(500, 0.3, "alternate", 2))


@pytest.mark.parametrize("f", [-0.1, 1.5, float("nan")])
def test_fraction_out_of_range(f):
    with pytest.raises(ValueError, match=r"paired fraction f must lie in \[0, 1\]"):
        PairedFraction(f)


def test_unknown_scheme():
    with pytest.raises(ValueError, match="unknown observation scheme 'u'"):
        PairedFraction(0.5, scheme="u")


def test_missing_at_random_rates_and_no_empty_rows():
    m = missing_at_random_masks(20000, 4, [0.0, 0.2, 0.5, 0.9], seed=0)
    assert m.any(1).all()
    rates = 1 - m.float().mean(0)
    assert rates[0] == 0
    assert torch.allclose(rates[1:], torch.tensor([0.2, 0.5, 0.9]), atol=0.03)
    all_missing = missing_at_random_masks(100, 3, 1.0, seed=0)
    assert (all_missing.sum(1) == 1).all()
    with pytest.raises(ValueError, match="missing probabilities"):
        MissingAtRandom(1.2)
    with pytest.raises(ValueError, match="3 missing probabilities"):
        MissingAtRandom([0.1, 0.2, 0.3]).masks(10, 5)


def test_masks_travel_with_items_through_loader(make):
    ds = make(CaptionedDigits, split="test", size=300, observation=PairedFraction(0.2, "alternate"))
    assert int(ds.masks.all(1).sum()) == 60
    seen = []
    for batch in ds.loader(64, shuffle=True, seed=1):
        batch = batch.to("cpu")
        assert batch.mask.dtype == torch.bool
        for j, name in enumerate(batch.names):
            hidden = ~batch.mask[:, j]
            assert (batch[name][hidden] == 0).all()  # the hidden half never leaves the set
        seen.append(batch.mask)
    masks = torch.cat(seen)
    assert masks.shape == (300, 2) and int(masks.all(1).sum()) == 60
    assert not ds[int((~ds.masks[:, 1]).nonzero()[0])]["data"]["text"].any()


def test_observation_validation(make):
    ds = make(PolyMNIST, split="test", num_modalities=3, size=50)
    with pytest.raises(ValueError, match="two modalities"):
        ds.with_observation(PairedFraction(0.5))
    with pytest.raises(ValueError, match="no observed modality"):
        ds.with_observation(torch.zeros(50, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"shape \[50, 3\]"):
        ds.with_observation(torch.ones(50, 2, dtype=torch.bool))
    other = ds.with_observation(MissingAtRandom(0.5, seed=1))
    assert other.masks.any(1).all() and ds.masks.all()
