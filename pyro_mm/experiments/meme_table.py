"""``meme-table``: MEME's Tables 1–3 (Joy et al., ICLR 2022) on MNIST–SynDigits.

Every multimodal method of the registry at its defaults, and MEME at the paper's settings (preset
``"paper"``), trained with the same networks (an MLP encoder for MNIST,
a colour-invariant convolutional one for SynDigits, MLP decoders, the SynDigits likelihood
balanced to MNIST's size), latent size, batch, learning rate, data and number of steps, at paired
fractions f ∈ {1, 0.5, 0.25, 0.125}; below f = 1 the unpaired samples keep only MNIST, only
SynDigits, or half of them one and half the other (the paper's three ways of breaking pairs).
Measured on complete test pairs: cross coherence both ways (the SynDigits image generated from
MNIST judged by a SynDigits classifier, and back) and the linear-probe accuracy of each unimodal
posterior's mean. The paper's claim: MEME's coherence and latent accuracy stay ahead of MVAE's and
MMVAE's as the paired fraction falls.
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Sequence

import torch

from ..methods import METHODS
from .experiment import Experiment
from .grid import Cell
from .measures import coherence, latent_accuracy
from .report import line_figure, markdown_table, summarise

__all__ = ["MemeTable"]

DATASET = "mnist-syndigits"
NETWORKS = {"encoder": {"mnist": "mlp"}, "standardize_colour": True, "balance_images": True}
KEPT = {"paired": "both", "s": "mnist", "t": "syndigits", "alternate": "split"}
FRACTIONS = (0.5, 0.25, 0.125)


def _settings(fractions: Sequence[float], schemes: Sequence[str]):
    return [(1.0, "paired")] + [(f, s) for f in fractions for s in schemes]


class MemeTable(Experiment):
    name = "meme-table"
    title = "MEME's tables on MNIST–SynDigits: coherence and latent accuracy against the paired fraction"
    claim = ("MEME keeps higher cross coherence and latent accuracy than MVAE and MMVAE as fewer pairs are "
             "observed (Joy et al. 2022, Tables 1–3)")
    full_steps, quick_steps = 1000, 300
    test_samples, probe_samples = 1000, 2000

    def methods(self) -> List[str]:
        return [m for m in METHODS if m != "unimodal"]

    def settings(self, quick: bool):
        return _settings((0.25,), ("alternate",)) if quick else _settings(FRACTIONS, ("s", "t", "alternate"))

    def describe(self, quick: bool, seeds: int) -> str:
        if quick:
            return (f"quick: f ∈ {{1, 0.25}}, the split scheme only, {self.quick_steps} steps per cell, {seeds} seed(s) "
                    f"(the full setting: f ∈ {{1, 0.5, 0.25, 0.125}} × three schemes, {self.full_steps} steps)")
        return f"full: f ∈ {{1, 0.5, 0.25, 0.125}} × three schemes, {self.full_steps} steps per cell, {seeds} seed(s)"

    def rows(self):
        """``(method, options, row label)``: every method at its defaults, and MEME once more at the
        paper's settings (its preset ``"paper"``)."""
        return [(m, {}, m) for m in self.methods()] + [("meme", {"preset": "paper"}, "meme (paper preset)")]

    def cells(self, quick: bool, seeds: int) -> List[Cell]:
        steps = self.quick_steps if quick else self.full_steps
        return [Cell.make(method, DATASET, seed, steps, options=options, data={"scheme": scheme, "fraction": f},
                          networks=NETWORKS, labels={"f": f, "kept": KEPT[scheme], "row": row})
                for seed in range(seeds) for method, options, row in self.rows() for f, scheme in self.settings(quick)]

    def evaluate(self, vae, cell: Cell) -> dict:
        classifiers, _ = self.data.judges(DATASET)
        test = self.data.test_batch(DATASET, self.test_samples)
        train = self.data.dataset(DATASET, "train")
        probe = train.batch(torch.arange(self.probe_samples), complete=True)
        result = coherence(vae, test, classifiers, subsets=[("mnist",), ("syndigits",)])
        latent = latent_accuracy(vae, probe, test)
        return {"coherence": {f"{s[0]}->{t}": v for (s, t), v in result.pairs.items()},
                "latent_accuracy": latent}

    def report(self, records: Sequence[dict], out: Path, seeds: int):
        def column(config):
            labels = config["labels"]
            return "f=1" if labels["f"] == 1.0 else f"f={labels['f']:g} {labels['kept']}"

        metrics = {"cross coherence MNIST → SynDigits": lambda r: r["coherence"]["mnist->syndigits"],
                   "cross coherence SynDigits → MNIST": lambda r: r["coherence"]["syndigits->mnist"],
                   "latent accuracy, q(z | MNIST)": lambda r: r["latent_accuracy"]["mnist"],
                   "latent accuracy, q(z | SynDigits)": lambda r: r["latent_accuracy"]["syndigits"]}
        summaries = {name: summarise(records, fn, column) for name, fn in metrics.items()}
        markdown = "\n\n".join(f"**{name}** (mean ± sd over seeds)\n\n{markdown_table(s, seeds)}"
                               for name, s in summaries.items())
        panels = []
        for name, fn in list(metrics.items())[:2]:
            series = summarise([r for r in records if r["config"]["labels"]["kept"] in ("both", "split")], fn,
                               lambda config: config["labels"]["f"])
            panels.append((name + " (split)", series))
        line_figure(panels, "paired fraction f", out / "figure.png", ylabel="coherence", title=self.title)
        return markdown, {name: {m: {c: list(v) for c, v in cols.items()} for m, cols in s.items()}
                          for name, s in summaries.items()}
