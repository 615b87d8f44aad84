"""Estimator properties: unbiased sub-sampling, DReG vs IWAE, bad arguments."""

import pyro
import pytest
import torch
from mm_helpers import build, small_batch, small_modalities

from pyro_mm.batch import MultimodalBatch
from pyro_mm.guides import MixtureOfExpertsGuide, MixtureOfProductsGuide, ProductOfExpertsGuide
from pyro_mm.infer import TraceMixture_ELBO, TraceMVAE_ELBO


def _replicated(mods, copies, missing):
    base = small_batch(mods, batch_size=4, missing=missing, seed=2)
    rows = torch.arange(4).repeat(copies)
    return base.select(rows)


@pytest.mark.parametrize("missing", [0.0, 0.3], ids=["complete", "incomplete"])
@pytest.mark.parametrize("guide_cls,density", [(MixtureOfProductsGuide, "subset"), (MixtureOfExpertsGuide, "mixture")],
                         ids=["mopoe", "mmvae"])
def test_num_subsets_is_unbiased_for_the_full_mixture_bound(guide_cls, density, missing):
    """Mean over many independent draws of the k-subset estimate equals the all-subsets bound
    within four standard errors (both are Monte Carlo estimates of the same number)."""
    mods = small_modalities(3)
    model, guide = build(guide_cls, mods)
    batch = _replicated(mods, 6000, missing)
    full = TraceMixture_ELBO(density=density).bound(model, guide, batch).reshape(-1, 4)
    sub = TraceMixture_ELBO(density=density, num_subsets=1).bound(model, guide, batch).reshape(-1, 4)
    diff = sub.mean(0) - full.mean(0)
    se = (sub.var(0) / sub.shape[0] + full.var(0) / full.shape[0]).sqrt()
    assert (diff.abs() < 4 * se).all(), (diff, se)
    assert (sub.var(0) > full.var(0)).any()  # sub-sampling does add variance


def test_sub_sampled_step_cost_does_not_depend_on_the_family_size():
    """With num_subsets fixed, MoPoE on 12 modalities (4095 subsets) builds only k strata."""

    mods = small_modalities(12)
    model, guide = build(MixtureOfProductsGuide, mods)
    batch = small_batch(mods, batch_size=5, missing=0.2)
    elbo = TraceMixture_ELBO(density="subset", num_subsets=2)
    traces = elbo.traces(model, guide, batch)
    assert traces.num_strata == 2
    assert traces.guide_trace.nodes["z"]["value"].shape == (2, 5, 3)  # K = 1: no particle dimension
    assert torch.isfinite(torch.tensor(elbo.loss(model, guide, batch)))


@pytest.mark.parametrize("missing", [0.0, 0.3], ids=["complete", "incomplete"])
@pytest.mark.parametrize("guide_cls,make", [
    (MixtureOfExpertsGuide, lambda e: TraceMixture_ELBO(num_particles=10, estimator=e)),
    (MixtureOfProductsGuide, lambda e: TraceMixture_ELBO(num_particles=10, estimator=e, density="subset")),
    (ProductOfExpertsGuide, lambda e: TraceMVAE_ELBO(num_particles=10, estimator=e)),
], ids=["mmvae", "mopoe", "mvae"])
def test_dreg_and_iwae_agree_in_value(guide_cls, make, missing, float64):
    mods = small_modalities(2)
    model, guide = build(guide_cls, mods)
    batch = small_batch(mods, batch_size=8, missing=missing, seed=3)
    pyro.set_rng_seed(11)
    v_iwae = make("iwae").loss(model, guide, batch)
    pyro.set_rng_seed(11)
    v_dreg = make("dreg").loss(model, guide, batch)
    assert v_iwae == pytest.approx(v_dreg, rel=1e-6)


def _encoder_gradient_variance(model, guide, batch, elbo_for, estimator, draws=60):
    params = list(guide.parameters())
    grads = []
    for seed in range(draws):
        pyro.set_rng_seed(seed)
        loss = elbo_for(estimator).differentiable_loss(model, guide, batch)
        grads.append(torch.cat([g.flatten() for g in torch.autograd.grad(loss, params)]))
    return torch.stack(grads).var(0).sum().item()


@pytest.mark.parametrize("missing", [0.0, 0.3], ids=["complete", "incomplete"])
def test_dreg_lowers_the_encoder_gradient_variance_of_mmvae(missing):
    """MMVAE's stratified IWAE with K = 10: DReG's encoder gradients vary less than IWAE's.
    (For product-of-experts posteriors far from the true posterior, e.g. at initialisation, the
    sticking-the-landing part of DReG can raise the variance instead; see the README.)"""
    mods = small_modalities(2)
    model, guide = build(MixtureOfExpertsGuide, mods)
    batch = small_batch(mods, batch_size=8, missing=missing, seed=3)
    elbo_for = lambda e: TraceMixture_ELBO(num_particles=10, estimator=e)  # noqa: E731
    iwae = _encoder_gradient_variance(model, guide, batch, elbo_for, "iwae")
    dreg = _encoder_gradient_variance(model, guide, batch, elbo_for, "dreg")
    assert dreg < 0.7 * iwae, (dreg, iwae)


