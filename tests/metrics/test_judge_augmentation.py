"""The judges' training images: real images made faint and blurred, reproducibly from a seed."""

import pytest
import torch

from pyro_mm.metrics.judge_augmentation import CONTRAST, degrade


def _images(n=64):
    return torch.rand(n, 3, 16, 16, generator=torch.Generator().manual_seed(0))


def test_the_same_generator_state_gives_the_same_images():
    x = _images()
    a = degrade(x, torch.Generator().manual_seed(5))
    b = degrade(x, torch.Generator().manual_seed(5))
    c = degrade(x, torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_images_stay_in_the_unit_interval_keep_their_mean_colour_and_lose_contrast():
    x = _images()
    y = degrade(x, torch.Generator().manual_seed(1))
    assert y.shape == x.shape and y.min() >= 0 and y.max() <= 1
    # fainter: every image's spread is at most its own (a blur and a contrast factor ≤ 1 both shrink it)
    assert (y.std(dim=(1, 2, 3)) <= x.std(dim=(1, 2, 3)) + 1e-6).all()
    # the contrast factor keeps each channel's mean away from the zero-padded border
    inner = (slice(None), slice(None), slice(2, -2), slice(2, -2))
    assert torch.allclose(y[inner].mean(), x[inner].mean(), atol=0.02)


def test_a_constant_image_is_unchanged_away_from_the_border():
    x = torch.full((4, 1, 12, 12), 0.7)
    y = degrade(x, torch.Generator().manual_seed(0))
    torch.testing.assert_close(y[:, :, 2:-2, 2:-2], x[:, :, 2:-2, 2:-2])


def test_the_contrast_range_is_a_fraction():
    assert 0 < CONTRAST[0] < CONTRAST[1] <= 1


def test_a_batch_that_is_not_images_is_named():
    with pytest.raises(ValueError, match=r"\[N, C, H, W\]"):
        degrade(torch.rand(4, 28, 28), torch.Generator())
