"""TraceMEME_ELBO: closed forms, a line-by-line transcription, gradient routing, mixed batches."""

import math

import pyro
import pytest
import torch
from mm_helpers import small_batch, small_modalities
from pyro.infer import SVI
from pyro.optim import Adam

from pyro_mm.batch import MultimodalBatch
from pyro_mm.data.observation import paired_masks
from pyro_mm.distributions import StratifiedPosterior
from pyro_mm.guides import MutualSupervisionGuide
from pyro_mm.infer import TraceMEME_ELBO
from pyro_mm.infer.trace_meme_elbo import PRESETS
from pyro_mm.linear_gaussian import LinearGaussianModel
from pyro_mm.models import MutualSupervisionModel


def _meme(mods, z_dim=3, pseudo=8):
    return MutualSupervisionModel(mods, z_dim, pseudo_samples=pseudo), MutualSupervisionGuide(mods)


@pytest.fixture
def deterministic_noise(monkeypatch):
    """Draws that depend only on each sample's own posterior (not on the batch layout), so that
    a batch and its parts see the same z."""
    def rsample(self, sample_shape=torch.Size()):
        shape = self._extended_shape(sample_shape)
        k = torch.arange(shape[0], dtype=self.loc.dtype).reshape((-1,) + (1,) * (len(shape) - 1))
        eps = torch.sin(1000.0 * self.loc * (k + 1) + 7.0 * k)
        return self.loc + self.scale * eps
    monkeypatch.setattr(StratifiedPosterior, "rsample", rsample)


# --- closed forms on linear-Gaussian models ------------------------------------------------------
def _lg_pair(seed=0):
    lg = LinearGaussianModel.random([3, 4], z_dim=2, seed=seed, names=["s", "t"])
    mods = lg.modalities()
    return lg, mods


def _s_only(lg, n, seed=0):
    x = lg.sample(n, torch.Generator().manual_seed(seed))
    mask = torch.zeros(n, 2, dtype=torch.bool)
    mask[:, 0] = True
    return MultimodalBatch({"s": x["s"], "t": x["t"]}, mask)


def _marginal_under_prior(lg, s, prior_loc, prior_cov):
    """log ∫ N(s; A z + b, σ²I) N(z; m, S) dz."""
    A, b, sigma = lg.A[0], lg.b[0], lg.sigma[0]
    cov = A @ prior_cov @ A.T + sigma ** 2 * torch.eye(A.shape[0], dtype=torch.float64)
    return torch.distributions.MultivariateNormal(prior_loc @ A.T + b, cov).log_prob(s)


def test_unpaired_bound_with_one_pseudo_sample_and_exact_posterior_is_log_p_with_zero_variance():
    lg, mods = _lg_pair()
    batch = _s_only(lg, 50)
    u = lg.sample(1, torch.Generator().manual_seed(9))["t"]
    model = MutualSupervisionModel(mods, 2, pseudo_samples={"t": u, "s": batch["s"][:1]}).double()
    guide = MutualSupervisionGuide(mods)
    with torch.no_grad():  # make the s encoder the exact posterior under the prior q_t(z | u)
        m_u, s_u = model.pseudo_experts("t")
        prior_prec = s_u[0] ** -2
        lam = torch.diagonal(lg.A[0].T @ lg.A[0]) / lg.sigma[0] ** 2
        prec = prior_prec + lam
        W = (lg.A[0] / lg.sigma[0] ** 2).T / prec[:, None]
        enc = mods[0].encoder
        enc.linear.weight.copy_(W)
        enc.linear.bias.copy_((prior_prec * m_u[0] - lg.A[0].T @ lg.b[0] / lg.sigma[0] ** 2) / prec)
        enc.log_scale.copy_(-0.5 * prec.log())
    exact = _marginal_under_prior(lg, batch["s"], m_u[0], torch.diag(s_u[0] ** 2))
    values = []
    for seed in range(3):
        pyro.set_rng_seed(seed)
        terms = TraceMEME_ELBO().terms(model, guide, batch)
        assert terms["use_unpaired"][0].all()
        values.append(terms["bound"])
    for v in values:
        assert torch.allclose(v, exact, atol=1e-8, rtol=0)


