"""Closed-form checks of every bound on multimodal linear-Gaussian models (float64).

In a linear-Gaussian model log p(X), every posterior and every sub-sampling gap Δ_S are known
exactly (pyro_mm.linear_gaussian), so the bounds can be checked against numbers, not trends.
"""

import pyro
import pytest
import torch
from pyro.infer import SVI
from pyro.optim import ClippedAdam

from pyro_mm.batch import MultimodalBatch
from pyro_mm.guides import (
    MixtureOfExpertsGuide,
    MixtureOfProductsGuide,
    ProductOfExpertsGuide,
    SubsetMixtureGuide,
)
from pyro_mm.infer import TraceMixture_ELBO, TraceMVAE_ELBO
from pyro_mm.likelihoods import Normal
from pyro_mm.linear_gaussian import LinearGaussianModel, OptimalSubsetMixture
from pyro_mm.modality import Modality
from pyro_mm.models import SharedLatentModel
from pyro_mm.nets import LinearDecoder, LinearEncoder
from pyro_mm.subsets import full_set, power_set, singletons

MISSING = [False, True]
MISSING_IDS = ["complete", "incomplete"]


def _data(lg, n, missing, seed=0):
    x = lg.sample(n, torch.Generator().manual_seed(seed))
    x.pop("z")
    mask = torch.ones(n, lg.num_modalities, dtype=torch.bool)
    if missing:  # cycle through patterns: all observed, first missing, second missing, ...
        for m in range(lg.num_modalities):
            mask[m + 1 :: lg.num_modalities + 1, m] = False
    return x, mask, MultimodalBatch(x, mask)


def _model(lg):
    mods = lg.modalities()
    return mods, SharedLatentModel(mods, lg.z_dim).double()


@pytest.fixture
def lg():
    return LinearGaussianModel.random([3, 4, 3], z_dim=2, seed=1)


@pytest.mark.parametrize("missing", MISSING, ids=MISSING_IDS)
def test_poe_guide_with_exact_experts_gives_log_likelihood(lg, missing):
    x, mask, batch = _data(lg, 500, missing)
    mods, model = _model(lg)
    bound = TraceMixture_ELBO().bound(model, ProductOfExpertsGuide(mods), batch)
    exact = lg.log_likelihood_masked(x, mask)
    assert torch.allclose(bound, exact, atol=1e-6, rtol=0)


@pytest.mark.parametrize("missing", MISSING, ids=MISSING_IDS)
def test_mvae_objective_with_exact_experts_is_a_sum_of_log_likelihoods(lg, missing):
    """Each MVAE term ELBO_S(x_S) uses the exact posterior p(z | x_S), so it equals log p(x_S):
    L_MVAE = log p(X_o) + Σ_{m observed} log p(x_m)."""
    x, mask, batch = _data(lg, 300, missing)
    mods, model = _model(lg)
    bound = TraceMVAE_ELBO().bound(model, ProductOfExpertsGuide(mods), batch)
    expected = lg.log_likelihood_masked(x, mask)
    for m in range(lg.num_modalities):
        single = torch.zeros_like(mask)
        single[:, m] = True
        expected = expected + torch.where(mask[:, m], lg.log_likelihood_masked(x, single), 0.0)
    assert torch.allclose(bound, expected, atol=1e-6, rtol=0)


def _misspecified(mods, inflate=1.8, shift=0.4):
    with torch.no_grad():
        for m in mods:
            m.encoder.log_scale.add_(torch.log(torch.tensor(inflate, dtype=torch.float64)))
            m.encoder.linear.bias.add_(shift)
    return mods


@pytest.mark.parametrize("missing", MISSING, ids=MISSING_IDS)
@pytest.mark.parametrize("guide_cls,density", [
    (ProductOfExpertsGuide, "mixture"),
    (MixtureOfExpertsGuide, "mixture"),
    (MixtureOfExpertsGuide, "subset"),
    (MixtureOfProductsGuide, "subset"),
], ids=["poe", "moe-mixture", "moe-subset", "mopoe-subset"])
def test_iwae_bounds_stay_below_log_likelihood_and_tighten_with_particles(lg, guide_cls, density, missing):
    x, mask, batch = _data(lg, 4000, missing, seed=2)
    mods = _misspecified(lg.modalities())
    model = SharedLatentModel(mods, lg.z_dim).double()
    guide = guide_cls(mods)
    exact = lg.log_likelihood_masked(x, mask)
    gaps, errors = [], []
    for K in (1, 4, 32):
        gap = TraceMixture_ELBO(num_particles=K, density=density).bound(model, guide, batch) - exact
        gaps.append(gap.mean().item())
        errors.append(gap.std().item() / len(gap) ** 0.5)
        assert gaps[-1] < 3 * errors[-1], f"K={K}: bound exceeds log p(X) by {gaps[-1]:.4f}"
    for (a, ea), (b, eb) in zip(zip(gaps, errors), zip(gaps[1:], errors[1:])):
        assert b > a + 3 * (ea ** 2 + eb ** 2) ** 0.5, gaps


