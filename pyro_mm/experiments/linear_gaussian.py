"""``linear-gaussian``: Theorem 1 of Daunhawer et al. (ICLR 2022) in closed form.

Data come from a random linear-Gaussian model with three modalities, 30 % of the entries missing
(:mod:`pyro_mm.linear_gaussian`), so the exact log-likelihood of the data, and of every *learned*
model (linear decoders, learned noise; private latents integrated out), is known in closed form.
Every method of the registry is built with linear encoders and decoders of the size it needs and
trained by the one trainer; two options adapt a method to the data where it has them: Normal
latents (``family="normal"``: the model is then linear-Gaussian) and, beyond two modalities,
``extension=True``. The table reports each trained bound beside the exact log-likelihood of the
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
from ..methods import METHODS
from ..metrics.generative_discrepancy import generative_discrepancy
from ..modality import Modality
from ..nets import LinearDecoder, LinearEncoder
from .experiment import Experiment
from .grid import Cell
from .report import markdown_table, pyplot, save_figure, summarise

__all__ = ["LinearGaussian", "linear_modalities", "data_options"]

DATA = {"num_modalities": 3, "dims": 4, "z_dim": 2, "missing": 0.3}


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
    full_samples, quick_samples = 20000, 2000
    full_steps, quick_steps = 3000, 300
    batch_size, lr = 100, 0.02

    def describe(self, quick: bool, seeds: int) -> str:
        samples, steps = (self.quick_samples, self.quick_steps) if quick else (self.full_samples, self.full_steps)
        return f"{samples} samples, {steps} steps per method, {seeds} seed(s)"

    def cells(self, quick: bool, seeds: int) -> List[Cell]:
        samples, steps = (self.quick_samples, self.quick_steps) if quick else (self.full_samples, self.full_steps)
        return [Cell.make(method, "linear-gaussian", seed, steps,
                          options=data_options(METHODS[method], DATA["num_modalities"]),
                          data={**DATA, "samples": samples}, z_dim=DATA["z_dim"], batch_size=self.batch_size,
                          lr=self.lr) for seed in range(seeds) for method in METHODS]

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

    def judges_seconds(self, cells: Sequence[Cell]) -> float:
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
        markdown = markdown_table(merged, seeds) + "\n\n(per sample; mean ± sd over seeds; — : not a sub-sampled mixture bound)"
        markdown = re.sub(r"\bnan(?: ± nan)?", "—", markdown)
        _figure(merged, out / "figure.png", self.title)
        return markdown, {m: {k: list(v) for k, v in cols.items()} for m, cols in merged.items()}


def _figure(merged, path: Path, title: str) -> Path:
    """The trained bound and the exact log-likelihood of the learned model, per method."""
    plt = pyplot()

    methods = list(merged)
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    xs = range(len(methods))
    for offset, key, label in ((-0.2, "trained bound", "trained bound"),
                               (0.2, "exact log-lik of the learned model", "exact log p_θ(X) of the learned model")):
        ax.bar([x + offset for x in xs], [merged[m][key][0] for m in methods], width=0.4,
               yerr=[merged[m][key][1] for m in methods], label=label, capsize=3)
    truth = merged[methods[-1]]["log-lik under the true model"][0]
    ax.axhline(truth, color="k", lw=1, ls="--", label="log p(X) under the true model")
    ax.set_xticks(list(xs), methods)
    ax.set_ylabel("nats per sample")
    return save_figure(fig, path, title, legend=ax)
