"""``linear-gaussian``: Theorem 1 of Daunhawer et al. (ICLR 2022) in closed form.

Data come from a random linear-Gaussian model with three modalities, 30 % of the entries missing
(:mod:`pyro_mm.linear_gaussian`), so the exact log-likelihood of the data, and of every *learned*
model (linear decoders, learned noise; private latents integrated out), is known in closed form.
The unimodal VAE, MVAE, MMVAE, MoPoE-VAE, MEME and MMVAE+ (:data:`METHODS_COMPARED`) are each
built with linear encoders and decoders of the size it needs and trained by the one trainer; two
options adapt a method to the data where it has them: Normal latents (``family="normal"``: the
model is then linear-Gaussian) and, beyond two modalities, ``extension=True``. The table reports each trained bound beside the exact log-likelihood of the
model it learned and, for the mixture-based methods, the closed-form sub-sampling cap
Σ_S ω_S Δ_S of their subset family at the learned parameters: how far below log p_θ(X) the best
sub-sampled mixture bound over that family must stay. The paper's claim: that cap is positive for
every sub-sampled family (zero only without sub-sampling), larger for MMVAE's singletons than for
MoPoE's power set, and training under it learns a worse generative model.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Dict, List, Sequence

import torch

from ..batch import MultimodalBatch
from ..likelihoods import Normal
from ..linear_gaussian import LinearGaussianModel
from ..registry import METHODS
from ..metrics.generative_discrepancy import generative_discrepancy
from ..modality import Modality
from ..nets import LinearDecoder, LinearEncoder
from .experiment import Experiment
from .grid import Cell
from .report import markdown_table, method_style, save_figure, seed_counts, seeds_note, spread, subplots, summarise

__all__ = ["LinearGaussian", "linear_modalities", "data_options", "METHODS_COMPARED"]

DATA = {"num_modalities": 3, "dims": 4, "z_dim": 2, "missing": 0.3}
#: the methods compared, named here: a method added to the registry changes no grid
METHODS_COMPARED = ("unimodal", "mvae", "mmvae", "mopoe", "meme", "mmvae+")
#: the sub-sampling cap Σ_S ω_S Δ_S, as the figure writes it
CAP = r"$\Sigma_S\, \omega_S \Delta_S$"


def linear_modalities(lg: LinearGaussianModel, size: int) -> List[Modality]:
    """Linear encoders ``(loc, scale)`` of ``size`` and linear decoders from ``size`` inputs, with
    a learned Normal noise, for the modalities of ``lg`` (float64)."""
    return [Modality(n, (a.shape[0],), LinearEncoder(a.shape[0], size).double(),
                     LinearDecoder(size, a.shape[0]).double(), Normal(1.0, learn_scale=True).double())
            for n, a in zip(lg.names, lg.A)]


def data_options(cls, num_modalities: int) -> Dict:
    """The options that fit linear-Gaussian data, where the method has them: Normal latents,
    and the many-modality extension beyond two modalities."""
    declared = {o.name for o in cls.options}
    options = {}
    if "family" in declared:
        options["family"] = "normal"
    if "extension" in declared and num_modalities > 2:
        options["extension"] = True
    return options


class LinearGaussian(Experiment):
    name = "linear-gaussian"
    title = "Sub-sampled mixture bounds on linear-Gaussian data, against exact log-likelihoods"
    claim = ("sub-sampling caps the bound below log p(X) by Σ ω_S Δ_S > 0, and training under the cap learns a "
             "worse generative model (Daunhawer et al. 2022, Theorem 1)")
    full_samples, full_steps = 20000, 3000
    #: the quick setting: the full one at one seed, since all of it fits in 15 minutes (≈ 4 min on 2 cores)
    quick_samples, quick_steps = full_samples, full_steps
    batch_size, lr = 100, 0.02

    def describe(self, quick: bool, seeds: int) -> str:
        samples, steps = (self.quick_samples, self.quick_steps) if quick else (self.full_samples, self.full_steps)
        return f"{samples} samples, {steps} steps per method, {seeds} seed(s)"

    def cells(self, quick: bool, seeds: int) -> List[Cell]:
        samples, steps = (self.quick_samples, self.quick_steps) if quick else (self.full_samples, self.full_steps)
        return [Cell.make(method, "linear-gaussian", seed, steps,
                          options=data_options(METHODS[method], DATA["num_modalities"]),
                          data={**DATA, "samples": samples}, z_dim=DATA["z_dim"], batch_size=self.batch_size,
                          lr=self.lr) for seed in range(seeds) for method in METHODS_COMPARED]

    @staticmethod
    def truth_and_data(data: Dict):
        """The true model and its sample with missing entries (the same for every cell)."""
        truth = LinearGaussianModel.random([data["dims"]] * data["num_modalities"], data["z_dim"], seed=0)
        g = torch.Generator().manual_seed(1)
        x = truth.sample(data["samples"], g)
        x.pop("z")
        mask = torch.rand(data["samples"], data["num_modalities"], generator=g) >= data["missing"]
        mask[~mask.any(-1), 0] = True
        return truth, MultimodalBatch(x, mask)

    def build(self, cell: Cell):
        truth, data = self.truth_and_data(cell.data_values)
        cls = METHODS[cell.method]
        options = cell.option_values
        size = cls.latent_size(cell.z_dim, **cls.resolve_options(options))
        vae = cls(linear_modalities(truth, size), cell.z_dim, **options).double()
        return vae, data

    def fingerprint(self, cell: Cell) -> dict:
        """The SHA-256 of the cell's data (its samples and mask), on which it is trained and
        evaluated; no judges."""
        _, data = self.truth_and_data(cell.data_values)
        digest = hashlib.sha256()
        for tensor in [*(data[n] for n in data.names), data.mask]:
            digest.update(tensor.numpy().tobytes())
        return {"data_sha256": {"train": digest.hexdigest(), "test": digest.hexdigest()}, "judges_sha256": None}

    def judges_seconds(self, cells: Sequence[Cell], threads: int = 1) -> float:
        return 0.0

    def evaluate(self, vae, cell: Cell) -> dict:
        truth, data = self.truth_and_data(cell.data_values)
        used = vae.training_data(data)
        bound = vae.elbo.bound(vae.model, vae.guide, used).mean().item()
        cls = type(vae)
        family = cls.subset_family(len(vae.names)) if cls.subset_family is not None else None
        subsets = [row.nonzero().flatten().tolist() for row in family.members()] if family is not None else None
        discrepancy = generative_discrepancy(vae.modalities, used, subsets, z_dim=cell.z_dim)
        truth_ll = truth.log_likelihood_masked({n: used[n] for n in used.names}, used.mask).mean().item() \
            if len(used.names) < len(data.names) else truth.log_likelihood_masked(
                {n: data[n] for n in data.names}, data.mask).mean().item()
        return {"bound": bound, "learned_log_likelihood": discrepancy["learned_log_likelihood"],
                "true_model_log_likelihood": truth_ll, "subsampling_gap": discrepancy["subsampling_gap"]}

    def report(self, records: Sequence[dict], out: Path, seeds: int):
        rows = {"trained bound": "bound", "exact log-lik of the learned model": "learned_log_likelihood",
                "log-lik under the true model": "true_model_log_likelihood",
                "Σ ω_S Δ_S at the learned θ": "subsampling_gap"}
        summaries = {name: summarise(records, lambda r, key=key: r[key] if r[key] is not None else float("nan"),
                                     lambda config: name) for name, key in rows.items()}
        merged = {m: {name: summaries[name][m][name] for name in rows} for m in summaries["trained bound"]}
        markdown = (markdown_table(merged, seeds)
                    + f"\n\n(per sample; {seeds_note(seed_counts(merged, seeds))}; — : not a sub-sampled mixture bound)")
        markdown = re.sub(r"\bnan(?: ± nan)?", "—", markdown)
        _figure(records, out / "figure.png", self.title)
        return markdown, {m: {k: list(v) for k, v in cols.items()} for m, cols in merged.items()}


def _figure(records: Sequence[dict], path: Path, title: str) -> Path:
    """Two gaps per method, in nats per sample, on a scale logarithmic beyond 0.01 nats so that
    MEME's half nat does not hide the mixture-based methods' hundredths:

    * left: how far the learned model's exact log-likelihood lies below the true model's on the
      same data (each method against the truth of the data it is trained on: the unimodal VAE's
      is that of the first modality alone); the line at 0 is the true model;
    * right: how far the trained objective lies below the learned model's log-likelihood, and,
      for the sub-sampled mixture bounds alone, the closed-form cap Σ ω_S Δ_S at the learned
      parameters (hollow diamonds): the least such gap of a bound that weights each subset by its
      own density.
    """
    from matplotlib.lines import Line2D

    column = lambda config: "all"  # noqa: E731
    model_gap = summarise(records, lambda r: r["true_model_log_likelihood"] - r["learned_log_likelihood"], column)
    bound_gap = summarise(records, lambda r: r["learned_log_likelihood"] - r["bound"], column)
    cap = summarise([r for r in records if (r["result"] or {}).get("subsampling_gap") is not None],
                    lambda r: r["subsampling_gap"], column)
    methods = list(model_gap)
    fig, axes = subplots(2, 4.4, 1.4 + 0.35 * len(methods))
    counts = []
    for ax, gaps, xlabel in ((axes[0], model_gap, r"$\log p(X) - \log p_\theta(X)$, nats per sample"),
                             (axes[1], bound_gap, r"$\log p_\theta(X)$ − trained objective, nats per sample")):
        for row, method in enumerate(methods):
            point = gaps[method]["all"]
            ax.errorbar([point[0]], [row], xerr=spread([point]), capsize=3, label=method, **method_style(method))
            counts.append(point[2])
        ax.set_xscale("symlog", linthresh=0.01, linscale=0.5)
        ax.set_yticks(range(len(methods)), methods)
        ax.set_ylim(len(methods) - 0.5, -0.5)
        ax.set_ylabel("method")
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3, axis="x")
    axes[0].set_title("the learned model below the true model", fontsize=9)
    axes[0].axvline(0, color="0.45", linestyle=":", linewidth=1.2, label="true model")
    axes[0].annotate("true model", (0, 0), xycoords=("data", "axes fraction"), xytext=(3, 3),
                     textcoords="offset points", fontsize=7, color="0.35")
    axes[1].set_title("the trained objective below the learned model", fontsize=9)
    for method in cap:
        axes[1].errorbar([cap[method]["all"][0]], [methods.index(method)], xerr=spread([cap[method]["all"]]),
                         capsize=3, linestyle="none", marker="D", markerfacecolor="none",
                         color=method_style(method)["color"], label=f"{method} (cap)")
    marks = [Line2D([], [], color="0.2", marker="o", linestyle="none")]
    names = ["the gap"]
    if cap:
        marks.append(Line2D([], [], color="0.2", marker="D", markerfacecolor="none", linestyle="none"))
        names.append(CAP + r" at the learned $\theta$")
    axes[1].legend(marks, names, title=seeds_note(counts), fontsize=8, title_fontsize=8, loc="upper left",
                   bbox_to_anchor=(1.02, 1))
    return save_figure(fig, path, title)
