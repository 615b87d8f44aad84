"""Importance-sampled likelihoods against linear-Gaussian closed forms, with Pareto k̂."""

import pytest
import torch

import pyro_mm.metrics.likelihood as likelihood
from pyro_mm.batch import MultimodalBatch
from pyro_mm.guides import ProductOfExpertsGuide
from pyro_mm.linear_gaussian import LinearGaussianModel
from pyro_mm.metrics import conditional_log_likelihood, log_likelihood
from pyro_mm.models import SharedLatentModel


def _setup(missing=False):
    lg = LinearGaussianModel.random([3, 4], z_dim=2, seed=0)
    x = lg.sample(40, torch.Generator().manual_seed(1))
    x.pop("z")
    mask = torch.ones(40, 2, dtype=torch.bool)
    if missing:
        mask[::3, 1] = False
    mods = lg.modalities()
    return lg, x, mask, mods, SharedLatentModel(mods, 2).double()


def test_exact_posterior_gives_the_closed_form_with_small_khat():
    for missing in (False, True):
        lg, x, mask, mods, model = _setup(missing)
        out = log_likelihood(model, ProductOfExpertsGuide(mods), MultimodalBatch(x, mask), num_particles=200,
                             chunk_size=64)
        assert torch.allclose(out["log_likelihood"], lg.log_likelihood_masked(x, mask), atol=1e-6)
        assert (out["khat"] < 0.7).all()


def test_a_reasonable_proposal_converges_and_a_too_narrow_one_is_flagged():
    lg, x, mask, mods, model = _setup()
    exact = lg.log_likelihood(x)
    with torch.no_grad():
        for m in mods:
            m.encoder.log_scale.add_(0.4)  # a proposal 1.5x wider than the posterior
    out = log_likelihood(model, ProductOfExpertsGuide(mods), MultimodalBatch(x, mask), num_particles=2000,
                         chunk_size=500)
    assert (out["log_likelihood"] - exact).abs().mean() < 0.1 and (out["log_likelihood"] <= exact + 0.3).all()
    assert (out["khat"] < 0.7).float().mean() > 0.9
    with torch.no_grad():
        for m in mods:
            m.encoder.log_scale.sub_(2.9)  # then 12x narrower than the posterior
    bad = log_likelihood(model, ProductOfExpertsGuide(mods), MultimodalBatch(x, mask), num_particles=2000,
                         chunk_size=500)
    assert (bad["khat"] > 0.7).float().mean() > 0.9


def test_conditional_likelihood_with_the_exact_posterior_matches_the_closed_form():
    """Within Monte Carlo error (4 000 particles: mean error ≈ 0.02 nats, the worst of 40 samples
    0.08–0.22 over seeds)."""
    lg, x, mask, mods, model = _setup()
    torch.manual_seed(0)
    out = conditional_log_likelihood(model, ProductOfExpertsGuide(mods), MultimodalBatch(x, mask), "x1", ["x0"],
                                     num_particles=4000, chunk_size=1000)
    error = (out["log_likelihood"] - (lg.log_likelihood(x) - lg.log_likelihood(x, [0]))).abs()
    assert error.mean() < 0.04 and error.max() < 0.3, error


