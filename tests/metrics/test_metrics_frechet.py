import pytest
import torch

from pyro_mm.metrics.frechet import classifier_frechet_distance, frechet_distance


def test_self_distance_is_zero_and_noise_increases_it():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(3000, 8, generator=gen) @ torch.randn(8, 8, generator=gen)
    assert frechet_distance(x, x) == pytest.approx(0.0, abs=1e-8)
    noise = torch.randn(x.shape, generator=gen)
    distances = [frechet_distance(x, x + s * noise) for s in (0.1, 0.3, 1.0, 3.0)]
    assert distances[0] > 0
    assert all(a < b for a, b in zip(distances, distances[1:]))


def test_matches_the_closed_form_for_diagonal_gaussians():
    gen = torch.Generator().manual_seed(1)
    mu_1, mu_2 = torch.tensor([0.0, 1.0, -1.0]), torch.tensor([0.5, 1.0, 0.0])
    sd_1, sd_2 = torch.tensor([1.0, 2.0, 0.5]), torch.tensor([1.5, 1.0, 0.5])
    x = mu_1 + sd_1 * torch.randn(200_000, 3, generator=gen)
    y = mu_2 + sd_2 * torch.randn(200_000, 3, generator=gen)
    expected = (mu_1 - mu_2).square().sum() + (sd_1 - sd_2).square().sum()
    assert frechet_distance(x, y) == pytest.approx(expected.item(), rel=0.02)


def test_classifier_features_distance(mnist_classifier, mnist_test):
    images, _ = mnist_test
    real, other = images[:500], images[500:]
    gen = torch.Generator().manual_seed(0)
    same = classifier_frechet_distance(mnist_classifier, real, other)
    blurred = classifier_frechet_distance(
        mnist_classifier, real, (other + 0.5 * torch.rand(other.shape, generator=gen)).clamp(0, 1)
    )
    noise = classifier_frechet_distance(mnist_classifier, real, torch.rand(other.shape, generator=gen))
    assert same < blurred < noise


def test_bad_inputs():
    with pytest.raises(ValueError, match="N >= 2"):
        frechet_distance(torch.zeros(1, 3), torch.zeros(5, 3))
    with pytest.raises(ValueError, match="feature sizes differ"):
        frechet_distance(torch.randn(5, 3), torch.randn(5, 4))
    with pytest.raises(ValueError, match="NaN"):
        frechet_distance(torch.full((5, 3), float("nan")), torch.randn(5, 3))
