"""One call for every applicable metric of a trained model and guide on a data set.

:func:`evaluate` runs, on the complete test data (every modality observed, whatever the training
observation scheme was):

* cross coherence for every subset of input modalities → every other modality (by subset size and
  per pair) and joint coherence from prior samples (Shi et al. 2019);
* latent accuracy: a linear probe on posterior means, given each modality alone (q(z | x_m)) and for the joint
  posterior, trained on training-set embeddings;
* Fréchet distance in classifier features between real and generated images, unconditional and
  conditional (the cross-generations that cross coherence judged);
* the importance-sampled joint log-likelihood and the conditional log p(x_n | x_m) of every pair,
  each with its Pareto k̂ summary;
* for two modalities, MEME's relatedness: W2 between the two unimodal posteriors of paired vs
  unpaired samples (Joy et al. 2022);
* for an image–text set, the CCA correlation between the input and its cross-generated partner in
  classifier features, measured out of sample (directions fitted on half of the test pairs).

:func:`write_report` writes ``metrics.json``, ``report.md`` and the figures (with the training
curve when ``results["_arrays"]["training_loss"]`` holds the per-step losses).
"""

from __future__ import annotations

import json
from itertools import combinations
from pathlib import Path
from typing import Dict, Mapping

import torch
from tqdm.auto import tqdm

from pyro_mm.batch import MultimodalBatch
from pyro_mm.metrics.cca import held_out_cca_correlation
from pyro_mm.metrics.coherence import cross_coherence, joint_coherence
from pyro_mm.metrics.frechet import classifier_features, frechet_distance
from pyro_mm.metrics.latent_accuracy import linear_probe_accuracy
from pyro_mm.metrics.likelihood import conditional_log_likelihood, log_likelihood
from pyro_mm.metrics.pareto import khat_summary
from pyro_mm.metrics.relatedness import class_distance_matrix, expert_posteriors, paired_unpaired_distances
from pyro_mm.queries import embed, predict, sample_prior

__all__ = ["evaluate", "write_report", "complete_batch"]


def complete_batch(dataset, num_samples: int, seed: int = 0, device="cpu") -> MultimodalBatch:
    """``num_samples`` random samples of ``dataset`` with every modality observed."""
    g = torch.Generator().manual_seed(seed)
    idx = torch.randperm(len(dataset), generator=g)[:num_samples]
    return dataset.batch(idx, complete=True).to(device)


def _chunks(batch: MultimodalBatch, size: int):
    return [batch.select(torch.arange(i, min(i + size, len(batch)))) for i in range(0, len(batch), size)]


