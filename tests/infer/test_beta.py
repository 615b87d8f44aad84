"""β, the KL weight, in every objective: β = 1 is the bound, and any β equals the weighted terms
written out by hand from the same traces — value and gradient, complete and incomplete data.

The cases come from the method registry: every registered method is checked to be affine in β
(one particle), and every method whose objective is a stratified bound (a :class:`StratifiedELBO`)
against its terms written out by hand, so a new method is tested without a line here. MEME's terms
have a test of their own.
"""

import math

import pyro
import pytest
import torch
from mm_helpers import make_vae, quick_options, small_batch

from pyro_mm.infer import StratifiedELBO
from pyro_mm.registry import MEME, METHODS

# every test checks that an objective equals its terms written out by hand, so in float64 (see
# tests/conftest.py)
pytestmark = pytest.mark.usefixtures("float64")

MISSING = [0.0, 0.35]
#: options that make a method's case exercise more of its objective (other methods: their quick options)
OPTIONS = {"mvae": {"num_random_subsets": 1}, "mmvae": {"estimator": "iwae"}, "mopoe": {"num_particles": 2},
           "mmvae+": {"estimator": "iwae"}}


def _stratified(name: str) -> bool:
    """Whether the method's objective is a stratified importance-weighted bound (built once, on
    forked random numbers)."""
    with torch.random.fork_rng():
        return isinstance(make_vae(METHODS[name], 2).elbo, StratifiedELBO)


STRATIFIED = [(name, OPTIONS.get(name, {})) for name in METHODS if _stratified(name)]


def test_the_options_name_registered_methods():
    assert set(OPTIONS) <= set(METHODS), sorted(set(OPTIONS) - set(METHODS))


def _by_hand(elbo, traces, beta):
    """Σ_s ω_s LME_k [Σ_x log p(x | ·) + β Σ_v c_v (log p(v) − log q(v))], read off the traces."""
    model_trace, guide_trace, strat = traces.model_trace, traces.guide_trace, traces.posterior
    observed, latent = 0.0, 0.0
    for name, site in model_trace.nodes.items():
        if site["type"] != "sample":
            continue
        if site["is_observed"]:
            term = site["log_prob"]
            if elbo.reconstruct_subset_only and strat is not None:  # MVAE: a term reconstructs its subset
                term = term * strat.subsets[..., strat.names.index(name)]
            observed = observed + term
            continue
        fn, value = guide_trace.nodes[name]["fn"], guide_trace.nodes[name]["value"]
        if name == traces.site and strat is not None and getattr(elbo, "density", "subset") == "mixture":
            log_q = fn.source_log_prob(value)
        else:
            log_q = fn.log_prob(value)
        term = site["log_prob"] - log_q
        in_bound = getattr(fn, "in_bound", None)
        latent = latent + (term if in_bound is None else term * in_bound)
    lw = observed + beta * latent
    K = elbo.num_particles
    lw = lw.expand((K,) + lw.shape[-2:]) if lw.dim() >= 2 else lw
    weights = strat.weights if strat is not None else torch.ones(1, lw.shape[-1])
    return (weights * (lw.logsumexp(0) - math.log(K))).sum(0)


