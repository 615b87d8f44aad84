"""``pyro-mm main``: the main job (:mod:`pyro_mm.main_job`)."""

from __future__ import annotations

from ..training import exit_status
from . import common

__all__ = ["add_parser", "run"]


def add_parser(sub):
    from ..main_job import MainJobConfig

    defaults = MainJobConfig()
    main_job = sub.add_parser(
        "main",
        help="the main job: train MEME on MNIST-SynDigits (half of the pairs broken) and evaluate it",
        description="Build MNIST-SynDigits offline (cached), train MEME for --steps steps with paired fraction "
        "--fraction (the unpaired samples observe MNIST only or SynDigits only), train the judging classifiers "
        "(cached), evaluate on the test split and print a table of cross coherence, latent accuracy and joint "
        "log-likelihood against the targets. The same command gives the same metrics.json every time. Writes "
        "model.pt, checkpoint.pt, history.json, metrics.json, timing.json (durations, matmul precision, torch "
        "threads, CPU flags, versions), report.md and figures (cross generation, training curve, 2-D latent view) "
        "to --out.",
        formatter_class=common.Formatter,
        epilog="examples:\n  pyro-mm main\n  pyro-mm main --steps 300 --size 5000 --out runs/short   # a quick look",
    )
    main_job.add_argument("--steps", type=common.positive_int, default=defaults.steps,
                          help=f"training steps (default {defaults.steps})")
    main_job.add_argument("--fraction", type=common.unit, default=defaults.fraction, help="paired fraction f (default 0.5)")
    main_job.add_argument("--particles", type=common.positive_int, default=defaults.num_particles,
                          help=f"K, MEME's classifier samples (default {defaults.num_particles})")
    main_job.add_argument("--size", type=common.positive_int, default=None, help="use only this many MNIST training digits")
    main_job.add_argument("--eval-samples", type=common.positive_int, default=defaults.eval_samples,
                          help=f"test pairs evaluated, at most 10000 (default {defaults.eval_samples})")
    main_job.add_argument("--classifier-size", type=common.positive_int, default=defaults.classifier_size,
                          help=f"MNIST digits the judging classifiers train on (default {defaults.classifier_size})")
    main_job.add_argument("--device", default=defaults.device, help="cpu, cuda, cuda:1, ...")
    common.add_matmul_precision(main_job)
    main_job.add_argument("--seed", type=common.seed, default=defaults.seed)
    main_job.add_argument("--out", type=common.out_dir, default=defaults.out,
                          help=f"output directory (default {defaults.out})")
    main_job.add_argument("--no-progress", action="store_true", help="hide progress bars")
    return main_job


def run(args) -> int:
    from ..main_job import MainJobConfig, run_main_job

    common.device(args.device)
    common.writable_dir(args.out)
    try:
        run_main_job(MainJobConfig(out=args.out, steps=args.steps, fraction=args.fraction,
                                   num_particles=args.particles, size=args.size, eval_samples=args.eval_samples,
                                   classifier_size=args.classifier_size, device=args.device, seed=args.seed,
                                   matmul_precision=args.matmul_precision, progress=not args.no_progress))
    except KeyboardInterrupt as interruption:
        raise common.Stopped(f"{common.interrupted(interruption)}; the main job starts afresh when run again",
                             exit_status(interruption)) from None
    return 0
