"""Reduced-precision float32 matmuls on this machine: what ``matmul_precision`` changes in the
arithmetic and what it buys per training step (:mod:`pyro_mm.precision`).

Two tables, printed as markdown with the machine's provenance (its CPU flags decide which units
torch can use):

* **kernels** — a float32 matrix product of the size of an MLP layer of the main job
  (128 × 784 by 784 × 512) and the SynDigits encoder's first convolution (128 × 3 × 32 × 32,
  32 filters 4 × 4, stride 2), forward only: milliseconds (median) and the relative error
  against ``highest`` (Frobenius norm) at each precision. A bfloat16 product errs by ≈ 2e-3; a
  float32 one computed by another kernel by ≈ 1e-7.
* **training steps** — seconds per step (:func:`pyro_mm.training.seconds_per_step`: forward,
  backward, Adam on the first batch) of the main job's MEME (:func:`pyro_mm.main_job.build_model`)
  and of MMVAE with K = 10 particles and pyro_mm's default networks, on MNIST–SynDigits with half
  of the pairs broken. Each repeat measures every precision on a fresh copy of the same model, in
  turn, so that a slow spell of a shared machine hits all of them; the table gives the median per
  precision and the median of the per-repeat ratios to ``highest``.

    python benchmarks/precision.py [--repeats R] [--timed N] [--threads T] [--size N] [--small]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch

from pyro_mm.precision import PRECISIONS, float32_precision
from pyro_mm.provenance import provenance, stamp


def _median_ms(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def kernels(repeats: int) -> str:
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(128, 784, generator=g), torch.randn(784, 512, generator=g)
    x, w = torch.randn(128, 3, 32, 32, generator=g), torch.randn(32, 3, 4, 4, generator=g)
    cases = {"matmul 128×784 · 784×512": lambda: a @ b,
             "conv2d 128×3×32×32, 32 filters 4×4 / 2":
                 lambda: torch.nn.functional.conv2d(x, w, stride=2, padding=1)}
    lines = ["| kernel | " + " | ".join(f"{p} ms | {p} rel. error" for p in PRECISIONS) + " |",
             "|---|" + "---:|---:|" * len(PRECISIONS)]
    with torch.no_grad():
        for name, fn in cases.items():
            exact, cells = fn(), []
            for precision in PRECISIONS:
                with float32_precision(precision):
                    error = float((fn() - exact).norm() / exact.norm())
                    cells += [f"{_median_ms(fn, repeats):.2f}", f"{error:.1e}"]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def models(size):
    """The step cases: name -> (model, training data, batch size, lr)."""
    from pyro_mm.api import MMVAE
    from pyro_mm.data import MNISTSynDigits, PairedFraction
    from pyro_mm.main_job import MainJobConfig, build_model

    config = MainJobConfig()
    train = MNISTSynDigits("train", size=size, observation=PairedFraction(config.fraction, "alternate"))
    torch.manual_seed(0)
    return {"MEME, the main job (K=5, Rao-Blackwellised)": (build_model(train, config), train, config.batch_size,
                                                              config.lr),
            "MMVAE K=10, default networks": (MMVAE.for_dataset(train, config.z_dim, num_particles=10), train, 128,
                                            1e-3)}


def steps(size, repeats: int, timed: int) -> str:
    from pyro_mm.training import seconds_per_step

    lines = ["| model | " + " | ".join(f"{p} (s/step)" for p in PRECISIONS) + " | "
             + " | ".join(f"{p} / highest" for p in PRECISIONS[1:]) + " |",
             "|---|" + "---:|" * (2 * len(PRECISIONS) - 1)]
    for name, (model, data, batch_size, lr) in models(size).items():
        seconds = {p: [] for p in PRECISIONS}
        for _ in range(repeats):
            for precision in PRECISIONS:
                seconds[precision].append(seconds_per_step(copy.deepcopy(model), data, batch_size, lr, warmup=1,
                                                           timed=timed, matmul_precision=precision))
        medians = [f"{statistics.median(seconds[p]):.3f}" for p in PRECISIONS]
        ratios = [f"{statistics.median(s / h for s, h in zip(seconds[p], seconds['highest'])):.2f}"
                  for p in PRECISIONS[1:]]
        lines.append(f"| {name} | " + " | ".join(medians + ratios) + " |")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="repeats of every measurement (default 5)")
    parser.add_argument("--timed", type=int, default=3, help="timed training steps per measurement (default 3)")
    parser.add_argument("--size", type=int, default=None, help="MNIST digits of the training set (default: all)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--small", action="store_true", help="a quick check: 200 digits, one repeat of one step")
    args = parser.parse_args(argv)
    if args.small:
        args.repeats, args.timed, args.size = 1, 1, 200
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    print(f"Float32 kernels, forward, median of {max(args.repeats, 20)} calls:\n")
    print(kernels(max(args.repeats, 20)))
    print(f"\nTraining steps on MNIST–SynDigits (f = 0.5), batch 128, {args.repeats} interleaved repeats of "
          f"{args.timed} steps:\n")
    print(steps(args.size, args.repeats, args.timed))
    print(f"\n{stamp(provenance())}")


if __name__ == "__main__":
    main()
