"""Subset mixtures and their stratification."""

import torch

from pyro_mm.distributions import StratifiedPosterior, SubsetMixture
from pyro_mm.subsets import power_set, singletons


def _experts(B=3, M=3, D=2):
    torch.manual_seed(0)
    return torch.randn(B, M, D, dtype=torch.float64), torch.rand(B, M, D, dtype=torch.float64) + 0.3


def test_mixture_density_over_available_components():
    loc, scale = _experts()
    observed = torch.tensor([[1, 1, 1], [1, 0, 1], [0, 1, 0]], dtype=torch.bool)
    q = SubsetMixture(loc, scale, observed, singletons(3))
    z = torch.randn(5, 3, 2, dtype=torch.float64)
    for b in range(3):
        comps = [torch.distributions.Normal(loc[b, m], scale[b, m]).log_prob(z[:, b]).sum(-1)
                 for m in range(3) if observed[b, m]]
        ref = torch.logsumexp(torch.stack(comps), 0) - torch.log(torch.tensor(float(len(comps))))
        assert torch.allclose(q.log_prob(z)[:, b], ref.double())


def test_rsample_draws_from_the_mixture():
    """Half the draws from each component N(±3, 0.5²): within five standard errors, √(¼ / n) for
    the fraction of positive draws and 0.5 / √n for the mean of |z| (|z| ~ N(3, 0.5²), its
    folding at 0 six standard deviations away is negligible)."""
    n = 40000
    loc = torch.tensor([[[-3.0], [3.0]]])
    scale = torch.full_like(loc, 0.5)
    q = SubsetMixture(loc, scale, torch.ones(1, 2, dtype=torch.bool), singletons(2))
    z = q.rsample((n,))
    assert abs((z > 0).double().mean().item() - 0.5) < 5 * (0.25 / n) ** 0.5
    assert abs(z.abs().mean().item() - 3.0) < 5 * 0.5 / n ** 0.5


def test_stratified_draws_come_from_each_component_and_mask_missing_experts():
    loc, scale = _experts()
    observed = torch.tensor([[1, 1, 1], [1, 0, 1], [0, 1, 0]], dtype=torch.bool)
    q = SubsetMixture(loc, scale, observed, power_set(3), prior_expert="full")
    subsets, weights = q.strata()
    assert subsets.shape == (7, 3, 3)
    assert torch.allclose(weights.sum(0), torch.ones(3, dtype=torch.float64))
    strat = StratifiedPosterior(q, subsets, weights)
    assert strat.batch_shape == (7, 3)
    assert not (strat.subsets & ~observed).any()
    n = 3000
    z = strat.rsample((n,))
    assert ((z.mean(0) - strat.loc).abs() < 5 * strat.scale / n ** 0.5).all()  # five standard errors
    # the full-set component of a complete sample includes the prior expert
    full = subsets[:, 0].all(-1).nonzero().item()
    prec = (scale[0] ** -2).sum(0) + 1
    assert torch.allclose(strat.scale[full, 0], prec.rsqrt())
