"""MEME's paired bound estimated two ways: the paper's main draw, and Rao–Blackwellised.

In MEME's paired term the main draw z_0 ~ q(z | s) is weighted by w = p(t | z_0) / q̂(t | s), with
q̂ the mean of p(t | z_k) over z_0 and K more draws. On images w is degenerate — the draws'
log-likelihoods differ by tens of nats — so most paired samples get w ≈ 0 and a few w ≈ K + 1: a
paired sample's reconstruction and its KL to the partner's posterior are trained about once in
K + 1 steps. ``TraceMEME_ELBO(rao_blackwell=True)`` lets every draw be the main sample in turn and
averages, which keeps the objective's expectation and expected gradient and removes that variance.

The script trains the main job's MEME (MNIST–SynDigits, paired fraction 0.5) once with each
estimator, with the same seed, data order and number of steps, and prints at every ``--every``
steps the cross coherence both ways and the SynDigits reconstruction judged by the same classifier
(each from one draw of z per test pair), and, at the end, how degenerate w is: the fraction of
paired samples of a training batch with w < 0.05 and with w > K.

    python examples/meme_rao_blackwell.py [--steps 2500] [--every 500] [--small]
"""

import argparse
import time

import torch

from pyro_mm.data import MNISTSynDigits, PairedFraction
from pyro_mm.main_job import MainJobConfig, build_model
from pyro_mm.metrics import classifiers_for

JUDGED = {"mnist->syndigits": (("mnist",), "syndigits"), "syndigits->mnist": (("syndigits",), "mnist"),
          "syndigits->syndigits": (("syndigits",), "syndigits")}


def judge(vae, batch, classifiers):
    """Accuracy of the judge on images generated from one draw of z per test pair."""
    scores = {}
    for label, (given, target) in JUDGED.items():
        x = vae.predict(batch, given, [target])[target]
        scores[label] = (classifiers[target](x).argmax(-1) == batch.labels).float().mean().item()
    return scores


def weight_degeneracy(vae, batch):
    """Fractions of the paired samples' weights w (both directions) below 0.05 and above K."""
    with torch.no_grad():
        terms = vae.elbo.terms(vae.model, vae.guide, batch)
    w = terms["weight"][terms["use_paired"]]
    return (w < 0.05).float().mean().item(), (w > vae.elbo.num_classifier_samples).float().mean().item()


def batches(data, batch_size, generator):
    """One shuffled pass over ``data`` in batches."""
    order = torch.randperm(len(data), generator=generator)
    return (data.batch(order[i:i + batch_size]) for i in range(0, len(data), batch_size))


def train(args, rao_blackwell, train_set, test_batch, classifiers):
    torch.manual_seed(args.seed)
    vae = build_model(train_set, MainJobConfig(rao_blackwell=rao_blackwell))
    vae.initialise(train_set)
    module = vae.elbo(vae.model, vae.guide)
    optim = torch.optim.Adam(module.parameters(), lr=MainJobConfig.lr)
    generator = torch.Generator().manual_seed(args.seed)
    rows, step, seconds = [], 0, 0.0
    while step < args.steps:
        for batch in batches(train_set, args.batch_size, generator):
            start = time.perf_counter()
            optim.zero_grad()
            module(batch).backward()
            optim.step()
            seconds += time.perf_counter() - start
            step += 1
            if step % args.every == 0 or step == args.steps:
                vae.eval()
                rows.append({"steps": step, "seconds": seconds, **judge(vae, test_batch, classifiers)})
                vae.train()
            if step == args.steps:
                break
    last = next(batches(train_set, 4 * args.batch_size, torch.Generator().manual_seed(1)))
    return rows, weight_degeneracy(vae, last)


def main(args):
    train_set = MNISTSynDigits("train", size=args.size, observation=PairedFraction(0.5, "alternate"))
    test = MNISTSynDigits("test", size=args.eval)
    classifiers, _ = classifiers_for(MNISTSynDigits("train", size=args.classifier_size), test,
                                     progress=not args.small)
    test_batch = test.batch(torch.arange(len(test)), complete=True)
    results = {}
    for rao_blackwell in (False, True):
        name = "Rao-Blackwellised" if rao_blackwell else "paper (main draw)"
        results[name] = train(args, rao_blackwell, train_set, test_batch, classifiers)
        print(f"trained with the {name} estimator", flush=True)
    print("\n| steps | estimator | training s | " + " | ".join(JUDGED) + " |")
    print("|---:|---|---:|" + "---:|" * len(JUDGED))
    for step in sorted({r["steps"] for rows, _ in results.values() for r in rows}):
        for name, (rows, _) in results.items():
            row = next(r for r in rows if r["steps"] == step)
            print(f"| {step} | {name} | {row['seconds']:.0f} | " + " | ".join(f"{row[k]:.3f}" for k in JUDGED) + " |")
    print("\nweights w of the paired samples of a training batch, after training:")
    print("| estimator | w < 0.05 | w > K |\n|---|---:|---:|")
    for name, (_, (low, high)) in results.items():
        print(f"| {name} | {low:.2f} | {high:.2f} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=2500, help="training steps per estimator (default 2500)")
    parser.add_argument("--every", type=int, default=500, help="evaluate every this many steps (default 500)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--small", action="store_true", help="seconds: tiny sizes (run by the tests)")
    args = parser.parse_args()
    args.size, args.eval, args.classifier_size = (None, 1000, 10000)
    if args.small:
        args.size, args.eval, args.classifier_size, args.steps, args.every = 60, 40, 200, 4, 2
    main(args)
