"""How the step time of the mixture bounds grows with the number of modalities M and particles K,
and how much batching buys the importance-sampled likelihood.

* **Modalities** (synthetic data, M = 2 → 10): MoPoE with every subset (2^M − 1 strata, each
  reconstructing all M modalities: exponential, shown up to ``--max-all-subsets``), MoPoE with
  ``num_subsets=1`` and MMVAE with ``num_subsets=1`` (one stratum per sample: the cost should grow
  linearly in M, through the M encoders and M decoders), MMVAE with all M strata (quadratic: every
  stratum decodes every modality).
* **Particles**: MMVAE (M = 2, DReG) as K goes 1 → 50.
* **Likelihood**: ``pyro_mm.metrics.likelihood.log_likelihood`` called once on the whole set —
  particles and samples batched, in its default chunks
  (:func:`~pyro_mm.metrics.likelihood.chunk_rows`) — against a loop calling it on one sample at a
  time (each call then draws all of its sample's particles at once: the loop is vectorised over
  particles, not over samples), per sample, interleaved round by round; the call on the whole set
  is timed once and its peak memory measured as the step benchmark measures it. At the small MLPs
  below and at the step benchmark's full-size ones (784 features, 512 hidden, latent 20).

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
from step_overhead import make_batch, modalities, peak_memory_mib, quartiles, write_results

from pyro_mm.registry import METHODS
from pyro_mm.metrics.likelihood import log_likelihood


def step_time(vae, batch, repeats: int, steps: int) -> float:
    """Median seconds of one training step (forward, backward, Adam) over ``repeats``."""
    vae.initialise(batch)
    optim = torch.optim.Adam(vae.parameters(), lr=1e-4)
    times = []
    for r in range(repeats + 1):
        start = time.perf_counter()
        for _ in range(steps):
            optim.zero_grad()
            vae(batch).backward()  # the training loss, as the Trainer calls it
            optim.step()
        if r:  # the first repeat warms up
            times.append((time.perf_counter() - start) / steps)
    return statistics.median(times)


def modality_scaling(args):
    rows = []
    for M in args.modalities:
        batch = make_batch(M, args.features, args.batch_size, mixed=False)
        mods = lambda: modalities(M, args.features, args.hidden, args.z_dim)  # noqa: E731
        variants = {"mopoe num_subsets=1": lambda: METHODS["mopoe"](mods(), args.z_dim, num_subsets=1),
                    "mmvae num_subsets=1": lambda: METHODS["mmvae"](mods(), args.z_dim, num_particles=1,
                                                                    estimator="iwae", num_subsets=1),
                    "mmvae all strata": lambda: METHODS["mmvae"](mods(), args.z_dim, num_particles=1, estimator="iwae")}
        if M <= args.max_all_subsets:
            variants["mopoe all subsets"] = lambda: METHODS["mopoe"](mods(), args.z_dim)
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
        vae = METHODS["mmvae"](modalities(2, args.features, args.hidden, args.z_dim), args.z_dim, num_particles=K)
        rows.append({"K": K, "seconds": step_time(vae, batch, args.repeats, args.steps)})
        print(f"  K={K:2d} mmvae dreg {1000 * rows[-1]['seconds']:8.2f} ms/step", flush=True)
    return rows


def likelihood_batching(args, features: int, hidden: int, z_dim: int):
    """For MMVAE on two modalities of ``features`` (half of the samples lacking one): the whole
    set in one call (time, peak memory); then the speed-up, interleaved: ``--repeats`` rounds of
    one batched call on ``--block`` samples and a per-sample loop over ``--loop-samples`` of them,
    evenly spaced (every observation pattern in its share), per-sample times compared round by
    round (a slow spell of the machine hits both)."""
    torch.manual_seed(0)
    vae = METHODS["mmvae"](modalities(2, features, hidden, z_dim), z_dim, num_particles=1)
    batch = make_batch(2, features, args.likelihood_samples, mixed=True)
    estimate = lambda b: log_likelihood(vae.model, vae.guide, b, args.likelihood_particles, args.chunk)  # noqa: E731
    times = {}

    def whole_set():
        start = time.perf_counter()
        estimate(batch)
        times["whole"] = time.perf_counter() - start

    block = batch.select(torch.arange(min(args.block, len(batch))))
    looped = torch.arange(0, len(block), max(1, len(block) // args.loop_samples))[: args.loop_samples]
    ratios, per_sample = [], {"batched": [], "loop": []}
    with torch.no_grad():
        peak = peak_memory_mib(whole_set, torch.device("cpu"))
        for _ in range(args.repeats):
            start = time.perf_counter()
            estimate(block)
            per_sample["batched"].append((time.perf_counter() - start) / len(block))
            start = time.perf_counter()
            for i in looped:
                estimate(block.select(i.view(1)))
            per_sample["loop"].append((time.perf_counter() - start) / len(looped))
            ratios.append(per_sample["loop"][-1] / per_sample["batched"][-1])
    q1, median, q3 = quartiles(ratios)
    ms = {k: 1000 * statistics.median(v) for k, v in per_sample.items()}
    print(f"  likelihood, MLP {features}/{hidden}/{z_dim}: {len(batch)} samples in {times['whole']:.1f} s "
          f"(peak {peak:.0f} MiB); per sample {ms['batched']:.2f} ms batched, {ms['loop']:.2f} ms in a loop: "
          f"{median:.1f}x (IQR {q1:.1f}-{q3:.1f})", flush=True)
    return {"features": features, "hidden": hidden, "z_dim": z_dim, "samples": len(batch),
            "particles": args.likelihood_particles, "seconds": times["whole"], "peak_mib": peak,
            "block": len(block), "loop_samples": len(looped), "rounds": args.repeats,
            "batched_ms": ms["batched"], "loop_ms": ms["loop"],
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
    lines += ["", f"Likelihood, MMVAE, {report['likelihood'][0]['particles']} particles, half of the samples "
              "lacking one modality: the whole set in one call, then per sample a batched call on the block "
              "against a loop over evenly spaced samples of it, interleaved (median and IQR over the rounds).", "",
              "| MLP features / hidden / latent | samples | one call (s) | peak MiB | block / loop samples | rounds "
              "| batched ms/sample | loop ms/sample | speed-up (median) | IQR |",
              "|---|---:|---:|---:|---|---:|---:|---:|---:|---|"]
    for lik in report["likelihood"]:
        lines.append(f"| {lik['features']} / {lik['hidden']} / {lik['z_dim']} | {lik['samples']} | {lik['seconds']:.1f} "
                     f"| {lik['peak_mib']:.0f} | {lik['block']} / {lik['loop_samples']} | {lik['rounds']} "
                     f"| {lik['batched_ms']:.2f} | {lik['loop_ms']:.2f} | {lik['speedup_median']:.1f}× "
                     f"| {lik['speedup_q1']:.1f}–{lik['speedup_q3']:.1f} |")
    return "\n".join(lines) + "\n"


def main(args):
    if args.small:
        args.modalities, args.particles, args.max_all_subsets = [2, 3], [1, 4], 3
        args.features, args.hidden, args.z_dim, args.batch_size, args.repeats, args.steps = 16, 16, 4, 8, 1, 1
        args.likelihood_samples, args.likelihood_particles, args.loop_samples, args.block = 40, 25, 4, 20
        args.likelihood_full_size = [32, 16, 4]
    report = {"config": {k: v for k, v in vars(args).items() if k not in ("out", "small")}}
    print("modalities:")
    report["modalities"] = modality_scaling(args)
    print("particles:")
    report["particles"] = particle_scaling(args)
    print("likelihood:")
    report["likelihood"] = [likelihood_batching(args, args.features, args.hidden, args.z_dim),
                            likelihood_batching(args, *args.likelihood_full_size)]
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
                        help="particles per likelihood chunk (default: the library's, all of them, by chunk_rows)")
    parser.add_argument("--likelihood-full-size", type=int, nargs=3, default=[784, 512, 20],
                        metavar=("FEATURES", "HIDDEN", "Z_DIM"),
                        help="the likelihood's second configuration (default: the step benchmark's networks)")
    parser.add_argument("--block", type=int, default=1000, help="samples of each timed batched call")
    parser.add_argument("--loop-samples", type=int, default=50, help="samples of each timed per-sample loop")
    main(parser.parse_args())
