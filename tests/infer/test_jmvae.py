"""JMVAE-KL against closed forms (float64).

On a linear-Gaussian model every term of the objective is closed form for any Gaussian encoders:
E_q log p(x_m | z) (below), KL(q ‖ p) and KL(q(z|X) ‖ q(z|x_m)). The Monte Carlo objective is held
to that expectation within its standard error; with the exact joint and unimodal posteriors it is
log p(X) − α Σ_m KL(p(z|X) ‖ p(z|x_m)) for every draw (zero variance). Also: the guide's
posterior family, the missing-data rule (the joint encoder learns from complete rows only, the
unimodal encoders from the α term and the incomplete rows), the masking invariants and the
argument errors.

The closed forms here are shared with ``test_mmjsd.py`` and ``test_mvtcae.py``.
"""

import math

import pyro
import pytest
import torch
from mm_helpers import small_batch, small_modalities
from torch.distributions import MultivariateNormal, Normal, kl_divergence

from pyro_mm.batch import MultimodalBatch
from pyro_mm.distributions import product_of_experts
from pyro_mm.guides import ProductOfExpertsGuide, UnimodalGuide
from pyro_mm.guides.joint_encoder import JointEncoder, JointEncoderGuide, JointPosterior
from pyro_mm.infer import ContractError
from pyro_mm.infer.trace_jmvae_elbo import TraceJMVAE_ELBO
from pyro_mm.linear_gaussian import LinearGaussianModel
from pyro_mm.models import SharedLatentModel

pytestmark = pytest.mark.usefixtures("float64")


# --- closed forms on linear-Gaussian data (shared with test_mmjsd.py and test_mvtcae.py) -------------
def expected_log_likelihood(modality, x, loc, scale):
    """s_m E_{N(loc, scale²)} log N(x; W z + c, σ² I) of a LinearDecoder with a Normal likelihood,
    ``[..., B]``: −(d/2) log 2πσ² − (‖x − Wμ − c‖² + Σ_j s_j² ‖W_{:,j}‖²) / 2σ², times s_m."""
    W, c = modality.decoder.linear.weight.detach(), modality.decoder.linear.bias.detach()
    sigma = modality.likelihood.scale.detach()
    d = W.shape[0]
    residual = ((x - loc @ W.T - c) ** 2).sum(-1)
    spread = (scale ** 2 * (W ** 2).sum(0)).sum(-1)
    value = -0.5 * d * torch.log(2 * math.pi * sigma ** 2) - (residual + spread) / (2 * sigma ** 2)
    return modality.likelihood_scale * value


def kl(loc_p, scale_p, loc_q, scale_q):
    """KL of diagonal Gaussians, summed over the last dimension (torch's, not pyro_mm's)."""
    return kl_divergence(Normal(loc_p, scale_p), Normal(loc_q, scale_q)).sum(-1)


def prior_kl(loc, scale):
    return kl(loc, scale, torch.zeros_like(loc), torch.ones_like(scale))


def product(loc, scale, include, prior: bool):
    """The product of the included experts ``[B, M, D]`` (and of N(0, I)), by precisions."""
    precision = torch.where(include[..., None], scale ** -2, torch.zeros_like(scale))
    total = precision.sum(-2) + float(prior)
    return (precision * loc).sum(-2) / total, total ** -0.5


def reconstruction(modalities, batch, loc, scale):
    """Σ_{n observed} s_n E_{N(loc, scale²)} log p(x_n | z), ``[..., B]``."""
    return sum(torch.where(batch.mask[:, i], expected_log_likelihood(m, batch[m.name], loc, scale), 0.0)
               for i, m in enumerate(modalities))


def monte_carlo(elbo, model, guide, batch, repeats):
    """The bound of every sample of ``batch`` over ``repeats`` independent draws (the batch tiled):
    its mean and standard error, ``[B]`` each."""
    tiled = MultimodalBatch({n: batch[n].repeat(repeats, 1) for n in batch.names}, batch.mask.repeat(repeats, 1))
    draws = elbo.bound(model, guide, tiled).reshape(repeats, -1)
    return draws.mean(0), draws.std(0) / repeats ** 0.5


