import numpy as np
import pytest
import torch

from pyro_mm.metrics.coherence import CoherenceResult
from pyro_mm.metrics.plots import coherence_bars, distance_matrix_heatmap, w2_histograms
from pyro_mm.metrics.relatedness import (
    class_distance_matrix,
    histogram_data,
    paired_unpaired_distances,
    wasserstein2_diag,
)


def test_closed_form_matches_sorted_sample_estimate():
    gen = torch.Generator().manual_seed(0)
    loc_1, loc_2 = torch.randn(4, generator=gen), torch.randn(4, generator=gen)
    scale_1, scale_2 = torch.rand(4, generator=gen) + 0.2, torch.rand(4, generator=gen) + 0.2
    n = 200_000
    # for product measures the optimal coupling is the 1-D (sorted) coupling in every dimension
    a = (loc_1 + scale_1 * torch.randn(n, 4, generator=gen, dtype=torch.float64)).sort(0).values
    b = (loc_2 + scale_2 * torch.randn(n, 4, generator=gen, dtype=torch.float64)).sort(0).values
    monte_carlo = (a - b).square().mean(0).sum()
    closed = wasserstein2_diag(loc_1, scale_1, loc_2, scale_2, squared=True)
    assert closed.item() == pytest.approx(monte_carlo.item(), rel=0.02)
    assert wasserstein2_diag(loc_1, scale_1, loc_2, scale_2).item() == pytest.approx(closed.sqrt().item())


def test_batched_and_broadcast():
    loc = torch.randn(5, 3)
    scale = torch.rand(5, 3) + 0.1
    w = wasserstein2_diag(loc, scale, loc[:1], scale[:1])
    assert w.shape == (5,) and w[0] == 0
    for i in range(5):
        direct = ((loc[i] - loc[0]).square().sum() + (scale[i] - scale[0]).square().sum()).sqrt()
        assert w[i].item() == pytest.approx(direct.item(), rel=1e-6)


def _posteriors(n=600, d=4, seed=0):
    """Class-dependent posteriors of two modalities: ``b`` is ``a`` plus a little noise."""
    gen = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 10
    centres = 3 * torch.randn(10, d, generator=gen)
    loc_a = centres[labels] + torch.randn(n, d, generator=gen)
    loc_b = loc_a + 0.1 * torch.randn(n, d, generator=gen)
    scale_a = torch.rand(n, d, generator=gen) + 0.1
    scale_b = scale_a * (1 + 0.1 * torch.rand(n, d, generator=gen))
    return loc_a, scale_a, loc_b, scale_b, labels


def test_paired_closer_than_unpaired_and_histograms():
    loc_a, scale_a, loc_b, scale_b, labels = _posteriors()
    gen = torch.Generator().manual_seed(0)
    for by_class in (None, labels):
        d = paired_unpaired_distances(loc_a, scale_a, loc_b, scale_b, by_class, generator=gen)
        assert (d.partners != torch.arange(len(labels))).all()
        if by_class is not None:
            assert (labels[d.partners] != labels).all()
        assert d.paired.mean() * 5 < d.unpaired.mean()
    edges, p, u = histogram_data(d.paired, d.unpaired, bins=20)
    assert edges.shape == (21,) and p.shape == u.shape == (20,)
    assert np.sum(p * np.diff(edges)) == pytest.approx(1.0)
    assert np.sum(u * np.diff(edges)) == pytest.approx(1.0)


def test_class_matrix_matches_brute_force():
    loc_a, scale_a, loc_b, scale_b, labels = _posteriors(n=200)
    matrix = class_distance_matrix(loc_a, scale_a, labels, loc_b, scale_b, labels, chunk=37)
    all_pairs = wasserstein2_diag(loc_a[:, None], scale_a[:, None], loc_b[None], scale_b[None])
    for r in range(10):
        for c in range(10):
            expected = all_pairs[labels == r][:, labels == c].mean()
            assert matrix[r, c].item() == pytest.approx(expected.item(), rel=1e-9)
    assert (matrix.diagonal() < matrix.masked_fill(torch.eye(10, dtype=torch.bool), float("inf")).min(1).values).all()


def test_plots_write_pngs(tmp_path):
    loc_a, scale_a, loc_b, scale_b, labels = _posteriors(n=100)
    d = paired_unpaired_distances(loc_a, scale_a, loc_b, scale_b)
    matrix = class_distance_matrix(loc_a, scale_a, labels, loc_b, scale_b, labels)
    result = CoherenceResult({(("a",), "b"): 0.9}, {}, {}, {1: 0.9, 2: 0.95})
    paths = [
        w2_histograms(d.paired, d.unpaired, tmp_path / "w2.png"),
        distance_matrix_heatmap(matrix, tmp_path / "matrix.png"),
        coherence_bars({"model 1": result, "model 2": result}, tmp_path / "bars" / "coherence.png"),
    ]
    for path in paths:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bad_inputs():
    with pytest.raises(ValueError, match="same shape"):
        wasserstein2_diag(torch.zeros(3, 2), torch.ones(3, 3), torch.zeros(2), torch.ones(2))
    with pytest.raises(ValueError, match="non-negative"):
        wasserstein2_diag(torch.zeros(2), -torch.ones(2), torch.zeros(2), torch.ones(2))
    with pytest.raises(ValueError, match="latent sizes"):
        wasserstein2_diag(torch.zeros(2), torch.ones(2), torch.zeros(3), torch.ones(3))
    with pytest.raises(ValueError, match="at least two samples"):
        paired_unpaired_distances(torch.zeros(1, 2), torch.ones(1, 2), torch.zeros(1, 2), torch.ones(1, 2))
    with pytest.raises(ValueError, match="labels must lie"):
        class_distance_matrix(torch.zeros(3, 2), torch.ones(3, 2), torch.tensor([0, 1, 10]),
                              torch.zeros(3, 2), torch.ones(3, 2), torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match="square"):
        distance_matrix_heatmap(np.zeros((2, 3)), "unused.png")