def test_chunks_hold_at_most_max_chunk_rows_and_change_nothing(monkeypatch):
    """Chunking is bookkeeping. With the exact posterior as proposal every log-weight is log p(X_o)
    whatever z is drawn, so every chunking must give the closed form; the guide runs once per
    chunk: default chunks are all particles of blocks of MAX_CHUNK_ROWS // K samples (each sample
    encoded once), explicit ones ``chunk_size`` particles of MAX_CHUNK_ROWS // chunk_size samples.
    Complete and incomplete data; the conditional estimator too."""
    for missing in (False, True):
        lg, x, mask, mods, model = _setup(missing)
        guide, batch = ProductOfExpertsGuide(mods), MultimodalBatch(x, mask)
        exact = lg.log_likelihood_masked(x, mask)
        calls = []
        counted = lambda b: calls.append(len(b)) or guide(b)  # noqa: E731
        # (particles per chunk, MAX_CHUNK_ROWS, samples per guide call) for 30 particles of 40 samples
        for chunk, max_rows, blocks in ((None, 2 ** 15, [40]), (7, 2 ** 15, [40] * 5), (None, 30 * 16, [16, 16, 8]),
                                        (10, 10 * 20, [20] * 6), (None, 5, [1] * 40 * 6)):
            monkeypatch.setattr(likelihood, "MAX_CHUNK_ROWS", max_rows)
            calls.clear()
            weights = likelihood.importance_log_weights(model, counted, batch, 30, chunk)
            assert weights.shape == (30, 40)
            assert sorted(calls) == sorted(blocks), (chunk, max_rows)
            assert torch.allclose(weights, exact.expand(30, -1), atol=1e-6), (chunk, max_rows)
        # the conditional estimator pairs each block's draws with the same block's targets
        monkeypatch.setattr(likelihood, "MAX_CHUNK_ROWS", 200 * 16)
        calls.clear()
        torch.manual_seed(0)
        cond = conditional_log_likelihood(model, counted, batch, "x1", ["x0"], num_particles=200)
        rows = int(cond["rows"].sum())
        assert sorted(calls) == sorted([16] * (rows // 16) + ([rows % 16] if rows % 16 else []))
        error = cond["log_likelihood"] - (lg.log_likelihood(x) - lg.log_likelihood(x, [0]))[cond["rows"]]
        assert error.abs().mean() < 0.3, error  # Monte Carlo ≈ 0.1; targets of other rows: ≈ 1.8


def test_bad_particle_and_chunk_counts_are_named():
    _, x, mask, mods, model = _setup()
    batch = MultimodalBatch(x, mask)
    for bad in (0, 2.5, True):
        with pytest.raises(ValueError, match="chunk_size"):
            log_likelihood(model, ProductOfExpertsGuide(mods), batch, 10, chunk_size=bad)
    with pytest.raises(ValueError, match="num_particles"):
        log_likelihood(model, ProductOfExpertsGuide(mods), batch, 0)
    with pytest.raises(ValueError, match="no sample"):
        log_likelihood(model, ProductOfExpertsGuide(mods), batch.select(torch.zeros(0, dtype=torch.long)), 10)


def test_cpu_chunks_keep_the_widest_modality_within_the_cache_budget(monkeypatch):
    """On a CPU a default chunk holds at most CPU_CHUNK_BYTES of the widest modality as float32
    (here 4 features of x1 -> 16 bytes a row), all particles of as many samples as fit, and at
    least one sample; the estimate does not depend on it."""
    lg, x, mask, mods, model = _setup(missing=True)
    guide, batch = ProductOfExpertsGuide(mods), MultimodalBatch(x, mask)
    exact = lg.log_likelihood_masked(x, mask)
    calls = []
    counted = lambda b: calls.append(len(b)) or guide(b)  # noqa: E731
    for budget, blocks in ((16 * 30 * 16, [16, 16, 8]), (16 * 30 * 7, [7] * 5 + [5]), (16, [1] * 40)):
        monkeypatch.setattr(likelihood, "CPU_CHUNK_BYTES", budget)
        assert likelihood.chunk_rows(batch) == max(1, budget // 16)
        calls.clear()
        weights = likelihood.importance_log_weights(model, counted, batch, 30)
        assert sorted(calls) == sorted(blocks), budget
        assert torch.allclose(weights, exact.expand(30, -1), atol=1e-6)


class _RowCounter(torch.nn.Module):
    """A decoder that records how many rows it is asked to decode."""

    def __init__(self, net):
        super().__init__()
        self.net, self.rows = net, []

    def forward(self, z):
        self.rows.append(z.shape[0])
        return self.net(z)


def test_decoders_run_only_where_the_estimate_reads_the_likelihood(monkeypatch):
    """The joint estimate decodes a modality only for the samples observing it, the conditional
    one its target alone (and one entry of the others, never scored, for the likelihood's shapes);
    with the same draws the estimates equal those of decoding everything.
    Complete and incomplete data."""
    for missing in (False, True):
        lg, x, mask, mods, model = _setup(missing)
        for m in mods:
            m.decoder = _RowCounter(m.decoder)
        model = SharedLatentModel(mods, 2).double()
        guide, batch = ProductOfExpertsGuide(mods), MultimodalBatch(x, mask)

        def run(estimate, *args, skip=True):
            if not skip:  # every modality decoded for every sample
                monkeypatch.setattr(likelihood, "observed_rows", lambda *a: None)
                monkeypatch.setattr(likelihood, "SelectiveDecodeMessenger", lambda *a: likelihood.poutine.messenger.Messenger())
            for m in mods:
                m.decoder.rows.clear()
            torch.manual_seed(0)
            out = estimate(model, guide, batch, *args, num_particles=30, chunk_size=30)
            monkeypatch.undo()
            return out, [sum(m.decoder.rows) for m in mods]

        joint, decoded = run(log_likelihood)
        assert decoded == [30 * int(mask[:, i].sum()) for i in range(2)]
        full, decoded_all = run(log_likelihood, skip=False)
        assert decoded_all == [30 * 40, 30 * 40]
        assert torch.allclose(joint["log_likelihood"], full["log_likelihood"], atol=1e-10)
        cond, decoded = run(conditional_log_likelihood, "x1", ["x0"])
        assert decoded == [1, 30 * int(cond["rows"].sum())]  # x0: one entry of the one block, for shapes
        cond_full, _ = run(conditional_log_likelihood, "x1", ["x0"], skip=False)
        assert torch.allclose(cond["log_likelihood"], cond_full["log_likelihood"], atol=1e-10)
