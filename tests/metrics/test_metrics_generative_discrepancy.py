"""The generative discrepancy at the true parameters equals the closed forms."""

import torch

from pyro_mm.batch import MultimodalBatch
from pyro_mm.linear_gaussian import LinearGaussianModel
from pyro_mm.metrics import generative_discrepancy


def test_at_the_true_model_it_reports_the_data_likelihood_and_the_gap():
    lg = LinearGaussianModel.random([3, 3], z_dim=2, seed=0)
    x = lg.sample(300, torch.Generator().manual_seed(0))
    x.pop("z")
    out = generative_discrepancy(lg.modalities(), MultimodalBatch(x), [[0], [1]])
    assert abs(out["learned_log_likelihood"] - lg.log_likelihood(x).mean().item()) < 1e-6
    assert abs(out["subsampling_gap"] - 0.5 * (lg.subset_gap([0]) + lg.subset_gap([1]))) < 1e-9
    assert generative_discrepancy(lg.modalities(), MultimodalBatch(x))["subsampling_gap"] is None