def evaluate(model, guide, test_set, classifiers: Mapping[str, torch.nn.Module], train_set=None,
             num_samples: int = 2000, likelihood_samples: int = 500, likelihood_particles: int = 200,
             batch_size: int = 500, seed: int = 0, progress: bool = True) -> Dict:
    """Every applicable metric as a JSON-serialisable dict (plus ``"_arrays"`` for the figures)."""
    device = model.prior().mean.device
    names = tuple(model.names)
    test = complete_batch(test_set, num_samples, seed, device)
    chunks = _chunks(test, batch_size)
    images = [n for n in names if test_set.likelihoods[n] == "bernoulli"]
    results: Dict = {"num_test_samples": len(test)}
    arrays: Dict = {}
    stages = tqdm(total=6, desc="evaluate", disable=not progress)

    generated: Dict = {}  # (source, target) -> the cross-generations from one modality, chunk by chunk

    def draw(batch, given, target):
        return predict(model, guide, batch, given, [target])[target]

    def generate(batch, given, target):  # drawn for cross coherence; kept when one modality is given
        x = draw(batch, given, target)
        if len(given) == 1:
            generated.setdefault((given[0], target), []).append(x)
        return x

    def cross_generated(given, target):  # those cross coherence judged (every test pair: the batch is complete)
        return torch.cat(generated[(given, target)])

    if len(names) > 1:
        coherence = cross_coherence(generate, chunks, classifiers, names)
        results["cross_coherence"] = {
            "mean": coherence.mean,
            "by_subset_size": {str(k): v for k, v in coherence.by_size.items()},
            "pairs": {f"{'+'.join(s)}->{t}": v for (s, t), v in coherence.pairs.items()},
        }
        arrays["coherence"] = coherence
    results["joint_coherence"] = joint_coherence(lambda n: sample_prior(model, n), classifiers, len(test),
                                                 batch_size=batch_size, names=names)
    stages.update()

    train = complete_batch(train_set, num_samples, seed + 1, device) if train_set is not None else None
    test_emb = _embed_all(guide, chunks)
    if train is None:  # probe on half of the test embeddings, score on the other half
        half = len(test) // 2
        train_emb = {k: v[:half] for k, v in test_emb.items()}
        test_emb = {k: v[half:] for k, v in test_emb.items()}
        train_y, test_y = test.labels[:half], test.labels[half:]
    else:
        train_emb, train_y, test_y = _embed_all(guide, _chunks(train, batch_size)), train.labels, test.labels
    results["latent_accuracy"] = {k: linear_probe_accuracy(train_emb[k], train_y, test_emb[k], test_y)
                                  for k in test_emb}
    arrays["embeddings"] = {k: v.cpu() for k, v in test_emb.items()}
    arrays["embedding_labels"] = test_y.cpu()
    stages.update()

    grid = chunks[0].select(torch.arange(min(8, len(chunks[0]))))
    arrays["grid_inputs"] = {n: grid[n].cpu() for n in names}
    arrays["grid_generated"] = {f"{g}->{t}": draw(grid, (g,), t).cpu() for t in images for g in names if g != t}
    prior = sample_prior(model, len(test))
    frechet = {"unconditional": {}, "conditional": {}}
    for n in images:
        real = classifier_features(classifiers[n], test[n])
        frechet["unconditional"][n] = frechet_distance(real, classifier_features(classifiers[n], prior[n]))
        for g in names:
            if g != n:
                fake = cross_generated(g, n)
                frechet["conditional"][f"{g}->{n}"] = frechet_distance(real, classifier_features(classifiers[n], fake))
    results["frechet"] = frechet
    stages.update()

    subset = test.select(torch.arange(min(likelihood_samples, len(test))))
    lik = log_likelihood(model, guide, subset, num_particles=likelihood_particles)
    results["log_likelihood"] = {"joint_mean": float(lik["log_likelihood"].mean()),
                                 "particles": likelihood_particles,
                                 "khat": khat_summary(lik["khat"]), "conditional": {}}
    for target in names:
        for given in (g for g in names if g != target):
            cond = conditional_log_likelihood(model, guide, subset, target, (given,), likelihood_particles)
            results["log_likelihood"]["conditional"][f"{target}|{given}"] = {
                "mean": float(cond["log_likelihood"].mean()), "khat": khat_summary(cond["khat"])}
    stages.update()

    if len(names) == 2 and hasattr(guide, "experts"):
        loc, scale = expert_posteriors(guide, chunks)
        d = paired_unpaired_distances(loc[:, 0], scale[:, 0], loc[:, 1], scale[:, 1], labels=test.labels,
                                      generator=torch.Generator().manual_seed(seed))
        results["relatedness"] = {"paired_mean_w2": float(d.paired.mean()),
                                  "unpaired_mean_w2": float(d.unpaired.mean())}
        arrays["relatedness"] = d
        arrays["class_distances"] = class_distance_matrix(loc[:, 0], scale[:, 0], test.labels, loc[:, 1],
                                                          scale[:, 1], test.labels)
    stages.update()

    texts = [n for n in names if test_set.likelihoods[n] == "categorical"]
    if texts and images:
        cca = {}
        for a, b in combinations(names, 2):
            for src, dst in ((a, b), (b, a)):
                fake = cross_generated(src, dst)
                cca[f"{src}->{dst}"] = held_out_cca_correlation(classifier_features(classifiers[src], test[src]),
                                                                classifier_features(classifiers[dst], fake), k=5)
        results["cca"] = cca
    stages.update()
    stages.close()
    results["_arrays"] = arrays
    return results


