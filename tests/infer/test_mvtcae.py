"""MVTCAE against closed forms (float64).

On a linear-Gaussian model the objective has a closed-form expectation for any Gaussian encoders:
the reconstruction E_q log p(x_m | z) at the product of the observed experts, and Gaussian KLs to
every expert and to the prior. The Monte Carlo objective is held to it within its standard error.
At α = 0 and β = 1 it is the ELBO of the product of experts: with experts whose product (without
the prior expert) is the exact posterior its expectation is log p(X); for α > 0 it is no lower
bound, and a test shows it above log p(X).
"""

import pytest
import torch
from infer.test_jmvae import (COMPLETE, INCOMPLETE, check_placeholders_change_nothing, kl, linear_data,
                               missing_modality_gradients, monte_carlo, perturb, prior_kl, product, reconstruction)
from mm_helpers import small_batch, small_modalities

from pyro_mm.batch import MultimodalBatch
from pyro_mm.guides import PrivateLatentGuide, ProductOfExpertsGuide, UnimodalGuide
from pyro_mm.infer.trace_mvtcae_elbo import TraceMVTCAE_ELBO
from pyro_mm.linear_gaussian import LinearGaussianModel
from pyro_mm.models import SharedLatentModel

pytestmark = pytest.mark.usefixtures("float64")


def mvtcae_expectation(mods, guide, batch, alpha, beta):
    """(M − α)/M E_q Σ_{n∈o} log p(x_n | z) − β [(α/M) Σ_{m∈o} KL(q ‖ q_m) + (1 − α) KL(q ‖ p)],
    q the product of the observed experts without the prior expert, M the number of modalities."""
    with torch.no_grad():
        loc, scale, observed = guide.experts(batch)
    M = len(mods)
    q_loc, q_scale = product(loc, scale, observed, prior=False)
    to_experts = torch.where(observed, kl(q_loc[:, None], q_scale[:, None], loc, scale), 0.0).sum(-1)
    divergence = alpha / M * to_experts + (1 - alpha) * prior_kl(q_loc, q_scale)
    return (M - alpha) / M * reconstruction(mods, batch, q_loc, q_scale) - beta * divergence


def _model_and_guide(mods, z_dim):
    return SharedLatentModel(mods, z_dim).double(), ProductOfExpertsGuide(mods, prior_expert=False)


@pytest.mark.parametrize("K", [1, 3])
@pytest.mark.parametrize("patterns", [COMPLETE, INCOMPLETE], ids=["complete", "incomplete"])
def test_monte_carlo_objective_matches_its_closed_form_expectation(patterns, K):
    """Perturbed encoders, α = 5/6, β ≠ 1, a rescaled likelihood, rows observing one, two or three
    modalities (M = 3 in the weights throughout): within 4.5 standard errors, per sample."""
    lg = LinearGaussianModel.random([3, 4, 3], z_dim=2, seed=6)
    _, _, batch = linear_data(lg, 12, patterns)
    mods = lg.posterior_modalities()
    mods[0].likelihood_scale = 3.0
    perturb([m.encoder for m in mods], seed=2)
    model, guide = _model_and_guide(mods, lg.z_dim)
    mean, se = monte_carlo(TraceMVTCAE_ELBO(alpha=5 / 6, beta=2.5, num_particles=K), model, guide, batch, 2000)
    expected = mvtcae_expectation(mods, guide, batch, alpha=5 / 6, beta=2.5)
    assert ((mean - expected).abs() < 4.5 * se).all(), ((mean - expected) / se).tolist()


def _exact_product_experts(lg):
    """Experts of precision Λ_m + I/M and mean Λ_m μ_m(x_m) / (Λ_m + 1/M): their product without the
    prior expert is the exact posterior p(z | X) of complete rows."""
    mods = lg.modalities()
    M = len(mods)
    with torch.no_grad():
        for m in mods:
            precision = (-2 * m.encoder.log_scale).exp()
            shrink = precision / (precision + 1.0 / M)
            m.encoder.linear.weight.mul_(shrink[:, None])
            m.encoder.linear.bias.mul_(shrink)
            m.encoder.log_scale.copy_(-0.5 * (precision + 1.0 / M).log())
    return mods