def test_unpaired_bound_with_many_pseudo_samples_stays_below_the_mixture_marginal():
    lg, mods = _lg_pair(1)
    u = lg.sample(5, torch.Generator().manual_seed(3))["t"]
    x = lg.sample(4, torch.Generator().manual_seed(4))
    batch = _s_only(lg, 4).select(torch.arange(4).repeat(5000))
    model = MutualSupervisionModel(mods, 2, pseudo_samples={"t": u, "s": x["s"]}).double()
    guide = MutualSupervisionGuide(mods)
    bound = TraceMEME_ELBO().bound(model, guide, batch).reshape(-1, 4)
    with torch.no_grad():
        m, s = model.pseudo_experts("t")
    s_data = batch["s"][:4]
    comps = torch.stack([_marginal_under_prior(lg, s_data, m[i], torch.diag(s[i] ** 2)) for i in range(5)])
    exact = comps.logsumexp(0) - math.log(5)
    se = bound.std(0) / bound.shape[0] ** 0.5
    assert (bound.mean(0) <= exact + 3 * se).all()
    assert (bound.mean(0) > exact - 5).all()  # and it is a sensible bound, not -inf


def test_classifier_estimate_stays_below_the_closed_form_and_tightens_with_k(float64):
    """E log q̂(t|s) ≤ log q(t|s) = log ∫ q(z|s) p_θ(t|z) dz, and the gap shrinks as K grows."""
    lg, mods = _lg_pair(2)
    x = lg.sample(4, torch.Generator().manual_seed(5))
    batch = MultimodalBatch({"s": x["s"], "t": x["t"]}).select(torch.arange(4).repeat(3000))
    model, guide = _meme(mods, z_dim=2)
    with torch.no_grad():
        loc, scale = mods[0].encoder(x["s"])
    A, b, sigma = lg.A[1], lg.b[1], lg.sigma[1]
    exact = torch.stack([
        torch.distributions.MultivariateNormal(
            loc[i] @ A.T + b, A @ torch.diag(scale[i] ** 2) @ A.T + sigma ** 2 * torch.eye(4, dtype=torch.float64)
        ).log_prob(x["t"][i]) for i in range(4)])
    gaps = []
    for K in (1, 5, 50):
        log_qhat = TraceMEME_ELBO(num_particles=K).terms(model, guide, batch)["log_qhat"][0].reshape(-1, 4)
        gap = log_qhat.mean(0) - exact
        se = log_qhat.std(0) / log_qhat.shape[0] ** 0.5
        assert (gap <= 3 * se).all(), (K, gap)
        gaps.append(gap.mean().item())
    assert gaps[0] < gaps[1] < gaps[2]


# --- the formula, line by line ------------------------------------------------------------------
def _by_hand(mods, model, batch, K, lam, eps, detach_w=True):
    """The paired objective of docs/objectives.md for the direction s -> t, transcribed."""
    s, t = mods[0].name, mods[1].name
    loc_s, scale_s = mods[0].encoder(batch[s])
    loc_t, scale_t = mods[1].encoder(batch[t])
    z = loc_s + scale_s * eps  # eps: [K+1, B, D]; z_0 is the main sample
    log_p_t = model.likelihood(t, z).log_prob(batch[t])  # [K+1, B]
    log_p_s = model.likelihood(s, z[0]).log_prob(batch[s])
    log_qhat = torch.logsumexp(log_p_t, 0) - math.log(K + 1)
    w = torch.exp(log_p_t[0] - log_qhat)
    if detach_w:
        w = w.detach()
    q_s, q_t = torch.distributions.Normal(loc_s, scale_s), torch.distributions.Normal(loc_t, scale_t)
    kl = torch.distributions.kl_divergence(q_s, q_t).sum(-1)
    return w * (log_p_s - log_p_t[0] - kl) + lam * log_qhat


