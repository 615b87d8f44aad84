"""Default networks: shapes and the colour invariance of standardised image encoders."""

import torch

from pyro_mm.nets import ConvEncoder, standardize_images


def test_standardized_images_have_zero_channel_means_and_unit_spread():
    x = torch.rand(5, 3, 32, 32)
    y = standardize_images(x)
    assert y.mean((-2, -1)).abs().max() < 1e-5
    assert torch.allclose(y.flatten(1).std(1), torch.ones(5), atol=1e-5)


def test_standardized_encoder_ignores_colour_and_brightness():
    torch.manual_seed(0)
    enc = ConvEncoder((3, 32, 32), 8, (16, 16, 16), standardize=True)
    x = torch.rand(4, 3, 32, 32)
    shifted = 0.4 * x + torch.rand(4, 3, 1, 1)  # another contrast and a colour offset per image
    for a, b in zip(enc(x), enc(shifted)):
        assert torch.allclose(a, b, atol=1e-5)
    plain = ConvEncoder((3, 32, 32), 8, (16, 16, 16))
    assert not torch.allclose(plain(x)[0], plain(shifted)[0], atol=1e-3)


def test_flat_image_does_not_divide_by_zero():
    y = standardize_images(torch.full((2, 3, 8, 8), 0.3))
    assert torch.isfinite(y).all() and y.abs().max() < 1e-3
