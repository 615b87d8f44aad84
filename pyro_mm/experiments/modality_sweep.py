"""``modality-sweep``: the generative-quality gap against the number of modalities (Daunhawer,
Sutter, Chin-Cheong, Palumbo & Vogt, ICLR 2022, Corollary 2 and their PolyMNIST ablation).

On PolyMNIST with M ∈ {2, 3, 4, 5} modalities (the first M of the five), a unimodal VAE of the
first modality against every multimodal method of the registry but MEME (whose objective does
not sub-sample), each with the same MLP encoders and decoders, latent size, batch, learning rate
and number of steps, on complete data; the mixture-based bounds with one particle (their
sub-sampled ELBO, the object of the paper's theorem). Measured on the first modality m0: the
Fréchet distance of unconditional samples and of samples predicted from the other modalities, in
the judging classifier's features, and coherence (leave-one-out cross coherence; joint coherence).
The paper's claim: the mixture-based models' gap to the unimodal VAE in generative quality grows
with M.
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Sequence

from ..methods import METHODS
from .experiment import Experiment
from .grid import Cell
from .measures import generative_quality
from .report import Panel, accuracy_panel, line_figure, markdown_table, seeds_note, summarise

__all__ = ["ModalitySweep"]

NETWORKS = {"encoder": "mlp"}
#: one particle for the importance-weighted bounds: the sub-sampled ELBO
ONE_PARTICLE = {"num_particles": 1, "estimator": "iwae"}
METRICS = {"fd_unconditional": "Fréchet distance, m0 unconditional (lower is better)",
           "fd_conditional": "Fréchet distance, m0 from the other modalities",
           "coherence": "leave-one-out cross coherence", "joint_coherence": "joint coherence"}


class ModalitySweep(Experiment):
    name = "modality-sweep"
    title = "The generative-quality gap of multimodal VAEs against the number of modalities (PolyMNIST)"
    claim = ("with sub-sampling, the mixture-based models' generative quality falls further below the unimodal "
             "VAE's with every modality added (Daunhawer et al. 2022, Corollary 2)")
    dataset = "polymnist"
    full_steps, quick_steps = 1500, 300
    test_samples = 1000

    def methods(self) -> List[str]:
        return [m for m in METHODS if m != "meme"]

    def counts(self, quick: bool) -> Sequence[int]:
        return (2, 5) if quick else (2, 3, 4, 5)

    def describe(self, quick: bool, seeds: int) -> str:
        steps = self.quick_steps if quick else self.full_steps
        return (f"M ∈ {set(self.counts(quick))}, {steps} steps per cell, {seeds} seed(s)"
                + (f" (the full setting: M ∈ {{2, 3, 4, 5}}, {self.full_steps} steps)" if quick else ""))

    def options(self, method: str) -> dict:
        declared = {o.name for o in METHODS[method].options}
        return {k: v for k, v in ONE_PARTICLE.items() if k in declared and method != "unimodal"}

    def cells(self, quick: bool, seeds: int) -> List[Cell]:
        steps = self.quick_steps if quick else self.full_steps
        cells = []
        for seed in range(seeds):
            for method in self.methods():
                for count in self.counts(quick):
                    if method == "unimodal" and count != self.counts(quick)[0]:
                        continue  # it models m0 alone, whatever M is
                    cells.append(Cell.make(method, self.dataset, seed, steps, options=self.options(method),
                                           data={"num_modalities": count}, networks=NETWORKS, labels={"M": count}))
        return cells

    def evaluate(self, vae, cell: Cell) -> dict:
        count = cell.data_values["num_modalities"]
        classifiers, _ = self.data.judges(self.dataset, count)
        test = self.data.test_batch(self.dataset, self.test_samples, count)
        return generative_quality(vae, classifiers, test, "m0")

    def report(self, records: Sequence[dict], out: Path, seeds: int):
        unimodal = [r for r in records if r["config"]["method"] == "unimodal"]
        counts = sorted({r["config"]["data"]["num_modalities"] for r in records})
        expanded = list(records)
        for r in unimodal:  # the unimodal VAE's figures stand at every M
            expanded += [{**r, "config": {**r["config"], "labels": {"M": m}}} for m in counts
                         if m != r["config"]["labels"]["M"]]
        summaries = {name: summarise([r for r in expanded if key in (r["result"] or {})], lambda res, key=key: res[key],
                                     lambda config: f"M={config['labels']['M']}")
                     for key, name in METRICS.items()}
        markdown = "\n\n".join(f"**{name}** ({seeds_note([seeds])})\n\n"
                               f"{markdown_table(s, seeds, digits=3 if 'coherence' in name else 2)}"
                               for name, s in summaries.items())
        _figure(expanded, out / "figure.png", self.title)
        return markdown, {name: {m: {c: list(v) for c, v in cols.items()} for m, cols in s.items()}
                          for name, s in summaries.items()}


def _figure(records: Sequence[dict], path: Path, title: str) -> Path:
    """The unconditional Fréchet distance of m0 and its leave-one-out cross coherence against the
    number of modalities M (whole numbers on the axis), a line per method; the coherence panel
    with its chance level and a y axis at least a tenth wide."""
    def series(key):
        return summarise([r for r in records if key in (r["result"] or {})], lambda res: res[key],
                         lambda config: config["labels"]["M"])

    panels = [Panel(METRICS["fd_unconditional"], series("fd_unconditional"), "Fréchet distance"),
              accuracy_panel(METRICS["coherence"], series("coherence"), "cross coherence")]
    return line_figure(panels, "modalities M", path, title=title, integer_x=True)
