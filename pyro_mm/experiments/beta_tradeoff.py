"""``beta-tradeoff``: coherence against generative quality as the KL weight β moves
(Daunhawer et al., ICLR 2022, on Translated-PolyMNIST).

On Translated-PolyMNIST (digits shrunk and moved: position is modality-specific variation no other
modality predicts) with three modalities, MVAE, MMVAE, MoPoE and MMVAE+ — the same networks,
latent size, batch, schedule and number of steps, complete data, one particle — are trained at
several β. Measured on the first modality: leave-one-out cross coherence and the Fréchet distance
of unconditional samples. The paper's claim: no setting of β gets both good coherence and good
generative quality on this data set; β trades one for the other.

The experiment has its own networks and digit scale (:data:`NETWORKS`, :data:`DIGIT_SCALE`): at the
paper's scale 0.75 (digits of 21 pixels moved by up to 7) no network we tried learned the shared
digit within 5 000 steps (cross coherence 0.089–0.098 for five networks and schedules), while at
0.9 (25 pixels, moved by up to 3) an MMVAE with convolutional encoders and the main job's schedule
reaches 0.328 (docs/results/beta-tradeoff.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Sequence

from ..main_job import MainJobConfig
from .experiment import Experiment, generation_params
from .grid import Cell, by_priority
from .measures import generative_quality
from .report import (CHANCE, FRACTION_SPAN, frame_axis, markdown_table, method_legend, method_style, save_figure,
                     seed_counts, seeds_note, spread, subplots, summarise)
from .verdict import difference, signed, verdict

__all__ = ["BetaTradeoff"]

METHODS_COMPARED = ("mvae", "mmvae", "mopoe", "mmvae+")
#: one particle for the importance-weighted bounds (MMVAE, MMVAE+): their sub-sampled ELBO
ONE_PARTICLE = {"num_particles": 1, "estimator": "iwae"}
#: convolutional encoders (MLP decoders): with MLP encoders MMVAE stayed at 0.226 at the scale below
NETWORKS = {"encoder": "conv"}
#: the digits' size on the 28-pixel canvas: 0.9 (the paper's 0.75 was not learnable in 5 000 steps)
DIGIT_SCALE = 0.9
#: the main job's schedule: Adam 4·10⁻³, 200 warm-up steps, cosine decay
_SCHEDULE = MainJobConfig()
#: the smallest grid that can test the claim, trained first: seeds 0 and 1 of these
MINIMUM = {"methods": ("mvae", "mmvae"), "betas": (0.25, 1.0, 4.0), "seeds": 2}


class BetaTradeoff(Experiment):
    name = "beta-tradeoff"
    title = "Coherence against generative quality as β moves (Translated-PolyMNIST, three modalities)"
    claim = ("on Translated-PolyMNIST β trades coherence against generative quality, and no method reaches both "
             "(Daunhawer et al. 2022)")
    dataset = "translated-polymnist"
    num_modalities = 3
    full_steps = 5000
    #: the quick setting: the minimum grid's largest effect (MMVAE's coherence from β = 0.25 to 4),
    #: one seed, for the most steps that fit 15 minutes with the judges cached
    quick_methods, quick_steps = ("mmvae",), 3000
    test_samples = 1000
    minimum_seeds = MINIMUM["seeds"]

    def in_minimum(self, cell: Cell) -> bool:
        """Whether ``cell`` is one of :data:`MINIMUM`."""
        return (cell.method in MINIMUM["methods"] and cell.label_values["beta"] in MINIMUM["betas"]
                and cell.seed < MINIMUM["seeds"])

    def betas(self, quick: bool) -> Sequence[float]:
        return (0.25, 4.0) if quick else (0.25, 1.0, 4.0, 16.0)

    def methods(self, quick: bool) -> Sequence[str]:
        return self.quick_methods if quick else METHODS_COMPARED

    def describe(self, quick: bool, seeds: int) -> str:
        steps = self.quick_steps if quick else self.full_steps
        setting = (f"{', '.join(self.methods(quick))} at β ∈ {list(self.betas(quick))}, {steps} steps per cell, "
                   f"{seeds} seed(s), digit scale {DIGIT_SCALE:g}, convolutional encoders")
        if quick:
            return (f"quick: {setting} (the full setting: {', '.join(METHODS_COMPARED)} at β ∈ "
                    f"{list(self.betas(False))}, {self.full_steps} steps)")
        return (f"full: {setting}; the minimum grid ({', '.join(MINIMUM['methods'])} at β ∈ "
                f"{list(MINIMUM['betas'])}, seeds 0–1) first")

    def cells(self, quick: bool, seeds: int) -> List[Cell]:
        """The grid, the cells of :data:`MINIMUM` first (seed by seed)."""
        steps = self.quick_steps if quick else self.full_steps
        cells = [Cell.make(method, self.dataset, seed, steps,
                           options={**(ONE_PARTICLE if method in ("mmvae", "mmvae+") else {}), "beta": beta},
                           data={"num_modalities": self.num_modalities, "scale": DIGIT_SCALE}, networks=NETWORKS,
                           labels={"beta": beta}, lr=_SCHEDULE.lr, lr_schedule=_SCHEDULE.lr_schedule,
                           warmup_steps=_SCHEDULE.warmup_steps)
                 for seed in range(seeds) for method in self.methods(quick) for beta in self.betas(quick)]
        return by_priority(cells, self.priority)

    def evaluate(self, vae, cell: Cell) -> dict:
        params = generation_params(cell)
        classifiers, _ = self.data.judges(self.dataset, self.num_modalities, params)
        test = self.data.test_batch(self.dataset, self.test_samples, self.num_modalities, params)
        return generative_quality(vae, classifiers, test, "m0")

    def report(self, records: Sequence[dict], out: Path, seeds: int):
        beta = lambda config: config["labels"]["beta"]  # noqa: E731
        coherence = summarise(records, lambda r: r["coherence"], beta)
        fd = summarise(records, lambda r: r["fd_unconditional"], beta)
        named = {name: {m: {f"β={b:g}": v for b, v in cols.items()} for m, cols in summary.items()}
                 for name, summary in (("coherence", coherence), ("fd_unconditional", fd))}
        markdown = (f"**leave-one-out cross coherence** ({seeds_note(seed_counts(coherence, seeds))})\n\n"
                    + markdown_table(named["coherence"], seeds)
                    + f"\n\n**Fréchet distance, m0 unconditional** (lower is better; {seeds_note(seed_counts(fd, seeds))})\n\n"
                    + markdown_table(named["fd_unconditional"], seeds, digits=2)
                    + "\n\n" + verdicts(records))
        _tradeoff_figure(coherence, fd, out / "figure.png", self.title)
        return markdown, {name: {m: {c: list(v) for c, v in cols.items()} for m, cols in summary.items()}
                          for name, summary in named.items()}


def verdicts(records: Sequence[dict]) -> str:
    """The claim's table: for each method, from the smallest β recorded to the largest, the change
    of its coherence and of m0's unconditional Fréchet distance, each ± its sd over seeds. β
    *trades* one against the other (the paper) when both change beyond twice their sd in the same
    direction — more coherent and worse images, or the reverse; the trade is *reversed* when both
    change beyond noise in opposite directions (β improves, or worsens, both); otherwise the
    changes are *not separated* (:mod:`~pyro_mm.experiments.verdict`)."""
    beta = lambda config: config["labels"]["beta"]  # noqa: E731
    coherence = summarise(records, lambda r: r["coherence"], beta)
    fd = summarise(records, lambda r: r["fd_unconditional"], beta)
    lines = ["**Verdicts** (change from the smallest β to the largest, ± its sd across seeds; a trade-off: "
             "coherence and the Fréchet distance both move beyond twice their sd, the same way)", "",
             "| method | β | coherence change | FD change | paper | verdict |", "|---|---|---:|---:|---|---|"]
    for method in coherence:
        betas = sorted(b for b in coherence[method] if b in fd.get(method, {}))
        if len(betas) < 2:
            lines.append(f"| {method} | — | — | — | trades | fewer than two β recorded |")
            continue
        low, high = betas[0], betas[-1]
        changes = []
        for summary in (coherence, fd):
            d, sd = difference(summary[method][high], summary[method][low])
            changes.append((d, sd, min(summary[method][high][2], summary[method][low][2])))
        n = min(c[2] for c in changes)
        moved = [verdict(c, (0.0, 0.0, c[2])) for c in changes]  # "reproduced": up, "reversed": down
        if n < 2:
            result = "not separated (fewer than two seeds)"
        elif "not separated" in moved:
            result = "not separated"
        else:
            result = "reproduced" if moved[0] == moved[1] else "reversed"
        lines.append(f"| {method} | {low:g} → {high:g} | {signed(*changes[0], 3)} | {signed(*changes[1], 1)} | "
                     f"trades | {result} (n = {n}) |")
    return "\n".join(lines)


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
