"""A one-modality VAE on MNIST through pyro_mm's user class, and its importance-sampled likelihood.

``UnimodalVAE`` is the baseline of the multimodal methods: the same networks and prior, one
modality. The script trains it for a fixed number of epochs, then estimates log p(x) on test digits with the
IWAE estimator (``vae.log_likelihood``) and prints it beside the Pareto k̂ diagnostic, which says
whether the importance weights can be trusted (k̂ < 0.7).

    python examples/unimodal_vae.py [--small]
"""

import argparse

import torch

from pyro_mm.api import UnimodalVAE, default_modalities
from pyro_mm.data import MNIST


def main(args):
    torch.manual_seed(0)
    train, test = MNIST("train"), MNIST("test")
    vae = UnimodalVAE(default_modalities(train, args.z_dim), args.z_dim)
    index = torch.randperm(len(train))[: args.train_size]
    vae.fit(train.batch(index), epochs=args.epochs, batch_size=128, lr=1e-3, progress=not args.small)
    batch = test.batch(torch.arange(args.test_size))
    result = vae.log_likelihood(batch, num_particles=args.particles)
    khat = result["khat"]
    print("| test digits | particles | mean log p(x) | mean k̂ | share k̂ > 0.7 |")
    print("|---:|---:|---:|---:|---:|")
    print(f"| {len(batch)} | {args.particles} | {result['log_likelihood'].mean():.2f} | {khat.mean():.2f} | "
          f"{(khat > 0.7).float().mean():.2f} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", action="store_true", help="seconds: tiny sizes (run by the tests)")
    args = parser.parse_args()
    args.z_dim = 16
    args.epochs, args.train_size, args.test_size, args.particles = (2, 512, 20, 50) if args.small else \
        (10, 60000, 1000, 1000)
    main(args)
