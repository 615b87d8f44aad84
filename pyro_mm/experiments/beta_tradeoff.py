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
from .modality_sweep import NETWORKS
from .report import (CHANCE, FRACTION_SPAN, frame_axis, markdown_table, method_legend, method_style, save_figure,
                     seeds_note, spread, subplots, summarise)

__all__ = ["BetaTradeoff"]

METHODS_COMPARED = ("mvae", "mmvae", "mopoe", "mmvae+")
#: one particle for the importance-weighted bounds (MMVAE, MMVAE+): their sub-sampled ELBO
ONE_PARTICLE = {"num_particles": 1, "estimator": "iwae"}


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
        beta = lambda config: config["labels"]["beta"]  # noqa: E731
        coherence = summarise(records, lambda r: r["coherence"], beta)
        fd = summarise(records, lambda r: r["fd_unconditional"], beta)
        named = {name: {m: {f"β={b:g}": v for b, v in cols.items()} for m, cols in summary.items()}
                 for name, summary in (("coherence", coherence), ("fd_unconditional", fd))}
        markdown = (f"**leave-one-out cross coherence** ({seeds_note([seeds])})\n\n"
                    + markdown_table(named["coherence"], seeds)
                    + f"\n\n**Fréchet distance, m0 unconditional** (lower is better; {seeds_note([seeds])})\n\n"
                    + markdown_table(named["fd_unconditional"], seeds, digits=2))
        _tradeoff_figure(coherence, fd, out / "figure.png", self.title)
        return markdown, {name: {m: {c: list(v) for c, v in cols.items()} for m, cols in summary.items()}
                          for name, summary in named.items()}


def _tradeoff_figure(coherence, fd, path: Path, title: str) -> Path:
    """Coherence (x) against Fréchet distance (y), one curve per method through its β values in
    increasing order, each point named by its β; ± sd bars where a point has several seeds. The
    coherence axis holds its chance level and spans at least a tenth, so a difference of the
    judges' noise does not look like a trade-off."""
    fig, (ax,) = subplots(1, 6.0, 4.6)
    handles, counts = {}, []
    for method, cols in coherence.items():
        betas = sorted(b for b in cols if b in fd[method])
        xs, ys = [cols[b] for b in betas], [fd[method][b] for b in betas]
        handles[method] = ax.errorbar([x[0] for x in xs], [y[0] for y in ys], xerr=spread(xs), yerr=spread(ys),
                                      capsize=3, label=method, **method_style(method))
        counts += [x[2] for x in xs]
        for b, x, y in zip(betas, xs, ys):
            ax.annotate(f"β={b:g}", (x[0], y[0]), fontsize=7, xytext=(4, 2), textcoords="offset points",
                        color=method_style(method)["color"])
    ax.set_xlabel("leave-one-out cross coherence of m0 (higher is better)")
    ax.set_ylabel("Fréchet distance, unconditional m0 (lower is better)")
    frame_axis(ax, "x", CHANCE, FRACTION_SPAN)
    ax.grid(alpha=0.3)
    method_legend(ax, handles, counts)
    return save_figure(fig, path, title)
