"""mmJSD against closed forms (float64).

On a linear-Gaussian model the objective as implemented has a closed-form expectation for any
Gaussian encoders: every reconstruction E_{q_m} log p(x_n | z) is closed form, and the JS
divergence to the dynamic prior (a geometric mean of Gaussians, itself Gaussian) is a sum of
Gaussian KLs. The Monte Carlo objective is held to it within its standard error. Not closed form,
and not tested against one: the JS with the arithmetic mixture (the original JS, which the paper
replaces by the geometric mean) and the ELBO of the mixture posterior, KL(q_MoE ‖ p). There is no
log p(X) identity either: mmJSD is not a lower bound, and a test shows it exceeding log p(X).
"""

import math

import pytest
import torch
from infer.test_jmvae import (COMPLETE, INCOMPLETE, check_placeholders_change_nothing, kl, linear_data,
                               missing_modality_gradients, monte_carlo, perturb, reconstruction)
from mm_helpers import small_batch, small_modalities

from pyro_mm.batch import MultimodalBatch
from pyro_mm.guides import MixtureOfExpertsGuide, MixtureOfProductsGuide, PrivateLatentGuide, ProductOfExpertsGuide
from pyro_mm.infer.trace_mmjsd_elbo import TraceMMJSD_ELBO, dynamic_prior, jensen_shannon
from pyro_mm.likelihoods import Normal
from pyro_mm.linear_gaussian import LinearGaussianModel
from pyro_mm.modality import Modality
from pyro_mm.models import SharedLatentModel
from pyro_mm.nets import LinearDecoder, LinearEncoder

pytestmark = pytest.mark.usefixtures("float64")


def js_by_hand(loc, scale, observed):
    """(1/(|o|+1)) [KL(p ‖ f) + Σ_{m∈o} KL(q_m ‖ f)], f the geometric mean by precisions."""
    weight = 1.0 / (observed.sum(-1, keepdim=True) + 1.0)  # [B, 1]
    precision = torch.where(observed[..., None], scale ** -2, torch.zeros_like(scale))
    f_precision = weight * (1.0 + precision.sum(-2))
    f_loc = weight * (precision * loc).sum(-2) / f_precision
    f_scale = f_precision ** -0.5
    to_f = torch.where(observed, kl(loc, scale, f_loc[:, None], f_scale[:, None]), 0.0).sum(-1)
    return weight[:, 0] * (kl(torch.zeros_like(f_loc), torch.ones_like(f_scale), f_loc, f_scale) + to_f)


def mmjsd_expectation(mods, guide, batch, beta):
    """Σ_{m∈o} (1/|o|) Σ_{n∈o} E_{q_m} log p(x_n | z) − β JS."""
    with torch.no_grad():
        loc, scale, observed = guide.experts(batch)
    recon = sum(torch.where(observed[:, m], reconstruction(mods, batch, loc[:, m], scale[:, m]), 0.0)
                for m in range(len(mods))) / observed.sum(-1)
    return recon - beta * js_by_hand(loc, scale, observed)


@pytest.mark.parametrize("K", [1, 3])
@pytest.mark.parametrize("patterns", [COMPLETE, INCOMPLETE], ids=["complete", "incomplete"])
def test_monte_carlo_objective_matches_its_closed_form_expectation(patterns, K):
    """Perturbed encoders and decoders, β ≠ 1, a rescaled likelihood; K draws per expert have the
    expectation of one: within 4.5 standard errors of the closed form, per sample."""
    lg = LinearGaussianModel.random([3, 4, 3], z_dim=2, seed=4)
    _, _, batch = linear_data(lg, 12, patterns)
    mods = lg.posterior_modalities()
    mods[2].likelihood_scale = 0.5
    perturb([m.encoder for m in mods] + [m.decoder for m in mods], seed=1, size=0.2)
    model, guide = SharedLatentModel(mods, lg.z_dim).double(), MixtureOfExpertsGuide(mods)
    mean, se = monte_carlo(TraceMMJSD_ELBO(beta=2.5, num_particles=K), model, guide, batch, 1500)
    expected = mmjsd_expectation(mods, guide, batch, beta=2.5)
    assert ((mean - expected).abs() < 4.5 * se).all(), ((mean - expected) / se).tolist()


def test_encoders_at_the_prior_make_the_dynamic_prior_the_prior_and_the_js_zero():
    lg = LinearGaussianModel.random([3, 4], z_dim=2, seed=5)
    x, mask, batch = linear_data(lg, 30, [[True, True], [True, False], [False, True]])
    mods = lg.posterior_modalities()
    with torch.no_grad():
        for m in mods:
            for p in m.encoder.parameters():
                p.zero_()
    model, guide = SharedLatentModel(mods, lg.z_dim).double(), MixtureOfExpertsGuide(mods)
    loc, scale, observed = guide.experts(batch)
    f_loc, f_scale = dynamic_prior(loc, scale, observed)
    assert torch.equal(f_loc, torch.zeros_like(f_loc)) and torch.allclose(f_scale, torch.ones_like(f_scale))
    assert torch.allclose(jensen_shannon(loc, scale, observed), torch.zeros(30), atol=1e-14)
    # the objective is the prior's expected log-likelihood of the observed modalities
    elbo = TraceMMJSD_ELBO()
    mean, se = monte_carlo(elbo, model, guide, batch, 2000)
    zero, one = torch.zeros(30, lg.z_dim), torch.ones(30, lg.z_dim)
    assert ((mean - reconstruction(mods, batch, zero, one)).abs() < 4.5 * se).all()
    assert elbo.last_terms["jensen_shannon"].abs() < 1e-14