@pytest.mark.parametrize("missing", [0.0, 0.3], ids=["complete", "incomplete"])
@pytest.mark.parametrize("K", [1, 5])
def test_dreg_gradient_equals_a_hand_written_doubly_reparameterised_estimator(K, missing, float64):
    """∇φ = Σ_k w̃_k² ∂lw_k/∂z_k ∂z_k/∂φ with lw built from detached guide parameters (K = 1:
    w̃ ≡ 1, the path derivative; the ELBO then runs without a particle dimension)."""
    mods = small_modalities(2)
    model, guide = build(ProductOfExpertsGuide, mods)
    batch = small_batch(mods, batch_size=6, missing=missing, seed=3)
    params = list(guide.parameters())
    pyro.set_rng_seed(3)
    loss = TraceMixture_ELBO(num_particles=K, estimator="dreg").differentiable_loss(model, guide, batch)
    ours = torch.autograd.grad(loss, params)
    pyro.set_rng_seed(3)
    q = guide.posterior(batch)
    z = q.loc + q.scale * torch.randn((K, 1) + tuple(q.loc.shape))
    q_detached = torch.distributions.Normal(q.loc.detach(), q.scale.detach())
    lw = torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(-1) - q_detached.log_prob(z).sum(-1)
    for m in mods:
        log_p = model.likelihood(m.name, z).log_prob(batch[m.name])
        lw = lw + torch.where(batch.observed(m.name), log_p, torch.zeros(()))
    w = lw.softmax(0).detach()
    by_hand = torch.autograd.grad(-(w ** 2 * lw).sum(), params)
    for a, b in zip(ours, by_hand):
        assert torch.allclose(a, b, atol=1e-5)


@pytest.mark.parametrize("make,message", [
    (lambda: TraceMixture_ELBO(num_particles=0), "num_particles"),
    (lambda: TraceMixture_ELBO(num_particles=2.5), "num_particles"),
    (lambda: TraceMixture_ELBO(estimator="reinforce"), "estimator"),
    (lambda: TraceMixture_ELBO(density="joint"), "density"),
    (lambda: TraceMixture_ELBO(num_subsets=0), "num_subsets"),
    (lambda: TraceMVAE_ELBO(num_random_subsets=-1), "num_random_subsets"),
])
def test_bad_arguments_are_named(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_more_subsets_than_the_family_has_is_an_error():
    mods = small_modalities(2)
    model, guide = build(MixtureOfExpertsGuide, mods)
    with pytest.raises(ValueError, match="only 2 subsets"):
        TraceMixture_ELBO(num_subsets=3).loss(model, guide, small_batch(mods))
    model, guide = build(ProductOfExpertsGuide, mods)
    with pytest.raises(ValueError, match="only 3 subsets"):
        TraceMVAE_ELBO(num_random_subsets=4).loss(model, guide, small_batch(mods))


def test_mvae_objective_needs_a_product_of_experts():
    mods = small_modalities(2)
    model, guide = build(MixtureOfExpertsGuide, mods)
    with pytest.raises(TypeError, match="product-of-experts"):
        TraceMVAE_ELBO().loss(model, guide, small_batch(mods))


@pytest.mark.parametrize("beta", [1.0, 2.0])
def test_kl_annealing_rises_linearly_to_beta_and_counts_gradient_steps_only(beta):
    mods = small_modalities(2)
    model, guide = build(ProductOfExpertsGuide, mods)
    batch = small_batch(mods)
    elbo = TraceMVAE_ELBO(annealing_steps=4, beta=beta)
    betas = []
    for _ in range(6):
        betas.append(elbo.latent_weight())
        elbo.loss(model, guide, batch)
        elbo.differentiable_loss(model, guide, batch)
    assert betas == [beta * w for w in (0.0, 0.25, 0.5, 0.75, 1.0, 1.0)]
    assert elbo.state_dict() == {"step": 6}
    restored = TraceMVAE_ELBO(annealing_steps=4, beta=beta)
    restored.load_state_dict(elbo.state_dict())
    assert restored.latent_weight() == beta


def test_sites_outside_the_data_plate_are_rejected():
    mods = small_modalities(2)
    model, guide = build(ProductOfExpertsGuide, mods)

    def model_with_global(batch):
        pyro.sample("w", pyro.distributions.Normal(0.0, 1.0))
        return model(batch)

    def guide_with_global(batch):
        pyro.sample("w", pyro.distributions.Normal(0.0, 1.0))
        return guide(batch)

    with pytest.raises(ValueError, match="site 'w' is not inside a plate over the data"):
        TraceMixture_ELBO().loss(model_with_global, guide_with_global, small_batch(mods))


def test_a_sample_with_nothing_observed_is_an_input_error():
    with pytest.raises(ValueError, match="observe no modality"):
        MultimodalBatch({"a": torch.zeros(2, 3)}, torch.tensor([[True], [False]]))
