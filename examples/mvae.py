"""MVAE (Wu & Goodman 2018) on PolyMNIST with modalities missing at random.

The product-of-experts posterior takes any subset of observed modalities; ``TraceMVAE_ELBO`` adds
the ELBO of the full observed set, of every single modality and of ``num_random_subsets`` random
subsets, with the KL annealed in over ``annealing_steps``. The script trains MVAE on three
PolyMNIST modalities, each missing with probability 0.3 per sample, and prints how coherent the
generated modality m0 is as more modalities are given — PoE posteriors sharpen with every expert.

    python examples/mvae.py [--small]
"""

import argparse

import torch

from pyro_mm.api import MVAE
from pyro_mm.data import MissingAtRandom, PolyMNIST
from pyro_mm.metrics import classifiers_for, cross_coherence


def main(args):
    torch.manual_seed(0)
    train = PolyMNIST("train", num_modalities=3, size=args.size, observation=MissingAtRandom(0.3))
    test = PolyMNIST("test", num_modalities=3, size=args.test_size)
    vae = MVAE.for_dataset(train, z_dim=16, num_random_subsets=1, annealing_steps=args.annealing)
    vae.fit(train, epochs=args.epochs, batch_size=128, lr=1e-3, progress=not args.small)
    classifiers, _ = classifiers_for(PolyMNIST("train", num_modalities=3, size=args.size), test,
                                     progress=not args.small)
    batch = test.batch(torch.arange(len(test)), complete=True)
    subsets = [("m1",), ("m2",), ("m1", "m2")]
    result = cross_coherence(lambda b, given, target: vae.predict(b, given, [target])[target], [batch],
                             classifiers, test.names, subsets=subsets)
    print("| given | coherence of generated m0 |")
    print("|---|---:|")
    for given in subsets:
        print(f"| {' + '.join(given)} | {result.pairs[(given, 'm0')]:.3f} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", action="store_true", help="seconds: tiny sizes (run by the tests)")
    args = parser.parse_args()
    args.size, args.test_size, args.epochs, args.annealing = (300, 60, 1, 2) if args.small else (None, 1000, 5, 2000)
    main(args)