def test_at_alpha_zero_it_is_the_elbo_of_the_product_and_exact_for_the_exact_posterior():
    lg = LinearGaussianModel.random([3, 4, 3], z_dim=2, seed=7)
    x, _, batch = linear_data(lg, 20, COMPLETE)
    mods = _exact_product_experts(lg)
    model, guide = _model_and_guide(mods, lg.z_dim)
    loc, scale, observed = guide.experts(batch)
    q_loc, q_scale = product(loc, scale, observed, prior=False)
    assert torch.allclose(q_loc, lg.posterior_mean(x, [0, 1, 2]))
    assert torch.allclose(q_scale ** 2, torch.diagonal(lg.posterior_cov([0, 1, 2])).expand_as(q_scale))
    mean, se = monte_carlo(TraceMVTCAE_ELBO(alpha=0.0), model, guide, batch, 2000)
    assert ((mean - lg.log_likelihood(x)).abs() < 4.5 * se).all()


def test_for_alpha_above_zero_it_is_not_a_lower_bound():
    """The same exact posterior at the reference's α = 5/6: the expected objective exceeds log p(X)."""
    lg = LinearGaussianModel.random([3, 4, 3], z_dim=2, seed=7)
    x, _, batch = linear_data(lg, 20, COMPLETE)
    mods = _exact_product_experts(lg)
    model, guide = _model_and_guide(mods, lg.z_dim)
    mean, se = monte_carlo(TraceMVTCAE_ELBO(), model, guide, batch, 1000)
    expected = mvtcae_expectation(mods, guide, batch, alpha=5 / 6, beta=1.0)
    assert ((mean - expected).abs() < 4.5 * se).all()
    assert (expected > lg.log_likelihood(x) + 1.0).all()


def test_a_row_observing_one_modality_has_no_kl_to_its_own_expert():
    """q = q_m: L = (M − α)/M E log p(x_m | z) − β (1 − α) KL(q_m ‖ p); the other modalities' experts
    (whatever their values) do not count."""
    mods = small_modalities(3)
    model, guide = SharedLatentModel(mods, 3), ProductOfExpertsGuide(mods, prior_expert=False)
    batch = small_batch(mods, batch_size=6)
    batch = batch.with_mask(torch.tensor([[False, True, False]]).expand(6, 3))
    elbo = TraceMVTCAE_ELBO(alpha=0.5, beta=2.0)
    elbo.bound(model, guide, batch)
    loc, scale, _ = guide.experts(batch)
    assert torch.allclose(elbo.last_terms["divergence"], (1 - 0.5) * prior_kl(loc[:, 1], scale[:, 1]).mean())


# --- the masking invariants ---------------------------------------------------------------------------
def test_a_missing_modality_gets_exactly_zero_gradient():
    mods = small_modalities(3)
    missing_modality_gradients(SharedLatentModel(mods, 3), ProductOfExpertsGuide(mods, prior_expert=False), TraceMVTCAE_ELBO(num_particles=2), mods)


def test_placeholder_values_of_missing_entries_change_nothing():
    mods = small_modalities(3)
    check_placeholders_change_nothing(SharedLatentModel(mods, 3), ProductOfExpertsGuide(mods, prior_expert=False), TraceMVTCAE_ELBO, mods)


# --- argument errors ----------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs,match", [
    ({"alpha": -0.1}, "alpha"), ({"alpha": 1.5}, "alpha"), ({"alpha": float("nan")}, "alpha"),
    ({"alpha": None}, "alpha"),
    ({"beta": -1.0}, "beta"), ({"num_particles": 1.5}, "num_particles"),
])
def test_invalid_arguments_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TraceMVTCAE_ELBO(**kwargs)


def test_a_guide_without_gaussian_experts_is_refused():
    mods = small_modalities(2)
    batch = small_batch(mods)
    with pytest.raises(TypeError, match="Gaussian experts"):
        TraceMVTCAE_ELBO().loss(SharedLatentModel(mods, 3), PrivateLatentGuide(mods, 3, 0), batch)
    one = mods[:1]
    with pytest.raises(TypeError, match="built from the modalities' experts"):
        TraceMVTCAE_ELBO().loss(SharedLatentModel(one, 3), UnimodalGuide(one[0]), MultimodalBatch({"m0": batch["m0"]}))