@pytest.mark.parametrize("preset,K,lam", [("paper", 10, 1.0), ("reference", 10, 10.0)])
def test_paired_direction_equals_a_line_by_line_transcription(preset, K, lam, float64):
    mods = small_modalities(2)
    model, guide = _meme(mods)
    batch = small_batch(mods, batch_size=3)
    elbo = TraceMEME_ELBO(preset=preset)
    pyro.set_rng_seed(5)
    terms = elbo.terms(model, guide, batch)
    pyro.set_rng_seed(5)
    eps = torch.randn(K + 1, 2, 3, 3)[:, 0]
    expected = _by_hand(mods, model, batch, K, lam, eps)
    assert torch.allclose(terms["paired"][0], expected, atol=1e-5)
    both = 0.5 * (terms["paired"][0] + terms["paired"][1]) if preset == "paper" else terms["paired"].sum(0)
    assert torch.allclose(terms["bound"], both)


def test_the_weight_carries_no_gradient(float64):
    mods = small_modalities(2)
    model, guide = _meme(mods)
    batch = small_batch(mods, batch_size=3)
    params = list(model.parameters()) + list(guide.parameters())
    params = list({id(p): p for p in params}.values())
    pyro.set_rng_seed(5)
    terms = TraceMEME_ELBO(num_particles=4, preset="paper").terms(model, guide, batch)
    ours = torch.autograd.grad(terms["paired"][0].sum(), params, allow_unused=True)
    pyro.set_rng_seed(5)
    eps = torch.randn(5, 2, 3, 3)[:, 0]
    detached = torch.autograd.grad(_by_hand(mods, model, batch, 4, 1.0, eps).sum(), params, allow_unused=True)
    attached = torch.autograd.grad(_by_hand(mods, model, batch, 4, 1.0, eps, detach_w=False).sum(), params,
                                   allow_unused=True)
    pairs = [(a, b, c) for a, b, c in zip(ours, detached, attached) if a is not None]
    assert all(torch.allclose(a, b, atol=1e-5) for a, b, _ in pairs)
    assert not all(torch.allclose(a, c, atol=1e-5) for a, _, c in pairs)


# --- the Rao-Blackwellised estimator -------------------------------------------------------------
def _main_sample_swapped(eps, j):
    """``eps`` with draw j moved to the front (it becomes the main sample z_0)."""
    order = [j] + [k for k in range(eps.shape[0]) if k != j]
    return eps[order]


@pytest.mark.parametrize("preset,K,lam", [("paper", 4, 1.0), ("reference", 3, 10.0)])
def test_rao_blackwell_is_the_paper_estimator_averaged_over_which_draw_is_the_main_sample(preset, K, lam, float64):
    """Value and gradient, sample by sample: L_RB = (1/(K+1)) Σ_j L(z_j as the main sample)."""
    mods = small_modalities(2)
    model, guide = _meme(mods)
    batch = small_batch(mods, batch_size=3)
    params = list({id(p): p for p in [*model.parameters(), *guide.parameters()]}.values())
    pyro.set_rng_seed(5)
    ours = TraceMEME_ELBO(num_particles=K, preset=preset, rao_blackwell=True).terms(model, guide, batch)["paired"][0]
    pyro.set_rng_seed(5)
    eps = torch.randn(K + 1, 2, 3, 3)[:, 0]
    each = torch.stack([_by_hand(mods, model, batch, K, lam, _main_sample_swapped(eps, j)) for j in range(K + 1)])
    expected = each.mean(0)
    assert torch.allclose(ours, expected, atol=1e-5)
    g_ours = torch.autograd.grad(ours.sum(), params, allow_unused=True)
    g_expected = torch.autograd.grad(expected.sum(), params, allow_unused=True)
    for a, b in zip(g_ours, g_expected):
        assert (a is None) == (b is None)
        assert a is None or torch.allclose(a, b, atol=1e-4)
    assert not torch.allclose(each[0], expected, atol=1e-3)  # one main sample alone differs


