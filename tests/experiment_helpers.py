"""Tiny experiments of ``pyro-mm reproduce`` for the tests, importable by the processes a test
starts (``spawn`` pickles an experiment by its class's module and name, so the classes live here,
on the tests' ``pythonpath``), and the function such a process runs."""

import torch

from pyro_mm.experiments import EXPERIMENTS, run_experiment


class _Tiny:
    """The experiment at a tiny size: the first ``kept_settings`` settings of its quick grid (at every
    seed), ``quick_steps`` steps each, on ``size`` base samples."""

    quick_steps = 3
    quick_samples = 200
    test_samples = 60
    probe_samples = 60
    kept_settings = 2

    def cells(self, quick, seeds):
        cells = super().cells(quick, seeds)
        kept = list(dict.fromkeys((c.method, c.options, c.data, c.labels) for c in cells))[:self.kept_settings]
        return [c for c in cells if (c.method, c.options, c.data, c.labels) in kept]


TINY = {name: type(f"Tiny{cls.__name__}", (_Tiny, cls), {"__module__": __name__}) for name, cls in EXPERIMENTS.items()}
globals().update({cls.__name__: cls for cls in TINY.values()})


def tiny(name, size=200, steps=3, settings=2):
    """An instance of the tiny ``name``: ``settings`` settings, ``steps`` steps per cell."""
    experiment = TINY[name](size=size)
    experiment.quick_steps, experiment.kept_settings = steps, settings
    return experiment


def run_logged(name, out, log, threads=1, **options):
    """Run the tiny ``name`` into ``out`` in this process on ``threads`` threads, appending the key
    of every cell it trains to the file ``log``; looks at cells held by others every 0.2 s."""
    from pyro_mm.experiments import scheduler

    torch.set_num_threads(threads)
    scheduler.POLL_SECONDS = 0.2
    train_cell = scheduler.train_cell

    def logged(experiment, cell, *args):
        with open(log, "a") as f:
            f.write(cell.key + "\n")
        return train_cell(experiment, cell, *args)

    scheduler.train_cell = logged
    run_experiment(name, quick=True, out=out, experiment=tiny(name), progress=False, echo=lambda line: None,
                   threads=threads, **options)
