"""The pyro-mm command: help texts and a tiny demo run."""

import pytest

from pyro_mm.cli import build_parser, main


def test_help_of_every_sub_command(capsys):
    parser = build_parser()
    for argv in ([], ["main"], ["demo"], ["train"], ["evaluate"], ["sample"], ["data"]):
        with pytest.raises(SystemExit) as exit_info:
            parser.parse_args(argv + ["--help"])
        assert exit_info.value.code == 0
    assert "synthetic" in capsys.readouterr().out


def test_tiny_demo_prints_a_table(capsys):
    assert main(["demo", "--samples", "120", "--epochs", "2", "--no-progress", "--methods", "mmvae", "mvae"]) == 0
    out = capsys.readouterr().out
    assert "| mmvae |" in out and "| mvae |" in out and "epoch   2" in out


@pytest.mark.parametrize("argv", [["demo", "--epochs", "0"], ["demo", "--missing", "1.5"], ["demo", "--methods", "vae"]])
def test_bad_options_are_refused(argv):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2


def test_train_then_evaluate_on_a_tiny_configuration(tmp_path, capsys):
    import json

    out = tmp_path / "run"
    assert main(["train", "--method", "meme", "--dataset", "mnist-syndigits", "--size", "150", "--epochs", "1",
                 "--batch-size", "64", "--z-dim", "4", "--no-progress", "--out", str(out)]) == 0
    assert (out / "model.pt").is_file() and json.loads((out / "history.json").read_text())["loss"]
    assert main(["evaluate", "--run", str(out), "--samples", "100", "--particles", "30", "--classifier-size", "150",
                 "--no-progress"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"cross_coherence", "latent_accuracy", "frechet", "log_likelihood", "relatedness"} <= set(metrics)
    assert (out / "report.md").is_file() and (out / "w2_histograms.png").is_file()
    assert (out / "training_curve.png").is_file()


@pytest.mark.parametrize("argv,message", [
    (["train", "--method", "vae"], "invalid choice"),
    (["train", "--dataset", "svhn"], "invalid choice"),
    (["train", "--time-budget", "0"], "must be positive"),
])
def test_bad_train_options_are_refused(argv, message, capsys):
    with pytest.raises(SystemExit):
        main(argv)
    assert message in capsys.readouterr().err


def test_an_output_directory_that_is_a_file_is_refused(tmp_path, capsys):
    target = tmp_path / "file"
    target.write_text("x")
    with pytest.raises(SystemExit):
        main(["train", "--out", str(target)])
    assert "is a file" in capsys.readouterr().err


def test_unknown_device_is_named(tmp_path):
    with pytest.raises(SystemExit, match="unknown device"):
        main(["train", "--device", "tpu0", "--size", "10", "--out", str(tmp_path / "r")])


def test_train_writes_a_checkpoint_and_resumes_from_it(tmp_path, capsys):
    import json

    out = tmp_path / "run"
    argv = ["train", "--method", "mvae", "--dataset", "mnist-syndigits", "--size", "60", "--epochs", "2",
            "--batch-size", "50", "--z-dim", "4", "--checkpoint-every", "2", "--no-progress", "--out", str(out)]
    with pytest.raises(SystemExit, match="no checkpoint"):
        main(argv + ["--resume"])
    assert main(argv[:-2] + ["--out", str(out), "--time-budget", "1e-9"]) == 0  # stops after one step
    assert (out / "checkpoint.pt").is_file()
    assert main(argv + ["--resume"]) == 0
    history = json.loads((out / "history.json").read_text())
    assert len(history["loss"]) == 2 and len(history["step_loss"]) == 12  # 300 pairs / 50 per batch, twice
    with pytest.raises(SystemExit, match="batch_size"):
        main(argv[:argv.index("--batch-size")] + ["--batch-size", "20"] + argv[argv.index("--batch-size") + 2:]
             + ["--resume"])


def test_sample_and_data_commands(tmp_path, capsys):
    import torch

    out = tmp_path / "run"
    assert main(["train", "--method", "mmvae", "--dataset", "mnist-syndigits", "--size", "40", "--batch-size", "40",
                 "--z-dim", "4", "--no-progress", "--out", str(out)]) == 0
    assert main(["sample", "--run", str(out), "--num", "3"]) == 0
    prior = torch.load(out / "samples.pt")
    assert prior["mnist"].shape == (3, 1, 28, 28) and prior["syndigits"].shape == (3, 3, 32, 32)
    assert main(["sample", "--run", str(out), "--num", "2", "--given", "syndigits", "--out", str(tmp_path / "c")]) == 0
    assert set(torch.load(tmp_path / "c" / "samples.pt")) == {"syndigits->mnist"}
    assert (tmp_path / "c" / "samples.png").stat().st_size > 0
    with pytest.raises(SystemExit, match="not a modality"):
        main(["sample", "--run", str(out), "--given", "svhn"])
    with pytest.raises(SystemExit, match="no trained run"):
        main(["sample", "--run", str(tmp_path / "nothing")])
    assert main(["data", "prepare", "--dataset", "mnist-syndigits", "--size", "30", "--split", "test"]) == 0
    assert "test: MNISTSynDigits(n=150" in capsys.readouterr().out
    assert main(["data", "preview", "--dataset", "captioned-digits", "--size", "20", "--out",
                 str(tmp_path / "p.png")]) == 0
    assert (tmp_path / "p.png").stat().st_size > 0
