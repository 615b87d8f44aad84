"""The main job end to end at a tiny size: every output written and readable, the table printed."""

import json
from pathlib import Path

import pytest
import torch

from pyro_mm.main_job import MainJobConfig, run_main_job, summary_rows
from pyro_mm.provenance import cpu_flags


def tiny(out, **overrides):
    options = dict(out=out, steps=3, size=200, eval_samples=60, classifier_size=300, likelihood_samples=10,
                   likelihood_particles=25, progress=False)
    options.update(overrides)
    return MainJobConfig(**options)


def test_tiny_main_job_writes_the_report(tmp_path, capsys):
    results = run_main_job(tiny(tmp_path / "run", matmul_precision="medium"))
    out = capsys.readouterr().out
    assert "| cross coherence mnist->syndigits |" in out and "| cross coherence syndigits->mnist |" in out
    run = tmp_path / "run"
    for name in ("model.pt", "history.json", "metrics.json", "report.md", "cross_generation.png",
                 "training_curve.png", "latent_space.png"):
        assert (run / name).stat().st_size > 0, name
    metrics = json.loads((run / "metrics.json").read_text())
    assert set(metrics["cross_coherence"]["pairs"]) == {"mnist->syndigits", "syndigits->mnist"}
    assert set(metrics["latent_accuracy"]) == {"joint", "mnist", "syndigits"}
    history = json.loads((run / "history.json").read_text())
    assert len(history["step_loss"]) == metrics["training"]["steps"] >= 1
    assert history["config"]["method"] == "meme" and history["config"]["dataset"] == "mnist-syndigits"
    timing = json.loads((run / "timing.json").read_text())
    assert timing["matmul_precision"] == "medium" and timing["threads"] >= 1
    assert timing["cpu_flags"] == cpu_flags() and timing["training_seconds"] > 0
    assert torch.get_float32_matmul_precision() == "highest"  # the precision held for training only
    report = (run / "report.md").read_text()
    assert "## Summary" in report and "training_curve.png" in report and "latent_space.png" in report
    rows = summary_rows(results)
    assert all(0 <= value <= 1 for name, value, _, _ in rows if "coherence" in name or "accuracy" in name)


def test_output_directory_that_is_a_file_is_refused(tmp_path):
    target = tmp_path / "file"
    target.write_text("keep me")
    with pytest.raises(NotADirectoryError, match="is a file"):
        run_main_job(tiny(target))
    assert target.read_text() == "keep me"


def test_the_main_command_runs_the_main_job_with_its_defaults(monkeypatch, tmp_path):
    from pyro_mm import cli, main_job

    seen = {}
    monkeypatch.setattr(main_job, "run_main_job", lambda config: seen.setdefault("config", config))
    monkeypatch.chdir(tmp_path)
    assert cli.main(["main"]) == 0
    assert seen["config"] == MainJobConfig()
    seen.clear()
    assert cli.main(["main", "--out", "elsewhere", "--steps", "30"]) == 0
    assert seen["config"] == MainJobConfig(out=Path("elsewhere"), steps=30)
    seen.clear()
    assert cli.main(["main", "--matmul-precision", "medium"]) == 0
    assert seen["config"] == MainJobConfig(matmul_precision="medium")


def test_main_command_runs_a_tiny_job(tmp_path, capsys):
    from pyro_mm.cli import main

    argv = ["main", "--steps", "2", "--size", "200", "--eval-samples", "60", "--classifier-size", "300",
            "--no-progress", "--out", str(tmp_path / "run")]
    assert main(argv) == 0
    assert "| cross coherence syndigits->mnist |" in capsys.readouterr().out
    assert (tmp_path / "run" / "report.md").is_file()


@pytest.mark.parametrize("argv", [["main", "--steps", "0"], ["main", "--fraction", "2"],
                                  ["main", "--matmul-precision", "bf16"]])
def test_bad_main_options_are_refused(argv):
    from pyro_mm.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2


def test_a_second_run_with_the_same_seed_writes_the_same_metrics(tmp_path):
    run_main_job(tiny(tmp_path / "a"))
    run_main_job(tiny(tmp_path / "b"))
    assert (tmp_path / "a" / "metrics.json").read_text() == (tmp_path / "b" / "metrics.json").read_text()
    assert json.loads((tmp_path / "a" / "timing.json").read_text())["total_seconds"] > 0


def test_more_evaluation_pairs_than_the_test_split_are_refused(tmp_path, capsys):
    from pyro_mm.cli import main

    assert main(["main", "--eval-samples", "99999", "--out", str(tmp_path / "run")]) == 1
    assert "eval_samples must lie in [1, 10000]" in capsys.readouterr().err
    assert not (tmp_path / "run" / "model.pt").exists()


def test_an_absent_device_is_one_line(tmp_path, capsys):
    from pyro_mm.cli import main

    assert main(["main", "--device", "tpu:x", "--out", str(tmp_path / "run")]) == 1
    assert capsys.readouterr().err == "pyro-mm: error: unknown device 'tpu:x' (use cpu, cuda or cuda:N)\n"
