"""How the step time of the mixture bounds grows with the number of modalities M and particles K,
and how much batching buys the importance-sampled likelihood.

* **Modalities** (synthetic data, M = 2 → 10): MoPoE with every subset (2^M − 1 strata, each
  reconstructing all M modalities: exponential, shown up to ``--max-all-subsets``), MoPoE with
  ``num_subsets=1`` and MMVAE with ``num_subsets=1`` (one stratum per sample: the cost should grow
  linearly in M, through the M encoders and M decoders), MMVAE with all M strata (quadratic: every
  stratum decodes every modality).
* **Particles**: MMVAE (M = 2, DReG) as K goes 1 → 50.
* **Likelihood**: ``pyro_mm.metrics.likelihood.log_likelihood`` called once on the whole set —
  particles and samples batched, in its default chunks of at most
  :data:`~pyro_mm.metrics.likelihood.MAX_CHUNK_ROWS` (particle, sample) rows — against a loop
  calling it on one sample at a time (each call then draws all of its sample's particles at once:
  the loop is vectorised over particles, not over samples), per sample, interleaved round by
  round; the call on the whole set is timed once and its peak memory measured as the step
  benchmark measures it.

Networks are small MLPs (``--features``, ``--hidden``) so that the exponential cases finish on a
CPU; the step-overhead benchmark uses the full-size ones.

    python benchmarks/scaling.py [--small] [--out benchmarks/results]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from pyro_mm.api import MMVAE, MoPoE
from pyro_mm.metrics.likelihood import log_likelihood
from step_overhead import make_batch, modalities, peak_memory_mib, quartiles, write_results


def step_time(vae, batch, repeats: int, steps: int) -> float:
    """Median seconds of one training step (forward, backward, Adam) over ``repeats``."""
    vae.prepare(batch)
    module = vae.elbo(vae.model, vae.guide)
    optim = torch.optim.Adam(module.parameters(), lr=1e-4)
    times = []
    for r in range(repeats + 1):
        start = time.perf_counter()
        for _ in range(steps):
            optim.zero_grad()
            module(batch).backward()
            optim.step()
        if r:  # the first repeat warms up
            times.append((time.perf_counter() - start) / steps)
    return statistics.median(times)


def modality_scaling(args):
    rows = []
    for M in args.modalities:
        batch = make_batch(M, args.features, args.batch_size, mixed=False)
        mods = lambda: modalities(M, args.features, args.hidden, args.z_dim)  # noqa: E731
        variants = {"mopoe num_subsets=1": lambda: MoPoE(mods(), args.z_dim, num_subsets=1),
                    "mmvae num_subsets=1": lambda: MMVAE(mods(), args.z_dim, num_particles=1, estimator="iwae",
                                                         num_subsets=1),
                    "mmvae all strata": lambda: MMVAE(mods(), args.z_dim, num_particles=1, estimator="iwae")}
        if M <= args.max_all_subsets:
            variants["mopoe all subsets"] = lambda: MoPoE(mods(), args.z_dim)
        for name, build in variants.items():
            torch.manual_seed(0)
            vae = build()
            rows.append({"case": name, "M": M, "seconds": step_time(vae, batch, args.repeats, args.steps)})
            print(f"  M={M:2d} {name:20s} {1000 * rows[-1]['seconds']:8.2f} ms/step", flush=True)
    return rows


def particle_scaling(args):
    rows = []
    batch = make_batch(2, args.features, args.batch_size, mixed=False)
    for K in args.particles:
        torch.manual_seed(0)
        vae = MMVAE(modalities(2, args.features, args.hidden, args.z_dim), args.z_dim, num_particles=K)
        rows.append({"K": K, "seconds": step_time(vae, batch, args.repeats, args.steps)})
        print(f"  K={K:2d} mmvae dreg {1000 * rows[-1]['seconds']:8.2f} ms/step", flush=True)
    return rows


def likelihood_batching(args):
    """The whole set in one call (time, peak memory); then the speed-up, interleaved: ``--repeats``
    rounds of one batched call on ``--block`` samples and a per-sample loop over the first
    ``--loop-samples`` of them, per-sample times compared round by round (a slow spell of the
    machine hits both)."""
    torch.manual_seed(0)
    vae = MMVAE(modalities(2, args.features, args.hidden, args.z_dim), args.z_dim, num_particles=1)
    batch = make_batch(2, args.features, args.likelihood_samples, mixed=True)
    estimate = lambda b: log_likelihood(vae.model, vae.guide, b, args.likelihood_particles, args.chunk)  # noqa: E731
    times = {}

    def whole_set():
        start = time.perf_counter()
        estimate(batch)
        times["whole"] = time.perf_counter() - start

    block = batch.select(torch.arange(min(args.block, len(batch))))
    ratios = []
    with torch.no_grad():
        peak = peak_memory_mib(whole_set, torch.device("cpu"))
        for _ in range(args.repeats):
            start = time.perf_counter()
            estimate(block)
            batched = (time.perf_counter() - start) / len(block)
            start = time.perf_counter()
            for i in range(args.loop_samples):
                estimate(block.select(torch.tensor([i])))
            ratios.append((time.perf_counter() - start) / args.loop_samples / batched)
    q1, median, q3 = quartiles(ratios)
    print(f"  likelihood: {len(batch)} samples in {times['whole']:.1f} s (peak {peak:.0f} MiB); batched "
          f"{median:.1f}x faster than a per-sample loop (IQR {q1:.1f}-{q3:.1f})", flush=True)
    return {"samples": len(batch), "particles": args.likelihood_particles, "seconds": times["whole"],
            "peak_mib": peak, "block": len(block), "loop_samples": args.loop_samples, "rounds": args.repeats,
            "speedup_median": median, "speedup_q1": q1, "speedup_q3": q3}


def markdown(report) -> str:
    a = report["config"]
    lines = [f"MLP {a['features']} features / {a['hidden']} hidden / latent {a['z_dim']}, batch {a['batch_size']}, "
             f"median of {a['repeats']} repeats of {a['steps']} steps.", "",
             "| case | " + " | ".join(f"M={M}" for M in a["modalities"]) + " |",
             "|---|" + "---:|" * len(a["modalities"])]
    cases = dict.fromkeys(r["case"] for r in report["modalities"])
    for case in cases:
        times = {r["M"]: r["seconds"] for r in report["modalities"] if r["case"] == case}
        lines.append(f"| {case} (ms) | " + " | ".join(f"{1000 * times[M]:.1f}" if M in times else "—"
                                                   for M in a["modalities"]) + " |")
    lines += ["", "| K | " + " | ".join(str(r["K"]) for r in report["particles"]) + " |",
              "|---|" + "---:|" * len(report["particles"]),
              "| mmvae dreg (ms) | " + " | ".join(f"{1000 * r['seconds']:.1f}" for r in report["particles"]) + " |"]
    lik = report["likelihood"]
    lines += ["", f"Likelihood, {lik['particles']} particles on {lik['samples']} samples in one call: "
              f"{lik['seconds']:.1f} s, peak {lik['peak_mib']:.0f} MiB. Per sample, a batched call on "
              f"{lik['block']} samples against a loop over {lik['loop_samples']} of them, interleaved over "
              f"{lik['rounds']} rounds: {lik['speedup_median']:.1f}× faster (IQR {lik['speedup_q1']:.1f}–"
              f"{lik['speedup_q3']:.1f})."]
    return "\n".join(lines) + "\n"


def main(args):
    if args.small:
        args.modalities, args.particles, args.max_all_subsets = [2, 3], [1, 4], 3
        args.features, args.hidden, args.z_dim, args.batch_size, args.repeats, args.steps = 16, 16, 4, 8, 1, 1
        args.likelihood_samples, args.likelihood_particles, args.loop_samples, args.block = 40, 25, 4, 20
    report = {"config": {k: v for k, v in vars(args).items() if k not in ("out", "small")}}
    print("modalities:")
    report["modalities"] = modality_scaling(args)
    print("particles:")
    report["particles"] = particle_scaling(args)
    report["likelihood"] = likelihood_batching(args)
    write_results(args.out, "scaling", report, markdown(report))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", action="store_true", help="seconds: tiny sizes (run by the tests)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--modalities", type=int, nargs="+", default=[2, 3, 4, 6, 8, 10])
    parser.add_argument("--max-all-subsets", type=int, default=6, help="largest M for MoPoE with all subsets")
    parser.add_argument("--particles", type=int, nargs="+", default=[1, 5, 10, 20, 50])
    parser.add_argument("--features", type=int, default=128)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--z-dim", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--likelihood-samples", type=int, default=10000)
    parser.add_argument("--likelihood-particles", type=int, default=1000)
    parser.add_argument("--chunk", type=int, default=None,
                        help="particles per likelihood chunk (default: the library's, by MAX_CHUNK_ROWS)")
    parser.add_argument("--block", type=int, default=1000, help="samples of each timed batched call")
    parser.add_argument("--loop-samples", type=int, default=50, help="samples of each timed per-sample loop")
    main(parser.parse_args())
