"""The main job's training step in one process against two data-parallel processes.

One process: the built-in trainer, batches of 128, all of the machine's threads. Two processes:
PyTorch Lightning's DDP (gloo) on the CPU, batches of 64 per process (the same 128 samples a step),
the threads shared between them. Both train the main job's MEME (``pyro_mm.main_job.build_model``)
on MNIST–SynDigits from the same seed; the step time is the median over the steps after a warm-up,
the wall-clock includes neither the data set's loading nor the processes' start.

    python benchmarks/data_parallel.py [--steps 60] [--small] [--out benchmarks/results]

On a 2-core CPU expect no speed-up: the point is that the data-parallel step runs and costs about
what one process costs. Needs the ``lightning`` and ``data`` extras.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import torch
from step_overhead import write_results

from pyro_mm.data import MNISTSynDigits, PairedFraction
from pyro_mm.main_job import MainJobConfig, build_model

WORLD = 2


def _median_step(times, warmup):
    gaps = [b - a for a, b in zip(times[warmup:], times[warmup + 1:])]
    return statistics.median(gaps)


def one_process(train, config, steps, warmup):
    """Seconds per step of the built-in trainer."""
    torch.manual_seed(config.seed)
    vae = build_model(train, config)
    times = []
    vae.fit(train, epochs=None, steps=steps, batch_size=config.batch_size, lr=config.lr, seed=config.seed,
            progress=False, callback=lambda record: times.append(time.perf_counter()))
    return _median_step(times, warmup), vae.step_losses


def data_parallel(train, config, steps, warmup, report_path):
    """Seconds per step of Lightning DDP with two processes (rank 0 writes ``report_path``)."""
    import lightning as L

    from pyro_mm.lightning import fit_lightning

    class Clock(L.Callback):
        def __init__(self):
            self.times = []

        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
            self.times.append(time.perf_counter())

    torch.manual_seed(config.seed)
    vae = build_model(train, config)
    clock = Clock()
    trainer = fit_lightning(vae, train, batch_size=config.batch_size // WORLD, lr=config.lr, seed=config.seed,
                            steps=steps, accelerator="cpu", devices=WORLD, strategy="ddp", progress=False,
                            callbacks=[clock])
    if trainer.is_global_zero:
        report_path.write_text(json.dumps({"seconds_per_step": _median_step(clock.times, warmup),
                                           "world_size": trainer.world_size,
                                           "threads_per_process": torch.get_num_threads(),
                                           "step_losses": vae.step_losses}))


def main(args):
    threads = torch.get_num_threads()
    config = MainJobConfig(z_dim=4 if args.small else 16, num_pseudo_samples=4 if args.small else 32)
    size = 600 if args.small else 20000
    train = MNISTSynDigits("train", size=size, observation=PairedFraction(config.fraction, "alternate"))
    args.out.mkdir(parents=True, exist_ok=True)
    ddp_report = args.out / "data_parallel_ranks.json"
    if os.environ.get("LOCAL_RANK") is None:  # the launching process: time one process first
        single, losses = one_process(train, config, args.steps, args.warmup)
        (args.out / "data_parallel_single.json").write_text(json.dumps({"seconds_per_step": single,
                                                                        "threads": threads, "step_losses": losses}))
    torch.set_num_threads(max(threads // WORLD, 1))  # the processes share the cores
    data_parallel(train, config, args.steps, args.warmup, ddp_report)
    if os.environ.get("LOCAL_RANK", "0") != "0":
        return
    write(args.out, json.loads((args.out / "data_parallel_single.json").read_text()),
          json.loads(ddp_report.read_text()), args)


def write(out: Path, single, ddp, args):
    rows = [("one process (built-in trainer)", single["threads"], 128, single["seconds_per_step"]),
            (f"{WORLD} processes (Lightning DDP, gloo)", ddp["threads_per_process"], 128 // WORLD,
             ddp["seconds_per_step"])]
    lines = [f"The main job's MEME step, {args.steps} steps (median after {args.warmup}), 128 samples a step.", "",
             "| run | threads per process | batch per process | ms per step | samples/s |", "|---|---:|---:|---:|---:|"]
    lines += [f"| {name} | {threads} | {batch} | {1000 * sec:.0f} | {128 / sec:.0f} |"
              for name, threads, batch, sec in rows]
    table = "\n".join(lines) + "\n"
    write_results(out, "data_parallel", {"steps": args.steps, "warmup": args.warmup, "single": single, "ddp": ddp},
                  table)
    for name in ("data_parallel_single.json", "data_parallel_ranks.json"):
        (out / name).unlink()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", action="store_true", help="seconds: a tiny model and data set (run by the tests)")
    parser.add_argument("--steps", type=int, default=60, help="training steps of each run")
    parser.add_argument("--warmup", type=int, default=10, help="steps left out of the median")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()
    if args.small:
        args.steps, args.warmup = min(args.steps, 6), min(args.warmup, 2)
    main(args)