def test_rao_blackwell_keeps_the_expectation_and_lowers_the_variance(float64):
    lg, mods = _lg_pair(3)
    x = lg.sample(4, torch.Generator().manual_seed(6))
    batch = MultimodalBatch({"s": x["s"], "t": x["t"]}).select(torch.arange(4).repeat(4000))
    model, guide = _meme(mods, z_dim=2)
    draws = {}
    for rb in (False, True):
        pyro.set_rng_seed(8)
        draws[rb] = TraceMEME_ELBO(num_particles=4, rao_blackwell=rb, preset="paper").terms(model, guide, batch)["paired"][0].reshape(-1, 4)
    se = (draws[False].var(0) / draws[False].shape[0] + draws[True].var(0) / draws[True].shape[0]).sqrt()
    assert ((draws[True].mean(0) - draws[False].mean(0)).abs() < 4 * se).all()
    assert (draws[True].var(0) < 0.8 * draws[False].var(0)).all()


@pytest.mark.parametrize("missing", [0.0, 0.4], ids=["complete", "incomplete"])
def test_rao_blackwell_at_lambda_one_gives_the_classifier_exactly_zero_gradient(missing):
    """∇ log q̂ = Σ_k ŵ_k ∇ log p(t | z_k): at λ = 1 the classifier terms cancel exactly, so in
    the direction s → t the partner decoder p_θ(t | z) gets no gradient at all (the paper's
    estimator cancels them only in expectation)."""
    mods = small_modalities(2)
    model, guide = _meme(mods)
    batch = small_batch(mods, batch_size=10, missing=missing, seed=2)
    partner = [p for n, p in model.named_parameters() if n.startswith("decoders.m1")]
    for rb in (True, False):
        pyro.set_rng_seed(3)
        terms = TraceMEME_ELBO(num_particles=4, classifier_weight=1.0, rao_blackwell=rb).terms(model, guide, batch)
        direction = torch.where(terms["use_paired"][0], terms["paired"][0], torch.zeros(()))
        grads = torch.autograd.grad(direction.sum(), partner)
        zero = all(torch.equal(g, torch.zeros_like(g)) for g in grads)
        assert zero == rb


@pytest.mark.parametrize("missing", [0.0, 0.4], ids=["complete", "incomplete"])
def test_rao_blackwell_changes_only_the_paired_terms(missing):
    mods = small_modalities(2)
    model, guide = _meme(mods)
    batch = small_batch(mods, batch_size=10, missing=missing, seed=4)
    terms = {}
    for rb in (False, True):
        pyro.set_rng_seed(6)
        terms[rb] = TraceMEME_ELBO(num_particles=3, rao_blackwell=rb).terms(model, guide, batch)
    for key in ("unpaired", "log_qhat", "kl", "use_paired", "use_unpaired"):
        assert torch.equal(terms[False][key], terms[True][key]), key
    paired_rows = terms[False]["use_paired"].any(0)
    assert torch.equal(terms[False]["bound"][~paired_rows], terms[True]["bound"][~paired_rows])
    if paired_rows.any():
        assert not torch.allclose(terms[False]["bound"][paired_rows], terms[True]["bound"][paired_rows])


# --- gradient routing and batching --------------------------------------------------------------
def test_unpaired_samples_route_gradients_to_pseudo_samples_not_to_the_missing_decoder():
    mods = small_modalities(2)
    model, guide = _meme(mods)
    batch = small_batch(mods, batch_size=6)
    batch = batch.with_mask(torch.tensor([[True, False]] * 6))  # t (m1) missing everywhere
    loss = TraceMEME_ELBO().differentiable_loss(model, guide, batch)
    named = dict(model.named_parameters())
    names = list(named)
    grads = dict(zip(names, torch.autograd.grad(loss, [named[n] for n in names], allow_unused=True)))
    for n, g in grads.items():
        if n.startswith("decoders.m1"):
            assert g is None or torch.equal(g, torch.zeros_like(g)), n
    assert grads["pseudo.m1"].abs().sum() > 0
    assert any(g is not None and g.abs().sum() > 0 for n, g in grads.items() if n.startswith("encoders.m1"))
    assert grads["pseudo.m0"] is None or torch.equal(grads["pseudo.m0"], torch.zeros_like(grads["pseudo.m0"]))


