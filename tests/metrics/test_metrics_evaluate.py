"""evaluate() end to end on a small image-text set, and its report."""

import json
from collections import Counter

import torch

from pyro_mm.guides import MutualSupervisionGuide
from pyro_mm.likelihoods import Categorical
from pyro_mm.metrics.classifiers import train_classifier
from pyro_mm.metrics import evaluate as evaluate_module
from pyro_mm.metrics.evaluate import evaluate, write_report
from pyro_mm.modality import Modality
from pyro_mm.models import MutualSupervisionModel
from pyro_mm.nets import MLPDecoder, MLPEncoder, TextDecoder, TextEncoder


def test_every_metric_and_the_report(captions, tmp_path, monkeypatch):
    train, test = captions
    z = 4
    img_shape = train.event_shapes["image"]
    L = train.event_shapes["text"][0]
    V = train.vocab_size if hasattr(train, "vocab_size") else len(train.vocab)
    mods = [Modality("image", img_shape, MLPEncoder(img_shape, z, (32,)), MLPDecoder(z, img_shape, (32,))),
            Modality("text", (L,), TextEncoder(V, L, z, 8, 16), TextDecoder(z, L, V, 32), Categorical(V))]
    model = MutualSupervisionModel(mods, z, pseudo_samples=4)
    guide = MutualSupervisionGuide(mods)
    classifiers = {n: train_classifier(train, n, epochs=1, progress=False, seed=0) for n in train.names}
    drawn = Counter()  # rows cross-generated, per (given, target)
    predict = evaluate_module.predict

    def counting_predict(model, guide, batch, given, targets):
        drawn[(tuple(given), *targets)] += len(batch)
        return predict(model, guide, batch, given, targets)
    monkeypatch.setattr(evaluate_module, "predict", counting_predict)
    results = evaluate(model, guide, test, classifiers, train_set=train, num_samples=200, likelihood_samples=20,
                       likelihood_particles=30, batch_size=100, progress=False)
    assert set(results["cross_coherence"]["pairs"]) == {"image->text", "text->image"}
    # the Fréchet distances and the CCA read the cross-generations that coherence judged: each test
    # pair is cross-generated once per direction (plus the 8 pairs of the figure's grid, images only)
    assert drawn == {(("text",), "image"): 200 + 8, (("image",), "text"): 200}
    assert 0.0 <= results["joint_coherence"] <= 1.0
    assert set(results["latent_accuracy"]) == {"joint", "image", "text"}
    assert "image" in results["frechet"]["unconditional"] and "text->image" in results["frechet"]["conditional"]
    assert torch.isfinite(torch.tensor(results["log_likelihood"]["joint_mean"]))
    assert set(results["log_likelihood"]["conditional"]) == {"image|text", "text|image"}
    assert results["relatedness"]["paired_mean_w2"] >= 0 and set(results["cca"]) == {"image->text", "text->image"}
    report = write_report(results, tmp_path / "out")
    saved = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert saved["latent_accuracy"] == results["latent_accuracy"]
    assert (tmp_path / "out" / "coherence.png").stat().st_size > 0 and "Cross coherence" in report.read_text()
    for figure in ("cross_generation.png", "w2_histograms.png", "class_distances.png"):
        assert (tmp_path / "out" / figure).stat().st_size > 0, figure
