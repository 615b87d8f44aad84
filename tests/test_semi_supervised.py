"""examples/semi_supervised_mnist.py: the user's own Pyro model of an image and its label under
plain SVI with pyro_mm's guides and objectives, run as a grid of pyro_mm's experiment machinery
(its quick mode, records in a results store, resume from a checkpoint), and the two hooks it uses
(:meth:`Experiment.fit`, :meth:`Experiment.seconds_per_step`)."""

import importlib.util
import json
from pathlib import Path

import pyro
import pytest
import torch

from pyro_mm.experiments import scheduler
from pyro_mm.experiments.duration import training_seconds
from pyro_mm.experiments.grid import cell_dir

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "semi_supervised_mnist.py"


@pytest.fixture(scope="module")
def example():
    spec = importlib.util.spec_from_file_location("semi_supervised_mnist", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _records(directory: Path):
    return {p.stem: json.loads(p.read_text()) for p in sorted(directory.glob("*.json"))}


def test_quick_mode_trains_both_objectives_into_the_results_store_and_is_not_trained_again(example, tmp_path,
                                                                                           monkeypatch):
    out, results = tmp_path / "out", tmp_path / "results"
    argv = ["--quick", "--out", str(out), "--results", str(results), "--threads", "1", "--no-progress"]
    run = example.main(argv)
    records = _records(results / "semi-supervised" / "cells")
    assert sorted(r["config"]["method"] for r in records.values()) == ["meme", "mmvae"]
    for record in records.values():
        result = record["result"]
        assert record["config"]["steps"] == 300 and record["config"]["data"]["labelled"] == 600
        assert result["test_images"] == 1000 and record["judges_sha256"] is None and record["threads"] == 1
        assert [step for step, _ in result["curve"]] == [1, 2, 5, 9, 19, 38, 75, 150, 300]  # 300 / 2^k
        assert 0.5 < result["accuracy"] <= 1 and 0.5 < result["accuracy_predictive"] <= 1, result
    # 300 steps already put MEME far above chance (≈ 0.84 measured)
    assert records[next(k for k in records if k.startswith("meme"))]["result"]["accuracy"] > 0.7
    table = (out / "table.md").read_text()
    assert "python examples/semi_supervised_mnist.py --quick" in table and "0.9437" in table
    assert (out / "figure.png").stat().st_size > 0 and "| **MEME** (ours, plain SVI) |" in run["markdown"]
    # a second run finds every record and trains nothing; --table-only from the store alone gives the same table
    monkeypatch.setattr(scheduler, "train_cell", lambda *args: pytest.fail("a finished cell was trained again"))
    again = example.main(argv)
    alone = example.main(["--quick", "--out", str(tmp_path / "table"), "--results", str(results), "--table-only",
                          "--no-progress"])
    assert again["markdown"] == run["markdown"] == alone["markdown"]


def _small(example, steps):
    experiment = example.SemiSupervisedMNIST(train_size=1000)
    experiment.quick_steps, experiment.quick_test_samples, experiment.curve_samples = steps, 50, 50
    return experiment


@pytest.mark.parametrize("method", ["meme", "mmvae"])
def test_an_interrupted_cell_resumes_from_its_checkpoint_to_the_same_figures(example, tmp_path, method):
    experiment = _small(example, 8)
    cell = next(c for c in experiment.cells(True, 1) if c.method == method)
    fingerprint = experiment.fingerprint(cell)
    straight = scheduler.train_cell(experiment, cell, tmp_path / "straight", 1, fingerprint, lambda key, n: None)

    def interrupt(key, steps, seen=[0]):
        seen[0] += steps
        if seen[0] == 5:  # after the checkpoint of step 4 (every cell.steps // 4 steps)
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        scheduler.train_cell(experiment, cell, tmp_path / "resumed", 1, fingerprint, interrupt)
    assert (tmp_path / "resumed" / "checkpoint.pt").is_file()
    resumed = scheduler.train_cell(experiment, cell, tmp_path / "resumed", 1, fingerprint, lambda key, n: None)
    assert resumed["training"]["resumed_from"] == 4 and resumed["training"]["steps"] == 8
    assert resumed["result"] == straight["result"]
    assert resumed["training"]["final_loss"] == pytest.approx(straight["training"]["final_loss"], rel=1e-6)


def test_the_users_model_meets_memes_protocols_and_initialise_sets_its_pseudo_samples(example):
    from pyro_mm.protocols import ConditionalPriorModel, DataInitialised

    model, guide, _ = example.meme(4, 10.0, num_particles=2, pseudo_samples=6, hidden=8)
    assert isinstance(model, ConditionalPriorModel) and isinstance(model, DataInitialised)
    assert model.encoders["label"] is guide.encoders["label"]  # the conditional priors are the guide's encoders
    experiment = _small(example, 2)
    cell = experiment.cells(True, 1)[0]
    train = experiment.build(cell)[1]
    labelled = train.batch(train.masks[:, 1].nonzero().squeeze(-1))
    from pyro_mm.infer import initialise

    assert initialise(model, guide, labelled) == ["model"] and initialise(model, guide, labelled) == []
    # each pseudo-sample is a labelled pair: its image one of the labelled images, its soft label peaked at that digit
    images = labelled["image"].clamp(1e-3, 1 - 1e-3).flatten(1)
    for image, label in zip(torch.sigmoid(model.pseudo_image).flatten(1), model.pseudo_label):
        match = (images - image).abs().amax(-1).argmin()
        assert torch.allclose(images[match], image, atol=1e-5) and label.argmax() == labelled["label"][match]
        assert label.softmax(-1).max() > 0.85
    state = model.state_dict()
    fresh = example.meme(4, 10.0, num_particles=2, pseudo_samples=6, hidden=8)[0]
    fresh.load_state_dict(state)
    assert fresh.initialised and torch.equal(fresh.pseudo_label, model.pseudo_label)


def test_the_experiment_hooks_train_and_time_what_build_returned(example, tmp_path):
    """Experiment.fit and Experiment.seconds_per_step: the grid trains a plain SVI loop, and the
    duration estimate times its steps (nothing reaches MultimodalVAE.fit)."""
    experiment = _small(example, 3)
    cells = experiment.cells(True, 1)
    assert training_seconds(experiment, cells, warmup=1, timed=1) > 0
    assert not list(pyro.get_param_store().keys())  # the timing leaves no parameter behind
    steps = []
    record = scheduler.train_cell(experiment, cells[0], cell_dir(tmp_path, cells[0]), 1,
                                  experiment.fingerprint(cells[0]), lambda key, n: steps.append(n))
    assert sum(steps) == 3 and record["training"]["steps"] == 3 and record["result"]["test_images"] == 50
