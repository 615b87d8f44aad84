import numpy as np
import pytest
import torch
from arviz_stats.base import array_stats
from scipy import stats

from pyro_mm.metrics.pareto import khat_summary, pareto_khat


def _log_weights(proposal_scale, samples=40, particles=1000, dim=3, seed=0):
    """Log-weights ``log N(z; 0, 1) - log N(z; 0, s)`` of ``z ~ N(0, s^2 I)`` in ``dim`` dimensions."""
    z = np.random.default_rng(seed).normal(0.0, proposal_scale, (samples, particles, dim))
    return (stats.norm.logpdf(z) - stats.norm.logpdf(z, scale=proposal_scale)).sum(-1)


def test_well_matched_proposal_is_below_threshold():
    khat = pareto_khat(_log_weights(1.2))
    assert khat.shape == (40,)
    summary = khat_summary(khat)
    assert summary["max"] < 0.7 and summary["frac_above"] == 0.0


def test_too_narrow_proposal_is_above_threshold():
    summary = khat_summary(pareto_khat(torch.as_tensor(_log_weights(0.3))))
    assert summary["mean"] > 0.7 and summary["frac_above"] > 0.8


def test_exact_proposal_has_no_tail():
    assert (pareto_khat(np.zeros((3, 100))) == -np.inf).all()


@pytest.mark.parametrize("particles", [25, 100, 226, 1000, 5000])
def test_the_fit_is_arviz_psislw_for_every_row(particles):
    """The vectorised fit returns ArviZ's ``psislw`` k̂ (its argument negated, as a log-likelihood)
    row by row to float64 round-off, across the small-K (K / 5) and large-K (3 √K) tail sizes and
    light to heavy tails; a float64 tensor on the weights' device."""
    rng = np.random.default_rng(particles)
    for spread in (0.3, 1.2, 3.0):
        lw = rng.normal(0.0, spread, (30, particles)) + rng.standard_t(4, (30, particles))
        khat = pareto_khat(torch.as_tensor(lw, dtype=torch.float32))
        assert khat.dtype == torch.float64 and khat.device == torch.device("cpu") and khat.shape == (30,)
        reference = array_stats.psislw(-lw.astype(np.float32).astype(np.float64), r_eff=1.0, axis=-1)[1]
        np.testing.assert_allclose(khat.numpy(), reference, rtol=0, atol=1e-10)


def test_rows_are_independent_and_blocks_change_nothing(monkeypatch):
    lw = _log_weights(0.5, samples=12)
    whole = pareto_khat(lw)
    monkeypatch.setattr("pyro_mm.metrics.pareto._BLOCK_ELEMENTS", 1)  # one row per block
    assert torch.equal(pareto_khat(lw), whole)
    assert torch.equal(pareto_khat(lw[5:7]), whole[5:7])


def test_one_weight_beyond_float64_range_of_the_others_is_flagged_infinite():
    """Every other exceedance underflows to zero: the fit is undefined, one draw carries the
    estimate, k̂ = +inf (ArviZ returns its prior's 0.02 there); the other rows are unaffected."""
    lw = _log_weights(1.2, samples=3)
    lw[1, 7] = lw[1].max() + 1000.0
    khat = pareto_khat(lw)
    assert khat[1] == np.inf and torch.equal(khat[[0, 2]], pareto_khat(lw[[0, 2]]))
    with np.errstate(divide="ignore", invalid="ignore"):
        assert array_stats.psislw(-lw[1], r_eff=1.0)[1] < 0.7


def test_bad_inputs():
    with pytest.raises(ValueError, match="num_samples, num_particles"):
        pareto_khat(np.zeros(100))
    with pytest.raises(ValueError, match="at least 25"):
        pareto_khat(np.zeros((2, 10)))
    with pytest.raises(ValueError, match="NaN"):
        pareto_khat(np.full((2, 100), np.nan))
    with pytest.raises(ValueError, match="no k"):
        khat_summary([])
