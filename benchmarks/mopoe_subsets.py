"""MoPoE-VAE with one subset per sample against all subsets: the same bound, at what cost and noise.

MoPoE's bound averages the subset ELBOs of every available subset S of the observed modalities,
``L = Σ_S ω_S L_S``. With ``num_subsets=k`` each sample draws k available subsets per step and
re-weights them, an unbiased estimate of the same ``L`` whose per-step cost does not grow with
2^M − 1; the price is variance. For M modalities of PolyMNIST (every modality observed) and each
choice, this script measures on one batch of 128, with pyro_mm's default networks freshly made
from one seed:

* **seconds per step** (forward, backward, Adam; :func:`pyro_mm.training.seconds_per_step`),
  repeats interleaved between the two choices so that a slow spell of a shared machine hits both,
  after a round that only warms up (the first configuration a process times runs several times
  slower: allocations and kernel choices);
* **the loss**: its mean over R draws (the two must agree within their standard errors: the same
  bound) and its standard deviation per sample;
* **the gradient's noise**: the trace of the covariance of the gradient over R draws, relative to
  the squared norm of the mean gradient (the smaller, the more a step follows the bound).

    python benchmarks/mopoe_subsets.py [--modalities 3 5] [--draws R] [--repeats N] [--small]
"""

from __future__ import annotations

import argparse
import copy
import math
import statistics

import torch

from pyro_mm.data.catalog import load_dataset
from pyro_mm.registry import METHODS
from pyro_mm.provenance import provenance, stamp
from pyro_mm.training import seconds_per_step

CHOICES = {"all subsets": None, "one subset per sample": 1}


def _model(train, num_subsets, seed=0):
    torch.manual_seed(seed)
    return METHODS["mopoe"].for_dataset(train, 16, num_subsets=num_subsets)


def _noise(vae, batch, draws: int):
    """Mean and sd (per sample) of the loss, and trace(Cov grad) / |mean grad|² over ``draws``."""
    losses, grads = [], []
    params = [p for p in vae.parameters() if p.requires_grad]
    for draw in range(draws):
        torch.manual_seed(1000 + draw)
        vae.zero_grad()
        loss = vae(batch)
        loss.backward()
        losses.append(float(loss.detach()) / len(batch))
        grads.append(torch.cat([p.grad.flatten() for p in params if p.grad is not None]).clone())
    g = torch.stack(grads).double()
    mean = g.mean(0)
    return statistics.fmean(losses), statistics.stdev(losses), float(g.var(0).sum() / mean.pow(2).sum())


def measure(m: int, draws: int, repeats: int, size: int, timed: int):
    train = load_dataset("polymnist", "train", size=size, num_modalities=m)
    batch = train.batch(torch.arange(128), complete=True)
    models = {name: _model(train, k) for name, k in CHOICES.items()}
    times = {name: [] for name in CHOICES}
    for repeat in range(repeats + 1):  # the first round only warms up (allocations, kernel choices)
        for name, vae in models.items():
            seconds = seconds_per_step(copy.deepcopy(vae), train, 128, 1e-3, 2, timed)
            if repeat:
                times[name].append(seconds)
    rows = []
    for name, vae in models.items():
        mean, sd, noise = _noise(vae, batch, draws)
        rows.append((name, statistics.median(times[name]), mean, sd, sd / math.sqrt(draws), noise))
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--modalities", type=int, nargs="+", default=[3, 5])
    parser.add_argument("--draws", type=int, default=40, help="loss and gradient draws per choice (default 40)")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved timing repeats (default 3)")
    parser.add_argument("--small", action="store_true", help="a quick check: 300 tuples, 4 draws, one repeat")
    args = parser.parse_args(argv)
    size, draws, repeats, timed = (300, 4, 1, 1) if args.small else (2000, args.draws, args.repeats, 5)
    print("| M | subsets per step | s / step | loss per sample (± s.e.) | loss sd | tr Cov(grad) / |E grad|² |")
    print("|---:|---|---:|---:|---:|---:|")
    for m in args.modalities:
        for name, seconds, mean, sd, se, noise in measure(m, draws, repeats, size, timed):
            print(f"| {m} | {name} | {seconds:.3f} | {mean:.2f} ± {se:.2f} | {sd:.2f} | {noise:.3g} |")
    print(f"\n{stamp(provenance())} `python benchmarks/mopoe_subsets.py"
          + (" --small" if args.small else "") + f"`, {draws} draws.")


if __name__ == "__main__":
    main()
