"""Importance-sampled likelihoods against linear-Gaussian closed forms, with Pareto k̂."""

import torch

from pyro_mm.batch import MultimodalBatch
from pyro_mm.guides import ProductOfExpertsGuide
from pyro_mm.linear_gaussian import LinearGaussianModel
from pyro_mm.metrics import conditional_log_likelihood, log_likelihood
from pyro_mm.models import SharedLatentModel


def _setup(missing=False):
    lg = LinearGaussianModel.random([3, 4], z_dim=2, seed=0)
    x = lg.sample(40, torch.Generator().manual_seed(1))
    x.pop("z")
    mask = torch.ones(40, 2, dtype=torch.bool)
    if missing:
        mask[::3, 1] = False
    mods = lg.modalities()
    return lg, x, mask, mods, SharedLatentModel(mods, 2).double()


def test_exact_posterior_gives_the_closed_form_with_small_khat():
    for missing in (False, True):
        lg, x, mask, mods, model = _setup(missing)
        out = log_likelihood(model, ProductOfExpertsGuide(mods), MultimodalBatch(x, mask), num_particles=200,
                             chunk_size=64)
        assert torch.allclose(out["log_likelihood"], lg.log_likelihood_masked(x, mask), atol=1e-6)
        assert (out["khat"] < 0.7).all()


def test_a_reasonable_proposal_converges_and_a_too_narrow_one_is_flagged():
    lg, x, mask, mods, model = _setup()
    exact = lg.log_likelihood(x)
    with torch.no_grad():
        for m in mods:
            m.encoder.log_scale.add_(0.4)  # a proposal 1.5x wider than the posterior
    out = log_likelihood(model, ProductOfExpertsGuide(mods), MultimodalBatch(x, mask), num_particles=2000,
                         chunk_size=500)
    assert (out["log_likelihood"] - exact).abs().mean() < 0.1 and (out["log_likelihood"] <= exact + 0.3).all()
    assert (out["khat"] < 0.7).float().mean() > 0.9
    with torch.no_grad():
        for m in mods:
            m.encoder.log_scale.sub_(2.9)  # then 12x narrower than the posterior
    bad = log_likelihood(model, ProductOfExpertsGuide(mods), MultimodalBatch(x, mask), num_particles=2000,
                         chunk_size=500)
    assert (bad["khat"] > 0.7).float().mean() > 0.9


def test_conditional_likelihood_with_the_exact_posterior_matches_the_closed_form():
    lg, x, mask, mods, model = _setup()
    out = conditional_log_likelihood(model, ProductOfExpertsGuide(mods), MultimodalBatch(x, mask), "x1", ["x0"],
                                     num_particles=4000, chunk_size=1000)
    exact = lg.log_likelihood(x) - lg.log_likelihood(x, [0])
    assert torch.allclose(out["log_likelihood"], exact, atol=0.1)