@pytest.mark.parametrize("missing", MISSING, ids=MISSING_IDS)
@pytest.mark.parametrize("family_name", ["singletons", "power_set"])
def test_subsampled_mixture_bound_equals_log_likelihood_minus_closed_form_gap(lg, family_name, missing):
    """At the true decoders with each subset's optimal Gaussian encoder, the data average of the
    sub-sampled mixture bound is E log p(X) − Σ_S ω̃_S Δ_S (docs/objectives.md)."""
    x, mask, batch = _data(lg, 40000, missing, seed=3)
    mods, model = _model(lg)
    family = {"singletons": singletons, "power_set": power_set}[family_name](lg.num_modalities)
    guide = SubsetMixtureGuide(mods, family, mixture=OptimalSubsetMixture)
    gap = TraceMixture_ELBO(density="subset").bound(model, guide, batch) - lg.log_likelihood_masked(x, mask)
    subsets = [row.nonzero().flatten().tolist() for row in family.members()]
    patterns, which = torch.unique(mask, dim=0, return_inverse=True)
    per_pattern = torch.tensor([
        lg.subsampling_gap(subsets, given=row.nonzero().flatten().tolist()) for row in patterns
    ], dtype=torch.float64)
    expected = per_pattern[which]
    assert expected.mean() > 0.1  # the cap is real for these models
    se = (gap + expected).std().item() / len(gap) ** 0.5
    assert gap.mean().item() == pytest.approx(-expected.mean().item(), abs=4 * se)


def test_full_set_mixture_bound_with_optimal_encoder_is_exact(lg):
    x, mask, batch = _data(lg, 500, missing=False)
    mods, model = _model(lg)
    guide = SubsetMixtureGuide(mods, full_set(lg.num_modalities), mixture=OptimalSubsetMixture)
    bound = TraceMixture_ELBO(density="subset").bound(model, guide, batch)
    assert torch.allclose(bound, lg.log_likelihood(x), atol=1e-6, rtol=0)
    assert lg.subsampling_gap([[0, 1, 2]]) == pytest.approx(0.0, abs=1e-12)


def _train(lg_true, guide_cls, elbo, x, steps=1000, seed=0):
    torch.manual_seed(seed)
    pyro.clear_param_store()
    d = [a.shape[0] for a in lg_true.A]
    mods = [Modality(n, (k,), LinearEncoder(k, lg_true.z_dim).double(), LinearDecoder(lg_true.z_dim, k).double(),
                     Normal(1.0, learn_scale=True).double()) for n, k in zip(lg_true.names, d)]
    model = SharedLatentModel(mods, lg_true.z_dim).double()
    svi = SVI(model, guide_cls(mods), ClippedAdam({"lr": 0.05, "lrd": 0.997}), loss=elbo)
    batch = MultimodalBatch(x)
    for _ in range(steps):
        svi.step(batch)
    return LinearGaussianModel.from_modalities(mods).log_likelihood(x).mean().item()


def test_training_with_the_singleton_mixture_bound_learns_a_worse_generative_model():
    """Daunhawer et al.'s generative-quality gap in closed form: the exact log-likelihood of the
    model learned with the singleton (sub-sampled) mixture bound falls below that of the model
    learned with the full-set bound, which recovers the data's own log-likelihood."""
    pyro.enable_validation(False)
    lg_true = LinearGaussianModel.random([3, 3], z_dim=2, seed=3)
    x = lg_true.sample(500, torch.Generator().manual_seed(1))
    x.pop("z")
    data_ll = lg_true.log_likelihood(x).mean().item()
    full = _train(lg_true, ProductOfExpertsGuide, TraceMixture_ELBO(), x)
    single = _train(lg_true, MixtureOfExpertsGuide, TraceMixture_ELBO(density="subset"), x)
    assert full == pytest.approx(data_ll, abs=0.03)
    assert single < full - 0.05
