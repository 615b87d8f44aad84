"""MMVAE+ against closed forms: a linear-Gaussian model with private latents has an exact
log p(X); the bound stays below it, an exact guide makes it tight where it must be (one modality);
private latents of size 0 give MMVAE exactly; the strata draw every private latent consistently."""

import pyro
import pytest
import torch
from mm_helpers import make_vae, small_batch

from pyro_mm.batch import MultimodalBatch
from pyro_mm.guides import PrivateLatentGuide
from pyro_mm.infer import TraceMixture_ELBO, TraceMMVAEPlus_ELBO
from pyro_mm.linear_gaussian import LinearGaussianModel
from pyro_mm.registry import MMVAE, MMVAEPlus, UnimodalVAE
from pyro_mm.models import PrivateLatentModel

MISSING = [0.0, 0.4]


def _linear_mmvae_plus(lg):
    """Model and guide with the exact unimodal posteriors of ``lg`` (Normal family, r_m = p(w_m))."""
    mods = lg.posterior_modalities()
    model = PrivateLatentModel(mods, lg.z_dim, lg.private_dim, family="normal").double()
    guide = PrivateLatentGuide(mods, lg.z_dim, lg.private_dim, family="normal").double()
    return model, guide


@pytest.mark.parametrize("K", [1, 5])
def test_one_modality_with_its_exact_posterior_is_tight(K):
    """With one modality, orthogonal loadings and the exact posterior q(z|x) q(w|x) = p(z, w|x),
    every importance weight is p(x): the bound is log p(x) for every sample, with zero variance."""
    lg = LinearGaussianModel.random([5], z_dim=2, private_dim=2, seed=3)
    x = lg.sample(64, torch.Generator().manual_seed(0))
    batch = MultimodalBatch({"x0": x["x0"]})
    model, guide = _linear_mmvae_plus(lg)
    bounds = [TraceMMVAEPlus_ELBO(num_particles=K).bound(model, guide, batch) for _ in range(3)]
    exact = lg.log_likelihood(x)
    for bound in bounds:
        assert torch.allclose(bound, exact, atol=1e-9)


@pytest.mark.parametrize("missing", MISSING, ids=["complete", "incomplete"])
@pytest.mark.parametrize("K", [1, 8])
def test_bound_stays_below_the_exact_log_likelihood(K, missing):
    """With r_m = p(w_m), E_r p(x_n | z, w̃_n) = p(x_n | z): the stratified bound lies below
    log p(X_o) (Monte Carlo mean over draws, within four standard errors), for exact unimodal
    posteriors and for a guide that is not."""
    lg = LinearGaussianModel.random([4, 5, 4], z_dim=2, private_dim=1, seed=5)
    g = torch.Generator().manual_seed(1)
    x = lg.sample(40, g)
    mask = torch.rand(40, 3, generator=g) >= missing
    mask[~mask.any(-1), 0] = True
    batch = MultimodalBatch({n: x[n] for n in lg.names}, mask)
    exact = lg.log_likelihood_masked({n: x[n] for n in lg.names}, mask)
    model, guide = _linear_mmvae_plus(lg)
    elbo = TraceMMVAEPlus_ELBO(num_particles=K)
    for perturb in (False, True):
        if perturb:
            with torch.no_grad():
                for m in guide.modalities:
                    m.encoder.linear.bias.add_(0.3)
        draws = torch.stack([elbo.bound(model, guide, batch) for _ in range(200)])
        mean, se = draws.mean(0), draws.std(0) / 200 ** 0.5
        assert (mean < exact + 4 * se + 1e-9).all()
        assert (exact - mean).mean() > 0.01  # several modalities: sub-sampling leaves a gap


@pytest.mark.parametrize("missing", MISSING, ids=["complete", "incomplete"])
@pytest.mark.parametrize("estimator,K", [("iwae", 1), ("iwae", 4), ("dreg", 4)])
def test_private_latents_of_size_zero_are_mmvae_exactly(estimator, K, missing):
    """Same networks, same random numbers: MMVAE+ with private_dim = 0 (Normal family) gives
    MMVAE's bound and gradients exactly."""
    torch.manual_seed(0)
    plus = make_vae(MMVAEPlus, 3, private_dim=0, family="normal", num_particles=K, estimator=estimator)
    mmvae = MMVAE(plus.modalities, plus.z_dim, num_particles=K, estimator=estimator)
    batch = small_batch(plus.modalities, missing=missing, seed=2)
    results = []
    for vae in (plus, mmvae):
        pyro.set_rng_seed(9)
        loss = vae(batch)
        params = [p for m in vae.modalities for p in (*m.encoder.parameters(), *m.decoder.parameters())]
        results.append((loss, torch.autograd.grad(loss, params)))
    (loss_plus, grads_plus), (loss_mmvae, grads_mmvae) = results
    assert torch.equal(loss_plus, loss_mmvae)
    for a, b in zip(grads_plus, grads_mmvae):
        assert torch.equal(a, b)


