"""Grid throughput: cells side by side in worker processes (``--jobs``) against one after another.

Runs the same small grid of ``pyro-mm reproduce meme-table`` cells twice, each time into a fresh
output directory: MEME at f = 0.125 (the quick setting's row) for ``--steps`` steps, one cell per
seed, evaluated as the table evaluates them (the judges are trained and cached before either run,
so neither pays for them). First ``--jobs 1`` with all ``--threads`` in one process, then
``--jobs 2`` with half the threads in each of two workers. Prints the wall time of each, the cells
per hour and the ratio; the two tables must be equal up to the threads' rounding, and the ratio
says what splitting the cores buys on this machine.

    python benchmarks/grid_throughput.py [--cells 2] [--steps 600] [--threads 2] [--small]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from pyro_mm.experiments import run_experiment
from pyro_mm.experiments.meme_table import DATASET, MemeTable
from pyro_mm.provenance import provenance, stamp


class MemeCells(MemeTable):
    """MEME's quick cells of the MEME table at ``quick_steps`` steps."""

    quick_methods = ("meme",)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cells", type=int, default=2, help="cells of the grid, one per seed (default 2)")
    parser.add_argument("--steps", type=int, default=600, help="training steps per cell (default 600)")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch threads in all")
    parser.add_argument("--small", action="store_true", help="a quick check: 300 digits, 5 steps, 200 test pairs")
    args = parser.parse_args(argv)
    experiment = MemeCells(size=300 if args.small else None)
    experiment.quick_steps = 5 if args.small else args.steps
    if args.small:
        experiment.test_samples = experiment.probe_samples = 200
    experiment.data.judges(DATASET)  # trained once, before either run
    rows = []
    for jobs in (1, 2):
        with tempfile.TemporaryDirectory() as out:
            start = time.perf_counter()
            run_experiment("meme-table", quick=True, seeds=args.cells, out=Path(out), experiment=experiment,
                           progress=False, echo=lambda line: None, jobs=jobs, threads=args.threads)
            seconds = time.perf_counter() - start
        rows.append((jobs, max(1, args.threads // jobs), seconds))
    print("| jobs | threads per job | wall time (s) | cells per hour | throughput against --jobs 1 |")
    print("|---:|---:|---:|---:|---:|")
    for jobs, threads, seconds in rows:
        print(f"| {jobs} | {threads} | {seconds:.0f} | {3600 * args.cells / seconds:.1f} | "
              f"{rows[0][2] / seconds:.2f}× |")
    print(f"\n{stamp(provenance())} `python benchmarks/grid_throughput.py --cells {args.cells} --steps {args.steps} "
          f"--threads {args.threads}`" + (" (--small)" if args.small else "") + ".")


if __name__ == "__main__":
    main()
