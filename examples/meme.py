"""MEME (Joy et al. 2022) on MNIST–SynDigits when only a quarter of the pairs are kept.

With paired fraction f = 0.25, three quarters of the samples observe a single modality: for them
``TraceMEME_ELBO`` uses the pseudo-sample prior of the missing one, and the paired quarter teaches
each encoder to act as the other's conditional prior. MEME's own diagnostic of what the latent
space learned is *relatedness*: the 2-Wasserstein distance between q(z | mnist) and q(z | syndigits)
is small for true pairs and large for unrelated ones (digits of other classes). The script prints
that gap beside the cross coherence.

    python examples/meme.py [--small]
"""

import argparse

import torch

from pyro_mm.api import MEME, default_modalities
from pyro_mm.data import MNISTSynDigits, PairedFraction
from pyro_mm.metrics import classifiers_for, cross_coherence
from pyro_mm.metrics.relatedness import paired_unpaired_distances


def main(args):
    torch.manual_seed(0)
    train = MNISTSynDigits("train", size=args.size, observation=PairedFraction(args.fraction, "alternate"))
    test = MNISTSynDigits("test", size=args.test_size)
    modalities = default_modalities(train, 16, standardize_colour=True, balance_images=True)
    vae = MEME(modalities, 16)  # the default preset: λ = 10 summed, K = 5, Rao–Blackwellised
    vae.fit(train, epochs=None, steps=args.steps, batch_size=128, lr=2e-3, lr_schedule="cosine", warmup_steps=100,
            seed=0, progress=not args.small)
    classifiers, _ = classifiers_for(MNISTSynDigits("train", size=args.classifier_size), test,
                                     progress=not args.small)
    batch = test.batch(torch.arange(len(test)), complete=True)
    coherence = cross_coherence(lambda b, given, target: vae.predict(b, given, [target])[target], [batch],
                                classifiers, test.names)
    with torch.no_grad():
        loc, scale, _ = vae.guide.experts(batch)
    w2 = paired_unpaired_distances(loc[:, 0], scale[:, 0], loc[:, 1], scale[:, 1], labels=batch.labels,
                                   generator=torch.Generator().manual_seed(0))
    print("| f | mnist->syndigits | syndigits->mnist | W2 paired | W2 unrelated |")
    print("|---:|---:|---:|---:|---:|")
    print(f"| {args.fraction} | {coherence.pairs[(('mnist',), 'syndigits')]:.3f} | "
          f"{coherence.pairs[(('syndigits',), 'mnist')]:.3f} | {w2.paired.mean():.2f} | {w2.unpaired.mean():.2f} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", action="store_true", help="seconds: tiny sizes (run by the tests)")
    parser.add_argument("--fraction", type=float, default=0.25, help="paired fraction f (default 0.25)")
    args = parser.parse_args()
    args.size, args.test_size, args.classifier_size, args.steps = \
        (60, 40, 200, 10) if args.small else (None, 1000, 10000, 2500)
    main(args)
