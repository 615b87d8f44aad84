"""Likelihood distributions against torch's own densities."""

import pyro.distributions as dist
import pytest
import torch

from pyro_mm.likelihoods import IndependentBernoulli


@pytest.mark.parametrize("event_dims", [0, 1, 2])
@pytest.mark.parametrize("data", ["binary", "intensities"])
def test_independent_bernoulli_is_the_summed_elementwise_bernoulli(event_dims, data):
    """Σ x ℓ − Σ softplus(ℓ) equals torch's Bernoulli log-density summed over the event, with
    logits of several particles broadcast against one batch of data (logits up to ±30, where the
    two sums are large and nearly cancel), in value and in gradient."""
    g = torch.Generator().manual_seed(0)
    logits = (30 * (2 * torch.rand(4, 5, 6, 7, generator=g, dtype=torch.float64) - 1)).requires_grad_()
    x = torch.rand(5, 6, 7, generator=g, dtype=torch.float64)
    if data == "binary":
        x = x.round()
    ours = IndependentBernoulli(dist.Bernoulli(logits=logits, validate_args=False), event_dims).log_prob(x)
    reference = dist.Bernoulli(logits=logits, validate_args=False).to_event(event_dims).log_prob(x)
    assert ours.shape == reference.shape == (4, 5, 6, 7)[: 4 - event_dims]
    assert torch.allclose(ours, reference, rtol=1e-12, atol=1e-10)
    (g_ours,) = torch.autograd.grad(ours.sum(), logits)
    (g_ref,) = torch.autograd.grad(reference.sum(), logits)
    assert torch.allclose(g_ours, g_ref, rtol=1e-12, atol=1e-12)
    in_float32 = IndependentBernoulli(dist.Bernoulli(logits=logits.detach().float(), validate_args=False),
                                      event_dims).log_prob(x.float())
    assert torch.allclose(in_float32.double(), reference.detach(), rtol=1e-5, atol=1e-3)
