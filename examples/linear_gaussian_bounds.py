"""Every bound of pyro_mm on a linear-Gaussian model, beside its closed form.

At the true decoders, with exact or optimal encoders, the table compares each bound (averaged
over the data) with the exact log p(X) and the closed-form sub-sampling gap Σ_S ω_S Δ_S of
Daunhawer et al. (``docs/objectives.md``). Then linear-Gaussian models are *trained* with the full-set bound
and with the singleton (MMVAE-family) mixture bound, and their exact log-likelihoods compared.

    python examples/linear_gaussian_bounds.py            # full size
    python examples/linear_gaussian_bounds.py --small    # seconds (run by the tests)
"""

import argparse

import pyro
import torch
from pyro.infer import SVI
from pyro.optim import ClippedAdam

from pyro_mm.batch import MultimodalBatch
from pyro_mm.guides import MixtureOfExpertsGuide, ProductOfExpertsGuide, SubsetMixtureGuide
from pyro_mm.infer import TraceMixture_ELBO, TraceMVAE_ELBO
from pyro_mm.likelihoods import Normal
from pyro_mm.linear_gaussian import LinearGaussianModel, OptimalSubsetMixture
from pyro_mm.modality import Modality
from pyro_mm.models import SharedLatentModel
from pyro_mm.nets import LinearDecoder, LinearEncoder
from pyro_mm.subsets import full_set, power_set, singletons


def bounds_at_the_truth(lg, n, seed):
    x = lg.sample(n, torch.Generator().manual_seed(seed))
    x.pop("z")
    batch = MultimodalBatch(x)
    mods = lg.modalities()
    model = SharedLatentModel(mods, lg.z_dim).double()
    log_p = lg.log_likelihood(x).mean().item()
    M = lg.num_modalities
    rows = [("exact log p(X)", log_p, 0.0)]
    rows.append(("PoE guide, exact experts", TraceMixture_ELBO().bound(model, ProductOfExpertsGuide(mods), batch).mean().item(), 0.0))
    for name, family in (("full set", full_set(M)), ("power set (MoPoE)", power_set(M)), ("singletons (MMVAE)", singletons(M))):
        guide = SubsetMixtureGuide(mods, family, mixture=OptimalSubsetMixture)
        bound = TraceMixture_ELBO(density="subset").bound(model, guide, batch).mean().item()
        subsets = [row.nonzero().flatten().tolist() for row in family.members()]
        rows.append((f"mixture bound, {name}, optimal encoders", bound, lg.subsampling_gap(subsets)))
    mvae = TraceMVAE_ELBO().bound(model, ProductOfExpertsGuide(mods), batch).mean().item()
    rows.append(("MVAE objective (= log p(X) + Σ_m log p(x_m))", mvae, float("nan")))
    return rows, log_p


def train(lg, x, guide_cls, elbo, steps, seed=0):
    torch.manual_seed(seed)
    pyro.clear_param_store()
    mods = [Modality(n, (a.shape[0],), LinearEncoder(a.shape[0], lg.z_dim).double(),
                     LinearDecoder(lg.z_dim, a.shape[0]).double(), Normal(1.0, learn_scale=True).double())
            for n, a in zip(lg.names, lg.A)]
    model = SharedLatentModel(mods, lg.z_dim).double()
    guide = guide_cls(mods)
    svi = SVI(model, guide, ClippedAdam({"lr": 0.05, "lrd": 0.997}), loss=elbo)
    batch = MultimodalBatch(x)
    for _ in range(steps):
        svi.step(batch)
    bound = -elbo.loss(model, guide, batch) / len(batch)
    return bound, LinearGaussianModel.from_modalities(mods).log_likelihood(x).mean().item()


def main(args):
    pyro.enable_validation(False)
    torch.manual_seed(args.seed)  # the bounds' draws: the same command prints the same tables
    lg = LinearGaussianModel.random([3, 4, 3], z_dim=2, seed=args.seed)
    rows, log_p = bounds_at_the_truth(lg, args.samples, args.seed + 1)
    print(f"At the true decoders ({args.samples} samples; the Monte Carlo error of the mixture bounds is about 0.01):\n")
    print("| bound | mean over data | log p(X) − Σ ω_S Δ_S | Σ ω_S Δ_S |")
    print("|---|---:|---:|---:|")
    for name, value, gap in rows:
        target = "—" if gap != gap else f"{log_p - gap:.4f}"
        print(f"| {name} | {value:.4f} | {target} | {'—' if gap != gap else f'{gap:.4f}'} |")
    truth = LinearGaussianModel.random([3, 3], z_dim=2, seed=3)
    x = truth.sample(args.train_samples, torch.Generator().manual_seed(1))
    x.pop("z")
    print(f"\nTraining linear-Gaussian models ({args.train_samples} samples, {args.steps} steps):\n")
    print("| trained with | final bound | exact log-lik of learned model | data log-lik under true model |")
    print("|---|---:|---:|---:|")
    data_ll = truth.log_likelihood(x).mean().item()
    for name, guide_cls, elbo in (("full-set bound (PoE)", ProductOfExpertsGuide, TraceMixture_ELBO()),
                                  ("singleton mixture bound", MixtureOfExpertsGuide, TraceMixture_ELBO(density="subset"))):
        bound, learned = train(truth, x, guide_cls, elbo, args.steps)
        print(f"| {name} | {bound:.4f} | {learned:.4f} | {data_ll:.4f} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=40000)
    parser.add_argument("--train-samples", type=int, default=500)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--small", action="store_true", help="a few seconds: tiny sizes")
    args = parser.parse_args()
    if args.small:
        args.samples, args.train_samples, args.steps = 2000, 200, 50
    main(args)
