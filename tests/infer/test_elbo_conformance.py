"""Every registered method's objective and guide (and the further ELBO × guide pairings):
estimator agreement, masking invariants, gradient routing, training with SVI and ELBOModule."""

import pyro
import pytest
import torch
from mm_helpers import method_cases, small_batch
from pyro.infer import SVI
from pyro.optim import Adam

from pyro_mm.batch import MultimodalBatch
from pyro_mm.protocols import ConditionalPriorModel
from pyro_mm.registry import METHODS

CASES = method_cases()
IDS = [c.id for c in CASES]
#: the cases again, the training of a variant or a further pairing marked slow (.ci/run runs
#: them): the default run trains every registered method at its defaults
TRAINING_CASES = [pytest.param(c, id=c.id, marks=() if c.id in METHODS else pytest.mark.slow) for c in CASES]
MISSING = [0.0, 0.35]


def _grads(model, guide, elbo, batch, seed=1):
    pyro.set_rng_seed(seed)
    params = list(model.parameters()) + list(guide.parameters())
    for p in params:
        p.grad = None
    loss = elbo.differentiable_loss(model, guide, batch)
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    return loss.detach(), {n: g for n, g in zip(_names(model, guide), grads)}


def _names(model, guide):
    return [f"model.{n}" for n, _ in model.named_parameters()] + [f"guide.{n}" for n, _ in guide.named_parameters()]


@pytest.mark.parametrize("missing", MISSING, ids=["complete", "incomplete"])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_loss_differentiable_loss_and_loss_and_grads_agree(case, missing, float64):
    model, guide, make_elbo, mods = case.make(3)
    batch = small_batch(mods, missing=missing)
    values = []
    for call in ("loss", "differentiable_loss", "loss_and_grads"):
        pyro.set_rng_seed(7)
        elbo = make_elbo()
        out = getattr(elbo, call)(model, guide, batch)
        values.append(float(out.detach()) if torch.is_tensor(out) else out)
    assert values[0] == pytest.approx(values[1], rel=1e-6, abs=1e-5)
    assert values[0] == pytest.approx(values[2], rel=1e-6, abs=1e-5)
    # loss_and_grads left the estimator's gradient on the parameters: compare with autograd
    left = {n: p.grad.clone() for n, p in zip(_names(model, guide), [*model.parameters(), *guide.parameters()])
            if p.grad is not None}
    _, expected = _grads(model, guide, make_elbo(), batch, seed=7)
    for name, g in left.items():
        assert torch.allclose(g, expected[name], rtol=1e-4, atol=1e-6), name


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_missing_modality_gets_exactly_zero_gradient(case):
    """A modality missing from every sample: its decoder, encoder and private prior get exactly
    zero gradient — except, in a model whose encoders are conditional priors (MEME), the encoder
    and pseudo-samples that make the prior of the samples lacking it."""
    model, guide, make_elbo, mods = case.make(3)
    batch = small_batch(mods, missing=0.3)
    mask = batch.mask.clone()
    mask[:, 1] = False  # modality m1 missing in every sample
    mask[~mask.any(-1), 0] = True
    batch = batch.with_mask(mask)
    _, grads = _grads(model, guide, make_elbo(), batch)
    prior_of_the_missing = (".encoders.m1.", ".pseudo.m1") if isinstance(model, ConditionalPriorModel) else ()
    checked = [n for n in grads if ".m1." in n + "." and not any(p in n + "." for p in prior_of_the_missing)]
    assert any("decoders.m1" in n for n in checked)
    for name in checked:
        g = grads[name]
        assert g is None or torch.equal(g, torch.zeros_like(g)), name
    # the other networks do learn
    assert any(g is not None and g.abs().sum() > 0 for n, g in grads.items() if ".m0." in n)


