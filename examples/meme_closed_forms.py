"""MEME's terms on a linear-Gaussian pair (s, t) beside their closed forms.

* unpaired s with ONE pseudo-sample u and the s encoder set to the exact posterior under the prior
  q(z | u): L(s) equals log p(s) under that prior, with zero variance;
* unpaired s with N = 5 pseudo-samples: E L(s) stays below log (1/N) Σ_i ∫ p(s|z) q(z|u_i) dz;
* paired (s, t): E log q̂(t|s) stays below log q(t|s) = log ∫ q(z|s) p(t|z) dz and approaches
  it as K grows.

    python examples/meme_closed_forms.py [--small]
"""

import argparse
import math

import pyro
import torch

from pyro_mm.batch import MultimodalBatch
from pyro_mm.guides import MutualSupervisionGuide
from pyro_mm.infer import TraceMEME_ELBO
from pyro_mm.linear_gaussian import LinearGaussianModel
from pyro_mm.models import MutualSupervisionModel


def gaussian_marginal(A, b, sigma, loc, var, x):
    """log ∫ N(x; A z + b, σ² I) N(z; loc, diag var) dz, batched over rows of loc/var/x."""
    cov = A @ torch.diag_embed(var) @ A.T + sigma ** 2 * torch.eye(A.shape[0], dtype=torch.float64)
    return torch.distributions.MultivariateNormal(loc @ A.T + b, cov).log_prob(x)


def main(args):
    pyro.enable_validation(False)
    torch.manual_seed(0)  # the bounds' draws: the same command prints the same tables
    lg = LinearGaussianModel.random([3, 4], z_dim=2, seed=0, names=["s", "t"])
    mods = lg.modalities()
    x = lg.sample(args.samples, torch.Generator().manual_seed(1))
    s_only = MultimodalBatch({"s": x["s"], "t": x["t"]}, torch.tensor([[True, False]]).expand(args.samples, 2))
    A, b, sigma = lg.A[0], lg.b[0], lg.sigma[0]

    # 1. one pseudo-sample, exact posterior encoder
    u = lg.sample(1, torch.Generator().manual_seed(9))["t"]
    model = MutualSupervisionModel(mods, 2, pseudo_samples={"t": u, "s": x["s"][:1]}).double()
    guide = MutualSupervisionGuide(mods)
    with torch.no_grad():
        m_u, s_u = model.pseudo_experts("t")
        prior_prec = s_u[0] ** -2
        prec = prior_prec + torch.diagonal(A.T @ A) / sigma ** 2
        enc = mods[0].encoder
        enc.linear.weight.copy_((A / sigma ** 2).T / prec[:, None])
        enc.linear.bias.copy_((prior_prec * m_u[0] - A.T @ b / sigma ** 2) / prec)
        enc.log_scale.copy_(-0.5 * prec.log())
    exact = gaussian_marginal(A, b, sigma, m_u, s_u ** 2, x["s"])
    draws = torch.stack([TraceMEME_ELBO().bound(model, guide, s_only) for _ in range(5)])
    print("1. unpaired L(s), N = 1, exact posterior encoder")
    print(f"   mean L(s) = {draws.mean():.6f}   closed-form log p(s) = {exact.mean():.6f}   "
          f"max |L(s) − log p(s)| = {(draws - exact).abs().max():.2e}   std over draws = {draws.std(0).max():.2e}")

    # 2. five pseudo-samples, the trained-as-is encoder
    mods = lg.modalities()
    u = lg.sample(5, torch.Generator().manual_seed(3))["t"]
    model = MutualSupervisionModel(mods, 2, pseudo_samples={"t": u, "s": x["s"][:5]}).double()
    guide = MutualSupervisionGuide(mods)
    with torch.no_grad():
        m, s = model.pseudo_experts("t")
    comps = torch.stack([gaussian_marginal(A, b, sigma, m[i:i + 1], s[i:i + 1] ** 2, x["s"]) for i in range(5)])
    mixture = (comps.logsumexp(0) - math.log(5)).mean()
    bound = torch.stack([TraceMEME_ELBO().bound(model, guide, s_only) for _ in range(args.repeats)]).mean()
    print("2. unpaired L(s), N = 5")
    print(f"   mean L(s) = {bound:.4f}   ≤   log mixture marginal = {mixture:.4f}")

    # 3. paired: the classifier estimate q̂(t|s)
    paired = MultimodalBatch({"s": x["s"], "t": x["t"]})
    with torch.no_grad():
        loc, scale = mods[0].encoder(x["s"])
    closed = gaussian_marginal(lg.A[1], lg.b[1], lg.sigma[1], loc, scale ** 2, x["t"]).mean()
    print("3. paired: E log q̂(t|s) vs log q(t|s) (closed form)")
    for K in (1, 5, 50):
        est = torch.stack([TraceMEME_ELBO(num_particles=K).terms(model, guide, paired)["log_qhat"][0]
                           for _ in range(args.repeats)]).mean()
        print(f"   K = {K:2d}: E log q̂ = {est:.4f}   log q(t|s) = {closed:.4f}   gap = {closed - est:.4f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--small", action="store_true", help="tiny sizes (run by the tests)")
    args = parser.parse_args()
    if args.small:
        args.samples, args.repeats = 100, 2
    main(args)
