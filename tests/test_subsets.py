"""Subset families: availability, renormalised weights, unbiased sub-sampling."""

import pytest
import torch

from pyro_mm.subsets import SubsetFamily, power_set, singletons


def test_availability_and_renormalised_weights():
    family = power_set(3)
    observed = torch.tensor([[1, 1, 1], [1, 0, 1], [0, 1, 0]], dtype=torch.bool)
    avail = family.available(observed)
    assert avail.sum(0).tolist() == [7, 3, 1]
    w = family.renormalised_weights(observed, torch.float64)
    assert torch.allclose(w.sum(0), torch.ones(3, dtype=torch.float64))
    assert torch.equal(w > 0, avail)


@pytest.mark.parametrize("family", [power_set(4), singletons(4), SubsetFamily([(0,), (1, 2), (0, 3), (1,), (2,), (3,)], [1, 2, 3, 1, 1, 1], 4)],
                         ids=["power_set", "singletons", "weighted"])
def test_sampled_subsets_follow_the_renormalised_weights(family):
    torch.manual_seed(0)
    observed = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 1], [0, 1, 1, 0]], dtype=torch.bool)
    subsets, weights = family.sample(observed, 2)
    assert subsets.shape == (2, 3, 4) and torch.allclose(weights, torch.full((2, 3), 0.5))
    n = 20000
    subsets, _ = family.sample(observed.repeat(n, 1), 1)
    members = family.members()
    # frequency of every member per observation pattern vs ω̃
    hits = (subsets[0][:, None, :] == members[None]).all(-1).double()  # [n*3, C]
    freq = hits.reshape(n, 3, -1).mean(0).T  # [C, 3]
    expected = family.renormalised_weights(observed, torch.float64)
    assert torch.allclose(freq, expected, atol=0.015)
    assert not (subsets[0] & ~observed.repeat(n, 1)).any()


def test_more_subsets_than_exist_is_an_error():
    with pytest.raises(ValueError, match="only 3 subsets"):
        singletons(3).sample(torch.ones(2, 3, dtype=torch.bool), 4)
    with pytest.raises(ValueError, match="positive integer"):
        power_set(3).sample(torch.ones(2, 3, dtype=torch.bool), 0)