@pytest.mark.parametrize("missing", [0.35])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_placeholder_values_of_missing_entries_change_nothing(case, missing):
    model, guide, make_elbo, mods = case.make(3)
    batch = small_batch(mods, missing=missing)
    results = []
    for fill in (0.0, float("nan"), 1e6, -3.0):
        data = {}
        for i, n in enumerate(batch.names):
            x = batch[n].clone()
            x[~batch.mask[:, i]] = fill
            data[n] = x
        results.append(_grads(model, guide, make_elbo(), MultimodalBatch(data, batch.mask)))
    loss0, grads0 = results[0]
    for loss, grads in results[1:]:
        assert torch.equal(loss, loss0)
        for name, g in grads.items():
            assert (g is None and grads0[name] is None) or torch.equal(g, grads0[name]), name


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_decoder_gets_no_gradient_from_samples_where_its_modality_is_missing(case, float64):
    """Changing everything else about the samples whose m0 is missing (their other modalities,
    hence their latent draws) leaves m0's decoder gradient unchanged."""
    model, guide, make_elbo, mods = case.make(2)
    batch = small_batch(mods, batch_size=8, missing=0.0)
    mask = batch.mask.clone()
    mask[:4, 0] = False
    batch = batch.with_mask(mask)
    other = batch["m1"].clone()
    other[:4] = other[:4] + 5.0
    changed = MultimodalBatch({"m0": batch["m0"], "m1": other}, mask)
    _, grads = _grads(model, guide, make_elbo(), batch)
    _, grads_changed = _grads(model, guide, make_elbo(), changed)
    decoder = [n for n in grads if n.startswith("model.decoders.m0")]
    assert decoder and all(grads[n].abs().sum() > 0 for n in decoder)
    for n in decoder:
        assert torch.allclose(grads[n], grads_changed[n], rtol=1e-5, atol=1e-7), n
    encoder = [n for n in grads if n.startswith("guide.encoders.m1")]
    assert any(not torch.allclose(grads[n], grads_changed[n]) for n in encoder)


@pytest.mark.parametrize("missing", MISSING, ids=["complete", "incomplete"])
@pytest.mark.parametrize("case", TRAINING_CASES)
def test_trains_with_svi_and_bound_improves(case, missing):
    model, guide, make_elbo, mods = case.make(2)
    batch = small_batch(mods, batch_size=64, missing=0.3 if missing else 0.0, seed=4)
    elbo = make_elbo()
    svi = SVI(model, guide, Adam({"lr": 1e-2}), loss=elbo)
    params = [*model.named_parameters(prefix="model"), *guide.named_parameters(prefix="guide")]
    if not missing and isinstance(model, ConditionalPriorModel):  # every sample paired: no pseudo-sample prior
        params = [(name, p) for name, p in params if ".pseudo." not in name]
    initial = {name: p.detach().clone() for name, p in params}
    before = sum(elbo.loss(model, guide, batch) for _ in range(5)) / 5
    for _ in range(100):
        svi.step(batch)
    after = sum(elbo.loss(model, guide, batch) for _ in range(5)) / 5
    assert after < before - 0.05 * abs(before)
    # SVI found every parameter (networks, pseudo-samples, auxiliary priors) through the parameter
    # statements the objective lets through
    assert params and all(not torch.equal(p, initial[name]) for name, p in params), \
        [name for name, p in params if torch.equal(p, initial[name])]


@pytest.mark.parametrize("case", CASES[:4], ids=IDS[:4])
def test_elbo_module_with_a_torch_optimizer(case):
    model, guide, make_elbo, mods = case.make(2)
    batch = small_batch(mods, batch_size=64, missing=0.3, seed=5)
    module = make_elbo()(model, guide)
    optim = torch.optim.Adam(module.parameters(), lr=3e-3)
    losses = []
    for _ in range(200):
        optim.zero_grad()
        loss = module(batch)
        loss.backward()
        optim.step()
        losses.append(loss.item())
    assert sum(losses[-20:]) / 20 < sum(losses[:20]) / 20 * 0.95