def test_a_mixed_batch_equals_its_paired_and_unpaired_parts(deterministic_noise, float64):
    """Loss and gradients of a batch are the sums of those of its paired and unpaired rows (in
    float64: in float32 the gradients differ by up to 2e-4, depending on the CPU's kernels)."""
    mods = small_modalities(2)
    model, guide = _meme(mods)
    batch = small_batch(mods, batch_size=8)
    batch = batch.with_mask(paired_masks(8, 0.5, "alternate", seed=1))
    paired = batch.mask.all(-1)
    params = list({id(p): p for p in [*model.parameters(), *guide.parameters()]}.values())
    elbo = TraceMEME_ELBO()
    whole = elbo.differentiable_loss(model, guide, batch)
    g_whole = torch.autograd.grad(whole, params, allow_unused=True)
    parts = [elbo.differentiable_loss(model, guide, batch.select(rows)) for rows in (paired, ~paired)]
    g_parts = [torch.autograd.grad(p, params, allow_unused=True) for p in parts]
    assert torch.allclose(whole, parts[0] + parts[1], atol=1e-4)
    for gw, ga, gb in zip(g_whole, *g_parts):
        total = sum(g for g in (ga, gb) if g is not None)
        if gw is None:
            assert isinstance(total, int)
        else:
            assert torch.allclose(gw, total, atol=1e-4)


def test_the_extension_reduces_to_meme_when_a_third_modality_is_never_observed(deterministic_noise, float64):
    mods = small_modalities(3)
    batch = small_batch(mods, batch_size=6)
    batch3 = batch.with_mask(torch.tensor([[True, True, False]] * 6))
    model3, guide3 = _meme(mods)
    model2 = MutualSupervisionModel(mods[:2], 3, pseudo_samples=8)
    guide2 = MutualSupervisionGuide(mods[:2])
    two = TraceMEME_ELBO().bound(model2, guide2, batch3.only(["m0", "m1"]))
    three = TraceMEME_ELBO(extension=True).bound(model3, guide3, batch3)
    assert torch.allclose(two, three, atol=1e-5)


@pytest.mark.parametrize("rao_blackwell", [False, True], ids=["paper", "rao-blackwell"])
@pytest.mark.parametrize("missing", [False, True], ids=["complete", "incomplete"])
def test_loss_differentiable_loss_and_loss_and_grads_agree(missing, rao_blackwell, float64):
    mods = small_modalities(2)
    model, guide = _meme(mods)
    batch = small_batch(mods, batch_size=10, missing=0.4 if missing else 0.0)
    values = []
    for call in ("loss", "differentiable_loss", "loss_and_grads"):
        pyro.set_rng_seed(2)
        out = getattr(TraceMEME_ELBO(rao_blackwell=rao_blackwell), call)(model, guide, batch)
        values.append(float(out.detach()) if torch.is_tensor(out) else out)
    assert values[0] == pytest.approx(values[1], rel=1e-6) and values[0] == pytest.approx(values[2], rel=1e-6)


@pytest.mark.parametrize("fraction", [1.0, 0.5, 0.125])
def test_trains_with_svi_at_several_paired_fractions(fraction):
    mods = small_modalities(2)
    model, guide = _meme(mods)
    batch = small_batch(mods, batch_size=64, seed=3)
    batch = batch.with_mask(paired_masks(64, fraction, "alternate", seed=0))
    model.init_pseudo_samples(batch)
    elbo = TraceMEME_ELBO()
    before = sum(elbo.loss(model, guide, batch) for _ in range(5)) / 5
    svi = SVI(model, guide, Adam({"lr": 3e-3}), loss=elbo)
    for _ in range(250):
        svi.step(batch)
    after = sum(elbo.loss(model, guide, batch) for _ in range(5)) / 5
    assert after < before - 0.05 * abs(before)


