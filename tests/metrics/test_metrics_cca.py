import pytest
import torch

from pyro_mm.metrics.cca import canonical_correlations, cca_correlation, held_out_cca_correlation


def test_self_is_one_and_independent_noise_is_zero():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(5000, 6, generator=gen) @ torch.randn(6, 6, generator=gen)
    assert cca_correlation(x, x, k=1) == pytest.approx(1.0, abs=1e-6)
    assert cca_correlation(x, x, k=6) == pytest.approx(1.0, abs=1e-3)  # ridge: slightly below 1
    y = torch.randn(5000, 4, generator=gen)
    assert cca_correlation(x, y, k=1) < 0.08
    assert cca_correlation(x, y, k=4) < 0.05


def test_shared_signal_and_flattening():
    gen = torch.Generator().manual_seed(1)
    signal = torch.randn(4000, 2, generator=gen)
    x = torch.cat([signal, torch.randn(4000, 2, generator=gen)], 1).reshape(4000, 2, 2)
    y = signal @ torch.randn(2, 3, generator=gen) + 0.01 * torch.randn(4000, 3, generator=gen)
    rho = canonical_correlations(x, y)
    assert rho.shape == (3,)
    assert rho[0] > 0.99 and rho[1] > 0.99 and rho[2] < 0.08
    assert cca_correlation(x, y, k=2) == pytest.approx(rho[:2].mean().item())


def test_bad_inputs():
    with pytest.raises(ValueError, match="different numbers of samples"):
        cca_correlation(torch.randn(10, 2), torch.randn(11, 2))
    with pytest.raises(ValueError, match="at least two samples"):
        cca_correlation(torch.randn(1, 2), torch.randn(1, 2))
    with pytest.raises(ValueError, match="k must lie"):
        cca_correlation(torch.randn(10, 2), torch.randn(10, 3), k=3)


def test_held_out_correlations_are_not_inflated_by_the_fit():
    """Many features, few pairs: in sample, independent views look correlated; out of sample they
    score ≈ 0, and a shared signal of known correlation 1/sqrt(1.25) is recovered."""
    gen = torch.Generator().manual_seed(2)
    x, y = torch.randn(1000, 64, generator=gen), torch.randn(1000, 64, generator=gen)
    assert cca_correlation(x, y, k=5) > 0.3
    assert abs(held_out_cca_correlation(x, y, k=5)) < 0.05
    z = torch.randn(1000, 3, generator=gen)
    x = torch.cat([z, torch.randn(1000, 61, generator=gen)], 1)
    y = torch.cat([z + 0.5 * torch.randn(1000, 3, generator=gen), torch.randn(1000, 61, generator=gen)], 1)
    assert held_out_cca_correlation(x, y, k=3) == pytest.approx(1.25 ** -0.5, abs=0.05)
    with pytest.raises(ValueError, match="at least four pairs"):
        held_out_cca_correlation(torch.randn(3, 2), torch.randn(3, 2))