@pytest.mark.parametrize("missing", MISSING, ids=["complete", "incomplete"])
@pytest.mark.parametrize("beta", [1.0, 0.0, 2.5])
@pytest.mark.parametrize("name,options", STRATIFIED, ids=[n for n, _ in STRATIFIED])
def test_stratified_bounds_weigh_their_latent_terms_by_beta(name, options, beta, missing):
    cls = METHODS[name]
    num = 1 if cls.models_some_modalities else 3
    vae = make_vae(cls, num, beta=beta, **options)
    batch = small_batch(vae.modalities, missing=missing if num > 1 else 0.0, seed=3)
    pyro.set_rng_seed(5)
    traces = vae.elbo.traces(vae.model, vae.guide, batch)
    ours, _ = vae.elbo.per_datapoint(traces, surrogate=False)
    theirs = _by_hand(vae.elbo, traces, beta)
    assert torch.allclose(ours, theirs, rtol=1e-5, atol=1e-5)
    params = [p for p in vae.parameters() if p.requires_grad]
    g_ours = torch.autograd.grad(ours.sum(), params, retain_graph=True, allow_unused=True)
    g_theirs = torch.autograd.grad(theirs.sum(), params, allow_unused=True)
    for a, b in zip(g_ours, g_theirs):
        assert (a is None and b is None) or torch.allclose(a, b, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("missing", MISSING, ids=["complete", "incomplete"])
@pytest.mark.parametrize("name", list(METHODS))
def test_every_objective_is_affine_in_beta_with_one_particle(name, missing):
    """Any registered method, the same parameters and draws: with one particle (where K is an
    option) the latent terms enter linearly, so the loss and its gradient are affine in β,
    L(β) = L(0) + β (L(1) − L(0)), and β = 1 is the default."""
    cls = METHODS[name]
    assert "beta" in {o.name for o in cls.options}, f"{name} declares no option beta"
    options = {**quick_options(cls, 2), **({"num_particles": 1} if "num_particles" in {o.name for o in cls.options}
                                           else {})}
    base = make_vae(cls, 2, **options)
    batch = small_batch(base.modalities, batch_size=16, missing=missing if len(base.modalities) > 1 else 0.0, seed=4)
    losses, grads = {}, {}
    for beta in (None, 0.0, 1.0, 2.5):
        vae = base if beta is None else cls(base.modalities, base.z_dim, **options, beta=beta)
        vae.load_state_dict(base.state_dict())
        pyro.set_rng_seed(7)
        loss = vae.elbo.differentiable_loss(vae.model, vae.guide, batch)
        params = [p for _, p in sorted(vae.named_parameters()) if p.requires_grad]
        losses[beta] = loss.detach()
        grads[beta] = [g if g is not None else torch.zeros_like(p)
                       for g, p in zip(torch.autograd.grad(loss, params, allow_unused=True), params)]
    assert torch.equal(losses[None], losses[1.0]) and not torch.allclose(losses[0.0], losses[1.0])
    assert torch.allclose(losses[2.5], losses[0.0] + 2.5 * (losses[1.0] - losses[0.0]), rtol=1e-9, atol=1e-9)
    for g0, g1, g25 in zip(grads[0.0], grads[1.0], grads[2.5]):
        assert torch.allclose(g25, g0 + 2.5 * (g1 - g0), rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("missing", [0.0, 0.5], ids=["complete", "incomplete"])
@pytest.mark.parametrize("rao_blackwell", [False, True], ids=["paper", "rao-blackwell"])
def test_meme_weighs_its_kl_and_its_unpaired_prior_terms_by_beta(rao_blackwell, missing):
    """Same draws: a paired direction loses (β − 1) · [w] · KL(q(z|s) ‖ q(z|t)) against β = 1
    (w = 1 Rao–Blackwellised), an unpaired one scales log p_λ(z) − log q(z|s) by β."""
    torch.manual_seed(0)
    one = make_vae(MEME, 2, rao_blackwell=rao_blackwell)
    beta = MEME(one.modalities, one.z_dim, num_particles=3, num_pseudo_samples=8, rao_blackwell=rao_blackwell,
                beta=2.5)
    beta.load_state_dict(one.state_dict())
    batch = small_batch(one.modalities, batch_size=16, missing=missing, seed=6)
    terms = []
    for vae in (one, beta):
        pyro.set_rng_seed(2)
        terms.append(vae.elbo.terms(vae.model, vae.guide, batch))
    t1, t2 = terms
    weight = torch.ones_like(t1["weight"]) if rao_blackwell else t1["weight"]
    paired = t1["use_paired"]
    assert torch.allclose(t2["paired"][paired], (t1["paired"] - 1.5 * weight * t1["kl"])[paired], atol=1e-5)
    unpaired = t1["use_unpaired"]
    assert unpaired.any() == bool(missing)
    latent = t1["unpaired"] - t1["own"]  # log p_λ(z) − log q(z | s) at β = 1
    assert torch.allclose(t2["unpaired"][unpaired], (t1["own"] + 2.5 * latent)[unpaired], atol=1e-4)
