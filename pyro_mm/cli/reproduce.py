"""``pyro-mm reproduce``: the seed papers' experiments, one command each (``pyro-mm demo`` is
``reproduce linear-gaussian --quick``)."""

from __future__ import annotations

from pathlib import Path

from ..experiments import EXPERIMENTS
from ..precision import PRECISIONS
from ..training import exit_status
from . import common

__all__ = ["add_parser", "add_demo_parser", "run", "run_demo"]


def _common(parser) -> None:
    parser.add_argument("--seeds", type=common.positive_int, default=None, metavar="N",
                        help="seeds per cell (default 1 with --quick, else 3; --minimum has its own)")
    parser.add_argument("--out", type=common.out_dir, default=None, metavar="DIR",
                        help="output directory (default runs/reproduce/EXPERIMENT[-quick]); a finished cell in it is "
                        "not trained again, an interrupted one resumes; any number of processes, on any machines "
                        "sharing the directory, may run the same command into it at once")
    parser.add_argument("--results", type=common.out_dir, default=None, metavar="DIR",
                        help="a results store across sessions: a finished record in DIR/EXPERIMENT/cells/ is not "
                        "trained again, and every finished cell's record (a small JSON file, never a checkpoint) is "
                        "copied there (this repository's: docs/results)")
    parser.add_argument("--table-only", action="store_true",
                        help="train nothing: write the table from the finished records in --out and --results")
    parser.add_argument("--jobs", type=common.positive_int, default=1, metavar="N",
                        help="cells trained side by side, in N worker processes")
    parser.add_argument("--threads", type=common.positive_int, default=None, metavar="N",
                        help="torch threads in all, split between the jobs (default: torch's, usually the CPU cores); "
                        "a record made at another number of threads per job is trained again")
    parser.add_argument("--matmul-precision", choices=PRECISIONS, default="highest",
                        help="precision of float32 matrix products and convolutions while training the cells "
                        "(highest: float32; see `pyro-mm train`); cells of different precisions are separate cells, "
                        "never in one table")
    parser.add_argument("--no-wait", action="store_true",
                        help="do not wait for cells that other processes are training: write the partial table, "
                        "saying so (e.g. the tasks of a SLURM array, followed by one --table-only step)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def add_parser(sub):
    reproduce = sub.add_parser(
        "reproduce", help="run one of the seed papers' experiments and write its table and figure",
        formatter_class=common.Formatter,
        description="Run a grid of training runs, each cell (method × setting × seed) a fixed number of steps in "
        "its own directory (a finished cell is skipped, an interrupted one resumes from its checkpoint), with one "
        "progress bar over the grid, then write table.md, table.json and figure.png. The duration (training, "
        "evaluation and the judging classifiers' first training) is measured and printed before the grid starts. "
        "Processes sharing --out split the grid between them (a cell another one trains is skipped, or taken over "
        "if its holder dies); --results keeps every finished cell's record across sessions.\n\nexperiments: "
        + "; ".join(f"{name}: {cls.title}" for name, cls in EXPERIMENTS.items()),
        epilog="examples:\n  pyro-mm reproduce meme-table --quick\n  pyro-mm reproduce modality-sweep --seeds 3\n"
        "  pyro-mm reproduce linear-gaussian --out runs/theorem1\n"
        "  pyro-mm reproduce modality-sweep --minimum --jobs 2 --results docs/results\n"
        "  pyro-mm reproduce meme-table --quick --seeds 3 --results docs/results --jobs 2\n"
        "  pyro-mm reproduce meme-table --quick --seeds 3 --results docs/results --table-only")
    reproduce.add_argument("experiment", choices=list(EXPERIMENTS), help="which experiment")
    setting = reproduce.add_mutually_exclusive_group()
    setting.add_argument("--quick", action="store_true",
                         help="the quick setting: fewer steps and cells, one seed (at most 15 minutes on a 2-core CPU)")
    setting.add_argument("--minimum", action="store_true",
                         help="only the full setting's minimum grid, at its own seeds: the smallest part of it that "
                         "tests the claim (the experiment's page names it); its cells are the full grid's, so the "
                         "two share --out and --results")
    _common(reproduce)
    return reproduce


def add_demo_parser(sub):
    demo = sub.add_parser(
        "demo", help="alias of `reproduce linear-gaussian --quick`: every method on linear-Gaussian data",
        formatter_class=common.Formatter,
        description="Train every registered method on synthetic linear-Gaussian data with missing modalities and "
        "print each trained bound beside the exact log-likelihood of the model it learned and the closed-form "
        "sub-sampling cap of the mixture-based bounds (`pyro-mm reproduce linear-gaussian --quick`).",
        epilog="examples:\n  pyro-mm demo\n  pyro-mm demo --seeds 3 --out runs/demo")
    _common(demo)
    return demo


def run(args) -> int:
    from ..experiments import run_experiment

    out = args.out or Path("runs/reproduce") / (args.experiment + ("-quick" if args.quick else ""))
    common.writable_dir(out)
    if args.results is not None and not args.table_only:
        common.writable_dir(args.results, "--results")
    try:
        run_experiment(args.experiment, quick=args.quick, seeds=args.seeds, out=out, progress=not args.no_progress,
                       results=args.results, jobs=args.jobs, threads=args.threads, precision=args.matmul_precision,
                       wait=not args.no_wait, table_only=args.table_only, minimum=getattr(args, "minimum", False))
    except KeyboardInterrupt as interruption:
        raise common.Stopped(f"{common.interrupted(interruption)}; the finished cells and the checkpoint of an "
                             f"interrupted one are kept in {out}: the same command continues",
                             exit_status(interruption)) from None
    return 0


def run_demo(args) -> int:
    args.experiment, args.quick = "linear-gaussian", True
    return run(args)
