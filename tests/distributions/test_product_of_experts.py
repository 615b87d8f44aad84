"""Product of experts: closed form, exact masking, stability at extreme scales."""

import torch

from pyro_mm.distributions import ProductOfExperts, product_of_experts


def _naive(loc, scale, include, prior):
    prec = scale.pow(-2) * include[..., None]
    total = prec.sum(-2) + float(prior)
    return (prec * loc).sum(-2) / total, total.rsqrt()


def test_matches_the_precision_weighted_closed_form():
    torch.manual_seed(0)
    loc, scale = torch.randn(5, 3, 4, dtype=torch.float64), torch.rand(5, 3, 4, dtype=torch.float64) + 0.2
    include = torch.rand(5, 3) > 0.4
    for prior in (True, False):
        inc = include.clone()
        if not prior:
            inc[:, 0] = True
        mean, sd = product_of_experts(loc, scale, inc, prior)
        m2, s2 = _naive(loc, scale, inc, prior)
        assert torch.allclose(mean, m2) and torch.allclose(sd, s2)


def test_excluded_experts_get_exactly_zero_gradient_and_empty_products_stay_finite():
    loc = torch.randn(2, 3, 2, requires_grad=True)
    scale = (torch.rand(2, 3, 2) + 0.1).requires_grad_()
    include = torch.tensor([[True, False, True], [False, False, False]])
    mean, sd = product_of_experts(loc, scale, include, False)
    assert torch.isfinite(mean).all() and torch.isfinite(sd).all()
    assert torch.equal(mean[1], torch.zeros(2)) and torch.equal(sd[1], torch.ones(2))
    (mean.sum() + sd.sum()).backward()
    assert torch.equal(loc.grad[0, 1], torch.zeros(2)) and torch.equal(scale.grad[1], torch.zeros(3, 2))
    assert (loc.grad[0, 0] != 0).all()


def test_extreme_scales_are_stable():
    loc = torch.tensor([[[1.0], [3.0]]])
    scale = torch.tensor([[[1e-20], [1e20]]])
    mean, sd = product_of_experts(loc, scale, torch.ones(1, 2, dtype=torch.bool), True)
    assert torch.allclose(mean, torch.tensor([[1.0]])) and torch.allclose(sd, torch.tensor([[1e-20]]), rtol=1e-4)


def test_distribution_samples_and_scores_the_product():
    """Parameters and density against the closed form (two computations of the same numbers, so
    in float64), draws within five standard errors: s / √n for a mean, s / √(2n) for a standard
    deviation."""
    torch.manual_seed(1)
    n = 20000
    loc, scale = torch.randn(3, 2, 2, dtype=torch.float64), torch.rand(3, 2, 2, dtype=torch.float64) + 0.5
    observed = torch.tensor([[1, 1], [0, 1], [1, 0]], dtype=torch.bool)
    q = ProductOfExperts(loc, scale, observed, prior_expert=True)
    m, s = _naive(loc, scale, observed, True)
    assert torch.allclose(q.loc, m) and torch.allclose(q.scale, s)
    z = q.rsample((n,))
    assert ((z.mean(0) - m).abs() < 5 * s / n ** 0.5).all()
    assert ((z.std(0) - s).abs() < 5 * s / (2 * n) ** 0.5).all()
    ref = torch.distributions.Normal(m, s).log_prob(z).sum(-1)
    assert torch.allclose(q.log_prob(z), ref, atol=1e-5)