@pytest.mark.parametrize("missing", MISSING, ids=["complete", "incomplete"])
def test_stratum_m_draws_its_own_private_latent_from_the_posterior_and_the_others_from_r(missing):
    vae = make_vae(MMVAEPlus, 3, num_particles=2)
    batch = small_batch(vae.modalities, batch_size=10, missing=missing, seed=1)
    traces = vae.elbo.traces(vae.model, vae.guide, batch)
    assert traces.followers == ["w_m0", "w_m1", "w_m2"]
    for i, name in enumerate(vae.names):
        fn = traces.guide_trace.nodes[f"w_{name}"]["fn"]
        expected = torch.eye(3, dtype=torch.bool)[:, i][:, None] & batch.mask[:, i][None, :]  # [S, B]
        assert torch.equal(fn.use_posterior, expected) and torch.equal(fn.in_bound, expected)
        value = traces.guide_trace.nodes[f"w_{name}"]["value"]  # [K, S, B, D_w]
        assert value.shape == (2, 3, 10, 2)


def test_the_auxiliary_prior_is_what_predictions_use_and_it_learns():
    """Given only m0, the private code of the generated m1 comes from r_m1: its draws spread with
    r_m1's (learned) scale around zero."""
    n, sd = 4000, 0.5
    vae = make_vae(MMVAEPlus, 2, family="normal")
    with torch.no_grad():
        vae.guide.aux_logits["m1"].fill_(torch.tensor(sd).log())
    batch = small_batch(vae.modalities, batch_size=n, seed=3)
    posteriors = vae.guide.private_posteriors(batch.with_mask(torch.tensor([[True, False]]).expand(n, 2)))
    draws = posteriors["m1"].sample()
    # within five standard errors: sd / √n for the mean of n draws, sd / √(2n) for their standard deviation
    assert ((draws.std(0) - sd).abs() < 5 * sd / (2 * n) ** 0.5).all()
    assert (draws.mean(0).abs() < 5 * sd / n ** 0.5).all()


def test_a_guide_without_private_sites_is_refused():
    mmvae = make_vae(MMVAE, 2)
    with pytest.raises(ValueError, match="one private latent site per modality"):
        TraceMMVAEPlus_ELBO().loss(mmvae.model, mmvae.guide, small_batch(mmvae.modalities))


def test_a_guide_site_that_cannot_be_reparameterised_is_refused():
    vae = make_vae(UnimodalVAE, 1)

    def model(batch):
        with pyro.plate("rows", len(batch), dim=-1):
            pyro.sample("c", pyro.distributions.Bernoulli(0.5))
        return vae.model(batch)

    def guide(batch):
        with pyro.plate("rows", len(batch), dim=-1):
            pyro.sample("c", pyro.distributions.Bernoulli(0.3))
        return vae.guide(batch)

    with pytest.raises(ValueError, match="guide site 'c' draws from a Bernoulli, which cannot be reparameterised"):
        TraceMixture_ELBO().differentiable_loss(model, guide, small_batch(vae.modalities))


def test_laplace_posteriors_have_softmax_scales(float64):
    """The reference's family: Laplace experts whose scales sum to their part's size (+ η)
    (a sum, so in float64)."""
    vae = make_vae(MMVAEPlus, 3, private_dim=2)
    batch = small_batch(vae.modalities, seed=4)
    loc, scale, _ = vae.guide.experts(batch)
    assert torch.allclose(scale.sum(-1), torch.full(scale.shape[:-1], 3 * (1 + 1e-6)), atol=1e-5)
    assert torch.allclose(vae.guide.auxiliary_scale("m0"), torch.full((2,), 1 + 1e-6))
    assert vae.guide.posterior(batch).expert_family.name == "laplace"
