"""Write your own Pyro model and reuse a pyro_mm guide: a multimodal VAE that also predicts labels.

pyro_mm's guides are ordinary Pyro guides: called with a ``MultimodalBatch`` they sample the latent
site ``"z"`` inside ``pyro.plate("data")``. Any Pyro model with the same site, plate and signature
can use them. Here the model is written from scratch in plain Pyro — a standard-normal prior, one
likelihood per image modality (masked where it is missing) and, new, a label likelihood
p(y | z) that makes the latent space class-aware —

.. math:: p(z)\\,\\prod_m p_\\theta(x_m \\mid z)^{o_m}\\; p_\\psi(y \\mid z),

and it is trained with pyro_mm's ``ProductOfExpertsGuide`` by plain ``pyro.infer.SVI`` and Pyro's
own ``Trace_ELBO``. The script prints the bound per epoch and the label accuracy of the head on
test pairs encoded from one modality at a time.

    python examples/custom_pyro_model.py [--small]
"""

import argparse

import pyro
import pyro.distributions as dist
import torch
from pyro import poutine
from pyro.infer import SVI, Trace_ELBO
from torch import nn

from pyro_mm.api import default_modalities
from pyro_mm.data import MNISTSynDigits, PairedFraction
from pyro_mm.guides import ProductOfExpertsGuide


class LabelledMultimodalModel(nn.Module):
    """p(z) Π_m p(x_m | z)^{o_m} p(y | z): pyro_mm's decoders and likelihoods plus a linear label head."""

    def __init__(self, modalities, z_dim, num_classes=10):
        super().__init__()
        self.modalities = modalities
        self.decoders = nn.ModuleDict({m.name: m.decoder for m in modalities})
        self.head = nn.Linear(z_dim, num_classes)
        self.z_dim = z_dim

    def forward(self, batch):
        pyro.module("labelled_model", self)
        loc = batch.mask.new_zeros((self.z_dim,), dtype=torch.float32)
        with pyro.plate("data", batch.batch_size, dim=-1):
            z = pyro.sample("z", dist.Normal(loc, torch.ones_like(loc)).to_event(1))
            for m in self.modalities:
                with poutine.mask(mask=batch.observed(m.name)):  # pyro_mm's likelihood of the modality
                    pyro.sample(m.name, m.likelihood(self.decoders[m.name](z), m.event_dim), obs=batch[m.name])
            pyro.sample("label", dist.Categorical(logits=self.head(z)), obs=batch.labels)


def main(args):
    pyro.set_rng_seed(0)
    train = MNISTSynDigits("train", size=args.size, observation=PairedFraction(0.5, "alternate"))
    test = MNISTSynDigits("test", size=args.test_size)
    modalities = default_modalities(train, args.z_dim)
    model, guide = LabelledMultimodalModel(modalities, args.z_dim), ProductOfExpertsGuide(modalities)
    svi = SVI(model, guide, pyro.optim.Adam({"lr": 1e-3}), Trace_ELBO())
    print("| epoch | ELBO per sample |")
    print("|---:|---:|")
    for epoch in range(1, args.epochs + 1):
        order, total = torch.randperm(len(train)), 0.0
        for index in order[: args.steps * 64].split(64):
            total += svi.step(train.batch(index))
        print(f"| {epoch} | {-total / min(len(train), args.steps * 64):.1f} |")
    batch = test.batch(torch.arange(len(test)), complete=True)
    print("| encoded from | label accuracy of p(y|z) |")
    print("|---|---:|")
    with torch.no_grad():
        for name in test.names:
            only = torch.zeros_like(batch.mask)
            only[:, test.names.index(name)] = True
            z = guide.posterior(batch.with_mask(only)).mean
            accuracy = (model.head(z).argmax(-1) == batch.labels).float().mean()
            print(f"| {name} | {accuracy:.3f} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", action="store_true", help="seconds: tiny sizes (run by the tests)")
    args = parser.parse_args()
    args.z_dim = 16
    args.size, args.test_size, args.epochs, args.steps = (60, 40, 2, 3) if args.small else (None, 1000, 3, 500)
    main(args)
