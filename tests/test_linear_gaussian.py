"""The linear-Gaussian closed forms against Monte Carlo and direct computation."""

import torch

from pyro_mm.linear_gaussian import LinearGaussianModel


def test_marginal_likelihood_matches_monte_carlo_over_z():
    lg = LinearGaussianModel.random([2, 3], z_dim=2, seed=0)
    x = lg.sample(3, torch.Generator().manual_seed(1))
    z = torch.randn(200000, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    logp = 0.0
    for name, A, b, s in zip(lg.names, lg.A, lg.b, lg.sigma):
        mean = z @ A.T + b
        logp = logp + torch.distributions.Normal(mean[:, None], s).log_prob(x[name][None]).sum(-1)
    mc = torch.logsumexp(logp, 0) - torch.log(torch.tensor(200000.0, dtype=torch.float64))
    assert torch.allclose(mc, lg.log_likelihood(x), atol=0.02)


def test_posterior_is_the_normalised_joint():
    lg = LinearGaussianModel.random([3, 3], z_dim=2, seed=1)
    x = lg.sample(1, torch.Generator().manual_seed(0))
    z = torch.randn(5, 2, dtype=torch.float64)
    post = torch.distributions.MultivariateNormal(lg.posterior_mean(x, [0, 1])[0], lg.posterior_cov([0, 1]))
    joint = torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(-1)
    for name, A, b, s in zip(lg.names, lg.A, lg.b, lg.sigma):
        joint = joint + torch.distributions.Normal(z @ A.T + b, s).log_prob(x[name]).sum(-1)
    assert torch.allclose(joint - post.log_prob(z), lg.log_likelihood(x).expand(5))


def test_gap_is_zero_for_the_full_set_and_positive_for_a_strict_subset():
    lg = LinearGaussianModel.random([3, 3, 3], z_dim=2, seed=2)
    assert abs(lg.subset_gap([0, 1, 2])) < 1e-12
    assert lg.subset_gap([0]) > lg.subset_gap([0, 1]) > 0
