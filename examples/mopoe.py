"""MoPoE-VAE (Sutter et al. 2021) on five PolyMNIST modalities: all subsets vs sub-sampled subsets.

The mixture-of-products posterior has one component per non-empty subset of the observed
modalities (31 for five). ``TraceMixture_ELBO(num_subsets=k)`` draws k available subsets per
sample and step, re-weighted so the bound stays unbiased, so the cost no longer grows with 2^M.
The script trains both variants for the same time and prints the steps each managed and the
cross coherence by number of given modalities.

    python examples/mopoe.py [--small]
"""

import argparse

import torch

from pyro_mm.api import MoPoE
from pyro_mm.data import PolyMNIST
from pyro_mm.metrics import classifiers_for, cross_coherence


def main(args):
    train = PolyMNIST("train", num_modalities=5, size=args.size)
    test = PolyMNIST("test", num_modalities=5, size=args.test_size)
    classifiers, _ = classifiers_for(train, test, progress=not args.small)
    batch = test.batch(torch.arange(len(test)), complete=True)
    print("| subsets per step | steps in budget | coherence given 1 | 2 | 3 | 4 |")
    print("|---|---:|---:|---:|---:|---:|")
    for num_subsets in (None, 4):
        torch.manual_seed(0)
        vae = MoPoE.for_dataset(train, z_dim=16, num_subsets=num_subsets)
        steps = []
        vae.fit(train, epochs=100, batch_size=64, lr=1e-3, time_budget=args.budget, progress=not args.small,
                callback=lambda record: steps.append(record.loss))
        coherence = cross_coherence(lambda b, given, target: vae.predict(b, given, [target])[target], [batch],
                                    classifiers, test.names)
        sizes = " | ".join(f"{coherence.by_size[k]:.3f}" for k in range(1, 5))
        print(f"| {'all 31' if num_subsets is None else num_subsets} | {len(steps)} | {sizes} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", action="store_true", help="seconds: tiny sizes (run by the tests)")
    args = parser.parse_args()
    args.size, args.test_size, args.budget = (100, 30, 3) if args.small else (None, 500, 600)
    main(args)