def _embed_all(guide, chunks):
    parts = [embed(guide, c) for c in chunks]
    return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}


def write_report(results: Dict, out_dir, title: str = "pyro_mm evaluation") -> Path:
    """Write ``metrics.json``, ``report.md`` and PNG figures into ``out_dir``; returns the report."""
    from pyro_mm.metrics import plots

    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"output directory {out} is a file")
    out.mkdir(parents=True, exist_ok=True)
    arrays = results.get("_arrays", {})
    clean = {k: v for k, v in results.items() if k != "_arrays"}
    (out / "metrics.json").write_text(json.dumps(clean, indent=2))
    lines = [f"# {title}", ""]
    if arrays.get("training_loss"):
        plots.training_curve(arrays["training_loss"], out / "training_curve.png")
        lines += ["![training curve](training_curve.png)", ""]
    if "cross_coherence" in clean:
        lines += ["## Cross coherence", "", "| input -> target | accuracy |", "|---|---:|"]
        lines += [f"| {k} | {v:.3f} |" for k, v in clean["cross_coherence"]["pairs"].items()]
        plots.coherence_bars(arrays["coherence"], out / "coherence.png")
        lines += ["", "![coherence](coherence.png)", ""]
    if arrays.get("grid_generated"):
        plots.cross_generation_grid(arrays["grid_inputs"], arrays["grid_generated"], out / "cross_generation.png")
        lines += ["![cross generation](cross_generation.png)", ""]
    lines += [f"Joint coherence: {clean['joint_coherence']:.3f}", "", "## Latent accuracy (linear probe)", "",
              "| posterior | accuracy |", "|---|---:|"]
    lines += [f"| {k} | {v:.3f} |" for k, v in clean["latent_accuracy"].items()]
    if "embeddings" in arrays:
        plots.latent_view(arrays["embeddings"], arrays["embedding_labels"], out / "latent_space.png")
        lines += ["", "![latent space](latent_space.png)"]
    lines += ["", "## Fréchet distance (classifier features)", "", "| generated | distance |", "|---|---:|"]
    for kind, table in clean["frechet"].items():
        lines += [f"| {kind}: {k} | {v:.2f} |" for k, v in table.items()]
    lik = clean["log_likelihood"]
    lines += ["", f"Joint log-likelihood ({lik['particles']} particles): {lik['joint_mean']:.2f} "
              f"(Pareto k̂ mean {lik['khat']['mean']:.2f}, max {lik['khat']['max']:.2f})", "",
              "| conditional | log-likelihood | k̂ mean |", "|---|---:|---:|"]
    lines += [f"| {k} | {v['mean']:.2f} | {v['khat']['mean']:.2f} |" for k, v in lik["conditional"].items()]
    if "relatedness" in clean:
        d = arrays["relatedness"]
        plots.w2_histograms(d.paired, d.unpaired, out / "w2_histograms.png")
        lines += ["", "## Relatedness (W2 between unimodal posteriors)", "",
                  f"paired {clean['relatedness']['paired_mean_w2']:.3f}, unpaired "
                  f"{clean['relatedness']['unpaired_mean_w2']:.3f}", "", "![w2](w2_histograms.png)"]
        plots.distance_matrix_heatmap(arrays["class_distances"].cpu().numpy(), out / "class_distances.png")
        lines += ["", "![class distances](class_distances.png)"]
    if "cca" in clean:
        lines += ["", "## CCA (input vs cross-generated, classifier features)", ""]
        lines += [f"- {k}: {v:.3f}" for k, v in clean["cca"].items()]
    report = out / "report.md"
    report.write_text("\n".join(lines) + "\n")
    return report
