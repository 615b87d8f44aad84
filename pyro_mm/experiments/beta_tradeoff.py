"""``beta-tradeoff``: coherence against generative quality as the KL weight β moves
(Daunhawer et al., ICLR 2022, on Translated-PolyMNIST).

On Translated-PolyMNIST (digits shrunk and moved: position is modality-specific variation no other
modality predicts) with three modalities, MVAE, MMVAE, MoPoE and MMVAE+ — the same MLP networks,
latent size, batch, learning rate and number of steps, complete data, one particle — are trained
at several β. Measured on the first modality: leave-one-out cross coherence and the Fréchet
distance of unconditional samples. The paper's claim: no setting of β gets both good coherence
and good generative quality on this data set; β trades one for the other.
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Sequence

from .experiment import Experiment
from .grid import Cell
from .measures import generative_quality
from .modality_sweep import NETWORKS, ONE_PARTICLE
from .report import markdown_table, pyplot, save_figure, summarise

__all__ = ["BetaTradeoff"]

METHODS_COMPARED = ("mvae", "mmvae", "mopoe", "mmvae+")


class BetaTradeoff(Experiment):
    name = "beta-tradeoff"
    title = "Coherence against generative quality as β moves (Translated-PolyMNIST, three modalities)"
    claim = ("on Translated-PolyMNIST β trades coherence against generative quality, and no method reaches both "
             "(Daunhawer et al. 2022)")
    dataset = "translated-polymnist"
    num_modalities = 3
    full_steps, quick_steps = 1500, 300
    test_samples = 1000

    def betas(self, quick: bool) -> Sequence[float]:
        return (0.25, 4.0) if quick else (0.25, 1.0, 4.0, 16.0)

    def describe(self, quick: bool, seeds: int) -> str:
        steps = self.quick_steps if quick else self.full_steps
        return (f"β ∈ {list(self.betas(quick))}, {steps} steps per cell, {seeds} seed(s)"
                + (f" (the full setting: β ∈ {list(self.betas(False))}, {self.full_steps} steps)" if quick else ""))

    def cells(self, quick: bool, seeds: int) -> List[Cell]:
        steps = self.quick_steps if quick else self.full_steps
        cells = []
        for seed in range(seeds):
            for method in METHODS_COMPARED:
                particles = ONE_PARTICLE if method in ("mmvae", "mmvae+") else {}
                for beta in self.betas(quick):
                    cells.append(Cell.make(method, self.dataset, seed, steps, options={**particles, "beta": beta},
                                           data={"num_modalities": self.num_modalities}, networks=NETWORKS,
                                           labels={"beta": beta}))
        return cells

    def evaluate(self, vae, cell: Cell) -> dict:
        classifiers, _ = self.data.judges(self.dataset, self.num_modalities)
        test = self.data.test_batch(self.dataset, self.test_samples, self.num_modalities)
        return generative_quality(vae, classifiers, test, "m0")

    def report(self, records: Sequence[dict], out: Path, seeds: int):
        column = lambda config: f"β={config['labels']['beta']:g}"  # noqa: E731
        coherence = summarise(records, lambda r: r["coherence"], column)
        fd = summarise(records, lambda r: r["fd_unconditional"], column)
        markdown = ("**leave-one-out cross coherence** (mean ± sd over seeds)\n\n" + markdown_table(coherence, seeds)
                    + "\n\n**Fréchet distance, m0 unconditional** (lower is better)\n\n" + markdown_table(fd, seeds, digits=2))
        _tradeoff_figure(coherence, fd, out / "figure.png", self.title)
        return markdown, {"coherence": {m: {c: list(v) for c, v in cols.items()} for m, cols in coherence.items()},
                          "fd_unconditional": {m: {c: list(v) for c, v in cols.items()} for m, cols in fd.items()}}


def _tradeoff_figure(coherence, fd, path: Path, title: str) -> Path:
    """Coherence (x) against Fréchet distance (y), one curve per method through its β values."""
    plt = pyplot()

    fig, ax = plt.subplots(figsize=(5.5, 4.2))
    for method, cols in coherence.items():
        keys = list(cols)
        xs = [cols[k][0] for k in keys]
        ys = [fd[method][k][0] for k in keys]
        ax.errorbar(xs, ys, xerr=[cols[k][1] for k in keys], yerr=[fd[method][k][1] for k in keys], marker="o",
                    capsize=3, label=method)
        for x, y, k in zip(xs, ys, keys):
            ax.annotate(k, (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.set_xlabel("leave-one-out cross coherence (higher is better)")
    ax.set_ylabel("Fréchet distance, unconditional m0 (lower is better)")
    ax.grid(alpha=0.3)
    return save_figure(fig, path, title, legend=ax)
