"""A walk-through of training on partially observed data.

1. Observation schemes: ``PairedFraction`` (MEME's protocol: a fraction f of the pairs kept, the
   rest observe one side) and ``MissingAtRandom`` (each entry missing independently) give a boolean
   mask [N, M] per data set.
2. ``MultimodalBatch`` carries the data with that mask; a missing entry may hold anything (NaN
   from a sensor, a placeholder) — the batch replaces it with zeros, and every objective masks it.
3. Every method's objective then depends on observed entries only: the loss does not move when
   missing entries change, and a decoder of a modality missing from the whole batch gets an
   exactly zero gradient. The table's last column says what each objective does with a sample
   whose modality is missing (``docs/objectives.md``, :data:`MISSING`).
4. A trained model fills the gaps: ``vae.predict(batch, given=[...], generate=[...])``.

    python examples/partial_observation.py [--small]
"""

import argparse

import torch

from pyro_mm.api import MEME, MMVAE, MVAE, MoPoE
from pyro_mm.batch import MultimodalBatch
from pyro_mm.data import MissingAtRandom, MNISTSynDigits, PairedFraction

MISSING = {  # what each objective does with a sample whose syndigits image is missing
    "MVAE": "product of the observed experts only (a missing expert has zero precision); subset ELBOs "
            "with no observed member dropped, each term reconstructs its observed members",
    "MMVAE": "mixture over the observed experts only, weights renormalised; every stratum reconstructs "
             "the observed modalities",
    "MoPoE": "mixture over the subsets of the observed modalities, weights renormalised",
    "MEME": "the conditional prior becomes the syndigits encoder averaged over N learnable "
            "pseudo-samples; the syndigits decoder is not used",
}


def pattern_counts(mask):
    patterns = {"both": mask.all(1), "mnist only": mask[:, 0] & ~mask[:, 1], "syndigits only": ~mask[:, 0] & mask[:, 1]}
    return " | ".join(f"{name} {int(rows.sum())}" for name, rows in patterns.items())


def expand(observed, x):
    """The per-sample mask ``[B]`` broadcastable against ``x [B, ...]``."""
    return observed.view(-1, *[1] * (x.dim() - 1))


def main(args):
    torch.manual_seed(0)
    print("1. observation schemes on", args.size, "MNIST digits x 5 SynDigits partners")
    schemes = {"PairedFraction(0.5, 'alternate')": PairedFraction(0.5, "alternate"),
               "PairedFraction(0.25, 's')": PairedFraction(0.25, "s"), "MissingAtRandom(0.3)": MissingAtRandom(0.3)}
    for label, scheme in schemes.items():
        data = MNISTSynDigits("train", size=args.size, observation=scheme)
        print(f"   {label}: {pattern_counts(data.masks)}")
    data = MNISTSynDigits("train", size=args.size, observation=PairedFraction(0.5, "alternate"))
    batch = data.batch(torch.arange(16))
    noisy = {n: torch.where(expand(batch.observed(n), batch[n]), batch[n], torch.nan) for n in batch.names}
    rebuilt = MultimodalBatch(noisy, batch.mask, batch.labels)
    print(f"2. a batch with NaN in its {int((~batch.mask).sum())} missing entries holds zeros there:",
          all(torch.equal(rebuilt[n], batch[n]) for n in batch.names))
    mnist_only = batch.with_mask(torch.stack([torch.ones(16, dtype=torch.bool), torch.zeros(16, dtype=torch.bool)], 1))
    print("3. | method | loss | loss with the missing entries changed "
          "| gradient norm (L1) of the syndigits decoder, mnist only | with syndigits missing |")
    print("   |---|---:|---:|---:|---|")
    for cls in (MVAE, MMVAE, MoPoE, MEME):
        torch.manual_seed(1)
        vae = cls.for_dataset(data, z_dim=8)
        vae.initialise(data)
        module = vae.elbo(vae.model, vae.guide)
        torch.manual_seed(2)
        loss = module(batch).item()
        changed = MultimodalBatch({n: batch[n] + ~expand(batch.observed(n), batch[n]) for n in batch.names},
                                  batch.mask, batch.labels)
        torch.manual_seed(2)
        loss_changed = module(changed).item()
        vae.zero_grad()
        torch.manual_seed(2)
        module(mnist_only).backward()
        grad = sum(p.grad.abs().sum() for p in vae.model.decoders["syndigits"].parameters() if p.grad is not None)
        print(f"   | {cls.__name__} | {loss:.4f} | {loss_changed:.4f} | {float(grad):.1f} | {MISSING[cls.__name__]} |")
    vae = MEME.for_dataset(data, z_dim=8, num_particles=2)
    vae.fit(data, epochs=None, steps=args.steps, batch_size=64, seed=0, progress=False)
    missing = ~batch.observed("syndigits")
    filled = vae.predict(batch.select(missing.nonzero().squeeze(1)), given=["mnist"], generate=["syndigits"])
    print(f"4. MEME generated the missing SynDigits image of {int(missing.sum())} samples:",
          tuple(filled["syndigits"].shape))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", action="store_true", help="seconds: tiny sizes (run by the tests)")
    args = parser.parse_args()
    args.size, args.steps = (100, 5) if args.small else (2000, 300)
    main(args)
