"""SelectiveDecodeMessenger: every stratified ELBO decodes each modality only on the samples that
observe it, MVAE also only on the cells its bound uses and MEME on the cells each sample uses, and
the bound and its gradients are those of decoding everywhere (complete and incomplete data)."""

import pytest
import torch
from mm_helpers import small_batch, small_modalities

from pyro_mm.api import MEME, MMVAE, MVAE, MoPoE

# the tests compare decoding only the used entries with decoding everything (matrix products of
# different shapes), so in float64 (see tests/conftest.py)
pytestmark = pytest.mark.usefixtures("float64")

CASES = {
    "mvae": lambda mods: MVAE(mods, 3, num_random_subsets=2),
    "meme": lambda mods: MEME(mods[:2], 3, num_particles=3, num_pseudo_samples=4),
    "meme-rao-blackwell": lambda mods: MEME(mods[:2], 3, num_particles=3, num_pseudo_samples=4, rao_blackwell=True),
    # λ = 1 in the first direction only (λ = 10 in the other)
    "meme-rao-blackwell-mixed": lambda mods: MEME(mods[:2], 3, num_particles=3, num_pseudo_samples=4, preset="reference",
                                                  classifier_weight={mods[0].name: 1.0}, rao_blackwell=True),
    "mmvae": lambda mods: MMVAE(mods, 3, num_particles=2),
    "mopoe": lambda mods: MoPoE(mods, 3),
}


def _loss_grads_and_rows(vae, batch, selective: bool, seed: int = 5):
    """Loss, gradients, the number of rows each decoder saw in one differentiable_loss and how
    many of them with autograd."""
    rows = {n: 0 for n in vae.names}
    with_grad = dict(rows)

    def count(name, inputs):
        rows[name] += inputs[0].shape[0]
        with_grad[name] += inputs[0].shape[0] * torch.is_grad_enabled()

    hooks = [m.decoder.register_forward_hook(lambda mod, inp, out, n=m.name: count(n, inp)) for m in vae.model.modalities]
    elbo = vae.elbo
    elbo.contract.enabled = False  # the objective's own decoding only: not the first call's contract check
    if not selective:  # instance attributes shadow the methods
        elbo.decoded_cells = elbo.decoded_rows = lambda posterior: None
    try:
        vae.zero_grad(set_to_none=True)
        torch.manual_seed(seed)
        loss = elbo.differentiable_loss(vae.model, vae.guide, batch)
        loss.backward()
    finally:
        for h in hooks:
            h.remove()
        elbo.__dict__.pop("decoded_cells", None)
        elbo.__dict__.pop("decoded_rows", None)
    grads = {n: p.grad.clone() for n, p in vae.named_parameters() if p.grad is not None}
    return loss.detach(), grads, rows, with_grad


@pytest.mark.parametrize("missing", [0.0, 0.4], ids=["complete", "incomplete"])
@pytest.mark.parametrize("method", list(CASES))
def test_selective_decoding_keeps_the_bound_and_its_gradients(method, missing):
    mods = small_modalities(3)
    vae = CASES[method](mods)
    batch = small_batch(vae.model.modalities, batch_size=16, missing=missing, seed=3)
    vae.initialise(batch)
    loss, grads, rows, with_grad = _loss_grads_and_rows(vae, batch, selective=True)
    loss_all, grads_all, rows_all, with_grad_all = _loss_grads_and_rows(vae, batch, selective=False)
    assert with_grad_all == rows_all
    assert torch.allclose(loss, loss_all, rtol=1e-6, atol=1e-5)
    assert grads.keys() == grads_all.keys()
    for name in grads:
        assert torch.allclose(grads[name], grads_all[name], rtol=1e-5, atol=1e-6), name

    B, M, P = len(batch), len(vae.names), vae.elbo.num_particles
    if method.startswith("meme"):
        lambdas = dict(zip(vae.names, vae.elbo._lambdas(list(vae.names), loss).flatten().tolist()))
    for name in vae.names:
        seen = int(batch.observed(name).sum())  # the samples observing the modality
        if method == "mvae":  # strata: joint, M singletons, 2 random subsets; never another singleton
            strata = 1 + M + 2
            assert rows_all[name] == P * strata * B
            assert rows[name] == with_grad[name] == P * (strata - (M - 1)) * seen
        elif method.startswith("meme"):  # M directions × (K + 1) samples, classifier on paired samples only;
            # its own direction at the main sample only (all K + 1 of the paired ones, Rao-Blackwellised)
            paired = int(batch.mask.all(-1).sum())
            own_draws = P - 1 if vae.elbo.rao_blackwell else 0
            assert rows_all[name] == P * M * B
            assert rows[name] == P * (M - 1) * paired + seen + own_draws * paired
            # Rao-Blackwellised, the classifier of a direction with λ = 1 runs outside autograd
            free = [m for m, lam in lambdas.items() if m != name and lam == 1.0]
            frozen = P * len(free) * paired if vae.elbo.rao_blackwell else 0
            assert with_grad[name] == rows[name] - frozen
        else:  # every stratum reconstructs every observed modality
            assert rows_all[name] % B == 0 and rows[name] == rows_all[name] // B * seen
            assert with_grad[name] == rows[name]
    assert missing == 0.0 or rows != rows_all  # the incomplete batch does lack modalities