def test_the_dynamic_prior_is_the_weighted_geometric_mean_of_the_prior_and_the_observed_experts():
    """log f(z) − Σ_k π_k log q_k(z) is constant in z (f ∝ Π q_k^{π_k}); missing experts do not count."""
    g = torch.Generator().manual_seed(0)
    loc, scale = torch.randn(3, 3, 2, generator=g), torch.rand(3, 3, 2, generator=g) + 0.3
    observed = torch.tensor([[True, True, True], [True, False, True], [False, True, False]])
    f_loc, f_scale = dynamic_prior(loc, scale, observed)
    z = torch.randn(7, 1, 2, generator=g)
    normal = torch.distributions.Normal
    weights = 1.0 / (observed.sum(-1) + 1.0)
    log_geometric = weights * (normal(0.0, 1.0).log_prob(z).sum(-1) + torch.where(
        observed, normal(loc, scale).log_prob(z[..., None, :]).sum(-1), 0.0).sum(-1))  # [7, B]
    difference = normal(f_loc, f_scale).log_prob(z).sum(-1) - log_geometric
    assert torch.allclose(difference, difference[:1].expand_as(difference), atol=1e-12)


def test_the_js_is_positive_unless_every_expert_is_the_prior_and_ignores_missing_experts():
    g = torch.Generator().manual_seed(1)
    observed = torch.tensor([[True, True, False]])
    loc, scale = torch.randn(1, 3, 2, generator=g), torch.rand(1, 3, 2, generator=g) + 0.3
    js = jensen_shannon(loc, scale, observed)
    assert torch.allclose(js, js_by_hand(loc, scale, observed)) and js > 0
    moved = loc.clone()
    moved[:, 2] += 100.0
    assert torch.equal(jensen_shannon(moved, scale, observed), js)
    equal = loc[:, :1].expand(1, 3, 2)  # every expert alike, but not the prior: the prior's term remains
    assert jensen_shannon(equal, scale[:, :1].expand(1, 3, 2), observed) > 0
    at_prior = jensen_shannon(torch.zeros(1, 3, 2), torch.ones(1, 3, 2), observed)
    assert torch.allclose(at_prior, torch.zeros(1), atol=1e-15)


def test_it_is_not_a_lower_bound_on_the_log_likelihood():
    """x_m = 0.1 z + ε, x = (30, 30), both unimodal experts the exact posterior p(z | X): the ELBO is
    log p(X) = −884.20, and mmJSD −870.80, 13.4 nats above it."""
    a, value = 0.1, 30.0
    lg = LinearGaussianModel([torch.tensor([[a]])] * 2, [torch.zeros(1)] * 2, [1.0, 1.0])
    variance = 1.0 / (1.0 + 2 * a * a)
    mods = []
    for name in lg.names:
        encoder, decoder = LinearEncoder(1, 1).double(), LinearDecoder(1, 1).double()
        with torch.no_grad():  # each encoder gives p(z | X) at x = (30, 30): mean v a (x_0 + x_1)
            encoder.linear.weight.fill_(2 * variance * a)
            encoder.linear.bias.zero_()
            encoder.log_scale.fill_(0.5 * math.log(variance))
            decoder.linear.weight.fill_(a)
            decoder.linear.bias.zero_()
        mods.append(Modality(name, (1,), encoder, decoder, Normal(1.0).double()))
    x = {n: torch.full((1, 1), value) for n in lg.names}
    batch = MultimodalBatch(x)
    mean, se = monte_carlo(TraceMMJSD_ELBO(), SharedLatentModel(mods, 1).double(), MixtureOfExpertsGuide(mods),
                           batch, 4000)
    log_likelihood = lg.log_likelihood(x)
    assert log_likelihood.item() == pytest.approx(-884.20, abs=0.01)
    assert mean.item() == pytest.approx(-870.80, abs=max(0.01, 4.5 * se.item()))
    assert (mean - log_likelihood).item() > 13


# --- the masking invariants ---------------------------------------------------------------------------
def test_a_missing_modality_gets_exactly_zero_gradient():
    mods = small_modalities(3)
    missing_modality_gradients(SharedLatentModel(mods, 3), MixtureOfExpertsGuide(mods), TraceMMJSD_ELBO(num_particles=2), mods)


def test_placeholder_values_of_missing_entries_change_nothing():
    mods = small_modalities(3)
    check_placeholders_change_nothing(SharedLatentModel(mods, 3), MixtureOfExpertsGuide(mods), TraceMMJSD_ELBO, mods)


# --- argument errors ----------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs,match", [({"beta": -1.0}, "beta"), ({"beta": float("nan")}, "beta"),
                                          ({"num_particles": 0}, "num_particles")])
def test_invalid_arguments_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TraceMMJSD_ELBO(**kwargs)


@pytest.mark.parametrize("guide", [ProductOfExpertsGuide, MixtureOfProductsGuide,
                                   lambda mods: PrivateLatentGuide(mods, 3, 0)],
                         ids=["product", "mixture-of-products", "laplace-mixture"])
def test_a_guide_other_than_the_gaussian_mixture_of_experts_is_refused(guide):
    mods = small_modalities(2)
    with pytest.raises(TypeError, match="mixture of the unimodal Gaussian experts"):
        TraceMMJSD_ELBO().loss(SharedLatentModel(mods, 3), guide(mods), small_batch(mods))