def linear_data(lg, n, patterns, seed=0):
    """``n`` samples of ``lg`` under observation masks cycling through ``patterns`` (lists of bools)."""
    x = lg.sample(n, torch.Generator().manual_seed(seed))
    x.pop("z")
    mask = torch.tensor(patterns, dtype=torch.bool).repeat(n // len(patterns) + 1, 1)[:n]
    return x, mask, MultimodalBatch(x, mask)


def perturb(modules, seed=0, size=0.3):
    """Move every parameter of ``modules`` off the exact values."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in modules:
            for p in module.parameters():
                p.add_(size * torch.randn(p.shape, generator=g, dtype=p.dtype))


COMPLETE = [[True, True, True]]
INCOMPLETE = [[True, True, True], [False, True, True], [True, False, True], [True, True, False], [False, False, True],
              [True, False, False]]


# --- JMVAE's fixtures -----------------------------------------------------------------------------
class ExactJoint(torch.nn.Module):
    """p(z | X) of a linear-Gaussian model: the product of N(0, I) and the exact likelihood experts."""

    def __init__(self, lg):
        super().__init__()
        self.names = lg.names
        self.encoders = torch.nn.ModuleDict({m.name: m.encoder for m in lg.modalities()})

    def forward(self, batch):
        locs, scales = zip(*(self.encoders[n](batch[n]) for n in self.names))
        include = torch.ones(batch.batch_size, len(self.names), dtype=torch.bool)
        return product_of_experts(torch.stack(locs, -2), torch.stack(scales, -2), include, True)


def exact_jmvae(lg):
    """The true decoders, the exact unimodal posteriors p(z | x_m) and the exact joint p(z | X)."""
    mods = lg.posterior_modalities()
    return mods, SharedLatentModel(mods, lg.z_dim).double(), JointEncoderGuide(mods, lg.z_dim, ExactJoint(lg))


def posterior_kl(lg, x, given, m):
    """KL(p(z | x_given) ‖ p(z | x_m)) per sample."""
    full = MultivariateNormal(lg.posterior_mean(x, given), lg.posterior_cov(given))
    single = MultivariateNormal(lg.posterior_mean(x, [m]), lg.posterior_cov([m]))
    return kl_divergence(full, single)


@pytest.mark.parametrize("K", [1, 3])
@pytest.mark.parametrize("alpha", [0.0, 0.7])
def test_exact_posteriors_give_log_likelihood_minus_the_joint_kls_for_every_draw(alpha, K):
    lg = LinearGaussianModel.random([3, 4, 3], z_dim=2, seed=1)
    x, _, batch = linear_data(lg, 40, COMPLETE)
    mods, model, guide = exact_jmvae(lg)
    expected = lg.log_likelihood(x) - alpha * sum(posterior_kl(lg, x, [0, 1, 2], m) for m in range(3))
    for _ in range(3):
        bound = TraceJMVAE_ELBO(alpha=alpha, num_particles=K).bound(model, guide, batch)
        assert torch.allclose(bound, expected, atol=1e-9, rtol=0)


def test_two_modalities_with_one_missing_use_its_exact_posterior_and_give_its_log_likelihood():
    lg = LinearGaussianModel.random([3, 4], z_dim=2, seed=2)
    x, mask, batch = linear_data(lg, 30, [[True, True], [True, False], [False, True]])
    mods, model, guide = exact_jmvae(lg)
    bound = TraceJMVAE_ELBO(alpha=0.5).bound(model, guide, batch)
    complete = mask.all(-1)
    expected = lg.log_likelihood_masked(x, mask) - torch.where(
        complete, 0.5 * (posterior_kl(lg, x, [0, 1], 0) + posterior_kl(lg, x, [0, 1], 1)), 0.0)
    assert torch.allclose(bound, expected, atol=1e-9, rtol=0)


def jmvae_expectation(mods, guide, batch, alpha, beta):
    """E L_b: the ELBO of the joint encoder (complete rows) or of the product of the observed
    experts without the prior expert (the others), minus α Σ_m KL(q(z|X) ‖ q(z|x_m)) on complete rows."""
    with torch.no_grad():
        expert_loc, expert_scale, observed = guide.experts(batch)
        joint_loc, joint_scale = guide.joint_encoder(batch)
    complete = observed.all(-1)
    poe_loc, poe_scale = product(expert_loc, expert_scale, observed, prior=False)
    loc = torch.where(complete[:, None], joint_loc, poe_loc)
    scale = torch.where(complete[:, None], joint_scale, poe_scale)
    joint_kl = kl(joint_loc[:, None], joint_scale[:, None], expert_loc, expert_scale).sum(-1)
    return (reconstruction(mods, batch, loc, scale) - beta * prior_kl(loc, scale)
            - alpha * torch.where(complete, joint_kl, 0.0))


@pytest.mark.parametrize("patterns", [COMPLETE, INCOMPLETE], ids=["complete", "incomplete"])
def test_monte_carlo_objective_matches_its_closed_form_expectation(patterns):
    """Any encoders (perturbed unimodal ones, the default MLP joint encoder), β ≠ 1, a rescaled
    likelihood: the mean over draws is within 4.5 standard errors of the closed form, per sample."""
    lg = LinearGaussianModel.random([3, 4, 3], z_dim=2, seed=3)
    _, _, batch = linear_data(lg, 12, patterns)
    mods = lg.posterior_modalities()
    mods[1].likelihood_scale = 2.0
    perturb([m.encoder for m in mods])
    model = SharedLatentModel(mods, lg.z_dim).double()
    guide = JointEncoderGuide(mods, lg.z_dim, hidden=(8,)).double()
    elbo = TraceJMVAE_ELBO(alpha=0.4, beta=2.5)
    mean, se = monte_carlo(elbo, model, guide, batch, 4000)
    expected = jmvae_expectation(mods, guide, batch, alpha=0.4, beta=2.5)
    assert ((mean - expected).abs() < 4.5 * se).all(), ((mean - expected) / se).tolist()


# --- the posterior family ---------------------------------------------------------------------------
def test_the_joint_posterior_is_the_joint_encoder_on_complete_subsets_and_a_product_elsewhere():
    g = torch.Generator().manual_seed(0)
    B, M, D = 4, 3, 2
    expert_loc, expert_scale = torch.randn(B, M, D, generator=g), torch.rand(B, M, D, generator=g) + 0.5
    joint_loc, joint_scale = torch.randn(B, D, generator=g), torch.rand(B, D, generator=g) + 0.5
    observed = torch.tensor([[True, True, True], [True, False, True], [False, True, False], [True, True, True]])
    posterior = JointPosterior(joint_loc, joint_scale, expert_loc, expert_scale, observed)
    full = torch.ones(B, M, dtype=torch.bool)
    pair = torch.tensor([True, True, False]).expand(B, M)
    for subsets in (full, pair, observed):
        loc, scale = posterior.component_params(subsets)
        poe_loc, poe_scale = product(expert_loc, expert_scale, subsets & observed, prior=False)
        joint = (subsets & observed).all(-1, keepdim=True)
        assert torch.allclose(loc, torch.where(joint, joint_loc, poe_loc))
        assert torch.allclose(scale, torch.where(joint, joint_scale, poe_scale))
    assert torch.allclose(posterior.mean[0], joint_loc[0]) and torch.allclose(posterior.mean[2], expert_loc[2, 1])
    expanded = posterior.expand((5, B))
    assert expanded.batch_shape == (5, B) and torch.equal(expanded.joint_loc, joint_loc)


def test_the_default_joint_encoder_copies_every_unimodal_encoder():
    mods = small_modalities(2)
    encoder = JointEncoder(mods, 3, hidden=(8,))
    assert set(encoder.encoders) == {"m0", "m1"}
    for m in mods:
        for a, b in zip(encoder.encoders[m.name].parameters(), m.encoder.parameters()):
            assert torch.equal(a, b) and a is not b


class _Truncated(torch.nn.Module):
    """A joint encoder returning one latent dimension too few."""

    def __init__(self, joint):
        super().__init__()
        self.joint = joint

    def forward(self, batch):
        return tuple(t[:, :-1] for t in self.joint(batch))


def test_a_joint_encoder_of_the_wrong_size_is_named():
    mods = small_modalities(2)
    batch = small_batch(mods)
    with pytest.raises(ContractError, match="built for z_dim = 4"):
        JointEncoderGuide(mods, 4, hidden=(8,)).posterior(batch)
    guide = JointEncoderGuide(mods, 3, _Truncated(JointEncoder(mods, 3, hidden=(8,))))
    with pytest.raises(ContractError, match=r"the joint encoder returned loc of shape \[12, 2\]"):
        guide.posterior(batch)


# --- the missing-data rule and the masking invariants -------------------------------------------------
def _grads(model, guide, elbo, batch, seed=1):
    pyro.set_rng_seed(seed)
    loss = elbo.differentiable_loss(model, guide, batch)
    names = [f"model.{n}" for n, _ in model.named_parameters()] + [f"guide.{n}" for n, _ in guide.named_parameters()]
    params = [*model.parameters(), *guide.parameters()]
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    return loss.detach(), {n: torch.zeros_like(p) if g is None else g for n, p, g in zip(names, params, grads)}


def missing_modality_gradients(model, guide, elbo, mods):
    """The gradients with modality m1 missing from every sample of a batch (shared with
    ``test_mmjsd.py`` and ``test_mvtcae.py``), after checking that m1's decoder and encoder get
    exactly zero."""
    batch = small_batch(mods, missing=0.3)
    mask = batch.mask.clone()
    mask[:, 1] = False
    mask[~mask.any(-1), 0] = True
    _, grads = _grads(model, guide, elbo, batch.with_mask(mask))
    silent = [n for n in grads if ".m1." in n]
    assert any("decoders.m1" in n for n in silent) and any("encoders.m1" in n for n in silent)
    assert all(torch.equal(grads[n], torch.zeros_like(grads[n])) for n in silent), \
        [n for n in silent if grads[n].abs().sum() > 0]
    assert any(grads[n].abs().sum() > 0 for n in grads if n.startswith("guide.encoders.m0."))
    return grads


def check_placeholders_change_nothing(model, guide, make_elbo, mods):
    """Any value in the missing entries (zero, NaN, huge): the same loss and gradients, bit for bit
    (shared with ``test_mmjsd.py`` and ``test_mvtcae.py``)."""
    batch = small_batch(mods, missing=0.35)
    results = []
    for fill in (0.0, float("nan"), 1e6):
        data = {n: torch.where(batch.mask[:, i, None], batch[n], torch.tensor(fill)) for i, n in enumerate(batch.names)}
        results.append(_grads(model, guide, make_elbo(), MultimodalBatch(data, batch.mask)))
    (loss0, grads0), *others = results
    for loss, grads in others:
        assert torch.equal(loss, loss0) and all(torch.equal(grads[n], grads0[n]) for n in grads)


def _small_jmvae(num=3):
    mods = small_modalities(num)
    return mods, SharedLatentModel(mods, 3), JointEncoderGuide(mods, 3, hidden=(8,))


def test_a_missing_modality_gets_exactly_zero_gradient_and_no_complete_row_leaves_the_joint_encoder_untouched():
    mods, model, guide = _small_jmvae()
    grads = missing_modality_gradients(model, guide, TraceJMVAE_ELBO(alpha=0.5), mods)
    joint = [n for n in grads if "joint_encoder" in n]
    assert any("head" in n for n in joint) and all(torch.equal(grads[n], torch.zeros_like(grads[n])) for n in joint)


def test_the_joint_encoder_learns_from_complete_rows_only():
    """Changing every modality of the incomplete rows leaves the joint encoder's gradient unchanged."""
    mods, model, guide = _small_jmvae()
    batch = small_batch(mods, missing=0.3, seed=2)
    complete = batch.mask.all(-1)
    assert complete.any() and not complete.all()
    changed = MultimodalBatch({n: torch.where(complete[:, None], batch[n], 1 - batch[n] if i == 0 else batch[n] + 3)
                               for i, n in enumerate(batch.names)}, batch.mask)
    _, grads = _grads(model, guide, TraceJMVAE_ELBO(), batch)
    _, grads_changed = _grads(model, guide, TraceJMVAE_ELBO(), changed)
    joint = [n for n in grads if "joint_encoder" in n]
    assert joint and all(grads[n].abs().sum() > 0 for n in joint)
    for n in joint:
        assert torch.allclose(grads[n], grads_changed[n], rtol=1e-12, atol=1e-14), n
    assert any(not torch.allclose(grads[n], grads_changed[n]) for n in grads if n.startswith("guide.encoders."))


def test_on_complete_rows_the_unimodal_encoders_learn_through_alpha_alone():
    mods, model, guide = _small_jmvae()
    batch = small_batch(mods, missing=0.0)
    unimodal = [n for n in _grads(model, guide, TraceJMVAE_ELBO(), batch)[1] if n.startswith("guide.encoders.")]
    for alpha, learns in ((0.0, False), (0.5, True)):
        _, grads = _grads(model, guide, TraceJMVAE_ELBO(alpha=alpha), batch)
        assert all(bool(grads[n].abs().sum() > 0) == learns for n in unimodal), alpha


def test_placeholder_values_of_missing_entries_change_nothing():
    mods, model, guide = _small_jmvae()
    check_placeholders_change_nothing(model, guide, TraceJMVAE_ELBO, mods)


# --- argument errors ----------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs,match", [
    ({"alpha": -0.1}, "alpha"), ({"alpha": float("nan")}, "alpha"), ({"alpha": float("inf")}, "alpha"),
    ({"alpha": True}, "alpha"), ({"alpha": "0.1"}, "alpha"), ({"beta": -1.0}, "beta"), ({"num_particles": 0},
                                                                                          "num_particles"),
])
def test_invalid_arguments_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TraceJMVAE_ELBO(**kwargs)


def test_a_guide_without_a_joint_encoder_is_refused():
    mods = small_modalities(2)
    batch = small_batch(mods)
    with pytest.raises(TypeError, match="joint posterior"):
        TraceJMVAE_ELBO().loss(SharedLatentModel(mods, 3), ProductOfExpertsGuide(mods), batch)
    one = mods[:1]
    with pytest.raises(TypeError, match="built from the modalities' experts"):
        TraceJMVAE_ELBO().loss(SharedLatentModel(one, 3), UnimodalGuide(one[0]), MultimodalBatch({"m0": batch["m0"]}))