def _decode_under(messenger, net, z, likelihood):
    from pyro_mm.modality import decode
    with messenger:
        return decode("m", net, z, likelihood)


@pytest.mark.parametrize("layout", ["cells-and-rows", "per-sample", "per-sample-frozen", "nothing-used"])
def test_the_messenger_decodes_and_scores_exactly_the_used_entries(layout):
    """``decode(name, net, z, likelihood)`` under the messenger: the decoder sees the used
    (cell, sample) entries once each (the frozen ones without autograd); the log-density is the
    full likelihood's on them and zero elsewhere, and so are its gradients."""
    from pyro_mm.infer import SelectiveDecodeMessenger
    from pyro_mm.modality import apply_flat

    torch.manual_seed(0)
    K, S, B, D = 3, 2, 6, 3
    mod = small_modalities(2)[1]  # a Normal likelihood with a learned scale
    net, likelihood = mod.decoder, (lambda params: mod.likelihood(params, mod.event_dim))
    z, x = torch.randn(K, S, B, D), torch.randn(B, *mod.event_shape)
    frozen = None
    if layout == "cells-and-rows":
        cells, rows = torch.tensor([[True, False], [True, True], [False, False]]), torch.rand(B) < 0.5
        messenger = SelectiveDecodeMessenger({"m": cells}, {"m": rows})
        used = cells[..., None] & rows
    elif layout == "nothing-used":
        used = torch.zeros(K, S, B, dtype=torch.bool)
        messenger = SelectiveDecodeMessenger({}, {"m": torch.zeros(B, dtype=torch.bool)})
    else:
        used = torch.rand(K, S, B) < 0.5
        frozen = used & (torch.rand(K, S, B) < 0.5) if layout == "per-sample-frozen" else None
        messenger = SelectiveDecodeMessenger({"m": used}, no_grad={"m": frozen} if frozen is not None else None)
    seen = []
    hook = net.register_forward_hook(lambda m, inp, out: seen.append((inp[0].shape[0], torch.is_grad_enabled())))
    try:
        fn = _decode_under(messenger, net, z, likelihood)
        log_p = fn.log_prob(x)
    finally:
        hook.remove()
    assert fn.batch_shape == (K, S, B) and fn.event_shape == mod.event_shape
    with torch.no_grad():
        full = likelihood(apply_flat(net, z, 1)).log_prob(x)
    assert torch.allclose(log_p, torch.where(used, full, torch.zeros(())), atol=1e-6)
    if layout == "nothing-used":
        assert seen == [(1, False)]  # one entry for the shapes, never scored
        return
    free = used & ~frozen if frozen is not None else used
    assert sum(n for n, grad in seen if grad) == int(free.sum())
    assert sum(n for n, _ in seen) == int(used.sum())
    grads = torch.autograd.grad(log_p.sum(), list(net.parameters()))
    reference = likelihood(apply_flat(net, z, 1)).log_prob(x)
    expected = torch.autograd.grad((reference * free).sum(), list(net.parameters()))
    for g, e in zip(grads, expected):
        assert torch.allclose(g, e, atol=1e-5)


def test_a_decode_without_likelihood_is_decoded_everywhere():
    from pyro_mm.infer import SelectiveDecodeMessenger
    from pyro_mm.modality import apply_flat, decode

    mod = small_modalities(1)[0]
    z = torch.randn(2, 4, 3)
    with SelectiveDecodeMessenger({"m": torch.tensor([True, False])}, {"m": torch.tensor([True, False, True, False])}):
        params = decode("m", mod.decoder, z)
    assert torch.equal(params, apply_flat(mod.decoder, z, 1))
