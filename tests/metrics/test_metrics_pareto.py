import numpy as np
import pytest
import torch
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


def test_bad_inputs():
    with pytest.raises(ValueError, match="num_samples, num_particles"):
        pareto_khat(np.zeros(100))
    with pytest.raises(ValueError, match="at least 25"):
        pareto_khat(np.zeros((2, 10)))
    with pytest.raises(ValueError, match="NaN"):
        pareto_khat(np.full((2, 100), np.nan))
    with pytest.raises(ValueError, match="no k"):
        khat_summary([])