@pytest.mark.parametrize("preset,K,lam,combine,rb,N", [("pyro_mm", 5, 10.0, "sum", True, 32),
                                                        ("paper", 10, 1.0, "mean", False, 128),
                                                        ("reference", 10, 10.0, "sum", False, 128)])
def test_the_user_class_takes_every_setting_from_its_preset_and_an_option_overrides_one(preset, K, lam, combine,
                                                                                       rb, N):
    from pyro_mm.api import MEME

    mods = small_modalities(2)
    vae = MEME(mods, 3) if preset == "pyro_mm" else MEME(mods, 3, preset=preset)
    elbo = vae.elbo
    assert (elbo.num_classifier_samples, elbo.classifier_weight, elbo.combine, elbo.rao_blackwell) == (K, lam,
                                                                                                        combine, rb)
    assert vae.model.num_pseudo_samples == N
    changed = MEME(mods, 3, preset=preset, num_particles=2, rao_blackwell=not rb, num_pseudo_samples=7).elbo
    assert (changed.num_classifier_samples, changed.rao_blackwell, changed.classifier_weight) == (2, not rb, lam)
    assert set(MEME.pseudo_samples) == set(PRESETS)


def test_bad_input_is_named():
    mods = small_modalities(3)
    model, guide = _meme(mods)
    with pytest.raises(ValueError, match="two modalities.*extension=True"):
        TraceMEME_ELBO().loss(model, guide, small_batch(mods))
    with pytest.raises(ValueError, match="num_particles"):
        TraceMEME_ELBO(num_particles=0)
    with pytest.raises(ValueError, match="classifier_weight"):
        TraceMEME_ELBO(classifier_weight=-1.0)
    with pytest.raises(ValueError, match="preset"):
        TraceMEME_ELBO(preset="fast")
    with pytest.raises(ValueError, match=r"pseudo-samples of modality 'm1' must have shape \[N, 6\]"):
        MutualSupervisionModel(mods, 3, pseudo_samples={"m1": torch.zeros(4, 5)})
    with pytest.raises(KeyError, match="unknown modalities"):
        MutualSupervisionModel(mods, 3, pseudo_samples={"audio": torch.zeros(4, 5)})
    with pytest.raises(ValueError, match="observe no modality"):
        small_batch(mods[:2]).with_mask(torch.zeros(12, 2, dtype=torch.bool))


@pytest.mark.parametrize("missing", [0.0, 0.3], ids=["complete", "incomplete"])
def test_per_direction_classifier_weight_changes_only_its_direction(missing, float64):
    mods = small_modalities(2)
    model, guide = _meme(mods)
    batch = small_batch(mods, batch_size=10, missing=missing, seed=5)
    terms = {}
    for key, lam in (("plain", 10.0), ("mapped", {"m0": 2.0}), ("same", {"m0": 10.0, "m1": 10.0})):
        pyro.set_rng_seed(4)
        terms[key] = TraceMEME_ELBO(num_particles=3, classifier_weight=lam, preset="reference").terms(model, guide, batch)
    plain, mapped = terms["plain"], terms["mapped"]
    assert torch.equal(terms["same"]["paired"], plain["paired"])
    assert torch.allclose(mapped["paired"][0], plain["paired"][0] - 8.0 * plain["log_qhat"][0], atol=1e-4)
    assert torch.equal(mapped["paired"][1], plain["paired"][1])
    with pytest.raises(ValueError, match="unknown modalities"):
        TraceMEME_ELBO(num_particles=2, classifier_weight={"m9": 1.0}).terms(model, guide, batch)
    with pytest.raises(ValueError, match=">= 0"):
        TraceMEME_ELBO(classifier_weight={"m0": -1.0})
