"""The pyro-mm command: help texts, tiny end-to-end runs of every sub-command, bad input (one line
on stderr — with one indented line per reason when there are several: exit status 2 for usage
errors, 1 for the rest; 130 and 143 for Ctrl-C and SIGTERM)."""

import json
from pathlib import Path

import pytest
import torch

from pyro_mm import api
from pyro_mm.cli import build_parser, main
from pyro_mm.data.cache import data_dir

TINY = ["--dataset", "mnist-syndigits", "--z-dim", "4", "--no-progress"]


def fails(argv, message, capsys, code=1):
    """The command ends with ``code`` and one line on stderr matching ``message``."""
    import re

    if code == 2:
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2
    else:
        assert main(argv) == code
    err = capsys.readouterr().err
    assert re.search(message, err), err
    if code == 1:  # the summary, then only indented reason lines
        lines = err.rstrip("\n").split("\n")
        assert lines[0].startswith("pyro-mm: error: ") and re.search(message, lines[0]), err
        assert all(line.startswith("  ") for line in lines[1:]) and "Traceback" not in err, err
    return err


def files(folder):
    """The files a run wrote (not the lock of the directory, which every run takes)."""
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.name != ".pyro_mm.lock"}


def test_help_of_every_sub_command_and_the_version(capsys):
    parser = build_parser()
    assert main([]) == 0 and "usage: pyro-mm" in capsys.readouterr().out  # no sub-command: the help
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0 and capsys.readouterr().out.startswith("pyro-mm ")
    for argv in ([], ["main"], ["demo"], ["train"], ["evaluate"], ["sample"], ["data"], ["data", "prepare"],
                 ["reproduce"]):
        with pytest.raises(SystemExit) as exit_info:
            parser.parse_args(argv + ["--help"])
        assert exit_info.value.code == 0
        text = capsys.readouterr().out
        assert text.startswith("usage: pyro-mm") and "examples:\n  pyro-mm" in text, argv


@pytest.mark.parametrize("argv", [["demo", "--seeds", "0"], ["reproduce", "no-such-experiment"],
                                  ["reproduce", "meme-table", "--seeds", "x"]])
def test_bad_options_are_refused(argv):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2


def test_train_then_evaluate_on_a_tiny_configuration(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--method", "meme", "--size", "150", "--epochs", "1", "--batch-size", "64",
                 "--rao-blackwell", "--num-particles", "2", "--num-pseudo-samples", "8", "--out", str(out)] + TINY) == 0
    assert (out / "model.pt").is_file() and json.loads((out / "history.json").read_text())["loss"]
    assert api.load_model(out / "model.pt").elbo.rao_blackwell
    assert main(["evaluate", "--run", str(out), "--samples", "100", "--particles", "30", "--classifier-size", "150",
                 "--no-progress"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"cross_coherence", "latent_accuracy", "frechet", "log_likelihood", "relatedness"} <= set(metrics)
    assert (out / "report.md").is_file() and (out / "w2_histograms.png").is_file()
    assert (out / "training_curve.png").is_file()


def test_evaluate_refuses_a_model_trained_on_other_data(tmp_path, capsys):
    """A model records the content hash of its training data; data built differently since is
    refused in one line, and nothing in the run is changed."""
    out = tmp_path / "run"
    assert main(["train", "--method", "mvae", "--size", "40", "--steps", "2", "--batch-size", "50",
                 "--out", str(out)] + TINY) == 0
    vae = api.load_model(out / "model.pt")
    assert vae.data_sha256 is not None and len(vae.data_sha256) == 64
    vae.data_sha256 = "0" * 64  # as if the generator had given other images at training time
    vae.save(out / "model.pt")
    before = files(out)
    fails(["evaluate", "--run", str(out), "--samples", "20", "--particles", "30", "--classifier-size", "40",
           "--no-progress"], r"trained on other data .* 00000000… then", capsys)
    assert files(out) == before


@pytest.mark.parametrize("argv,message", [
    (["train", "--method", "vae"], "invalid choice: 'vae'"),
    (["train", "--dataset", "svhn"], "invalid choice: 'svhn'"),
    (["train", "--time-budget", "0"], "must be a finite positive number, got 0"),
    (["train", "--time-budget", "-5"], "must be a finite positive number, got -5"),
    (["train", "--method", "mvae", "--num-subsets", "2"], "--num-subsets: not an option of mvae"),
    (["train", "--method", "mmvae", "--beta", "-1"], "option beta: must be a finite number >= 0.0"),
    (["data", "prepare", "--dataset", "cifar"], "invalid choice: 'cifar'"),
    (["sample", "--num", "0"], "must be a positive integer"),
    (["reproduce", "modality-sweep", "--minimum", "--quick"], "not allowed with argument"),
])
def test_bad_options_are_named(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


@pytest.mark.parametrize("argv,message", [
    (["linear-gaussian", "--minimum"], "linear-gaussian has no minimum grid"),
    (["modality-sweep", "--minimum", "--seeds", "2"], "it takes neither quick nor seeds"),
])
def test_a_minimum_grid_that_cannot_be_is_named(argv, message, tmp_path, capsys):
    fails(["reproduce"] + argv + ["--out", str(tmp_path / "grid"), "--no-progress"], message, capsys)
    assert not any((tmp_path / "grid").glob("*"))  # nothing written


@pytest.mark.parametrize("command", [["train", "--out"], ["sample", "--out"], ["evaluate", "--run"]])
def test_an_output_directory_that_is_a_file_is_refused(command, tmp_path, capsys):
    target = tmp_path / "file"
    target.write_text("keep me")
    with pytest.raises(SystemExit) as exit_info:
        main(command + [str(target)])
    assert exit_info.value.code == 2 and "is a file" in capsys.readouterr().err
    assert target.read_text() == "keep me"


@pytest.mark.parametrize("device,message", [("tpu0", "unknown device 'tpu0'"), ("meta", "not supported"),
                                            ("cuda:7", "cuda:7")])
def test_unknown_or_absent_devices_are_named(device, message, tmp_path, capsys):
    fails(["train", "--device", device, "--size", "10", "--out", str(tmp_path / "r")], message, capsys)
    assert not (tmp_path / "r").exists()


def test_train_checkpoints_resumes_exactly_and_refuses_other_settings(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["train", "--method", "mvae", "--size", "60", "--epochs", "2", "--batch-size", "50",
            "--checkpoint-every", "2", "--out", str(out)] + TINY  # 300 pairs: 6 steps per epoch
    fails(argv + ["--resume"], "--resume: no checkpoint at .*checkpoint.pt", capsys)
    assert not out.exists()
    assert main(argv) == 0
    straight = json.loads((out / "history.json").read_text())
    assert len(straight["loss"]) == 2 and len(straight["step_loss"]) == 12
    assert main(argv + ["--time-budget", "1e-9"]) == 0  # a fresh run, stopped after one step
    assert "starting afresh" in capsys.readouterr().out
    assert len(json.loads((out / "history.json").read_text())["step_loss"]) == 1
    assert main(argv + ["--resume"]) == 0
    resumed = json.loads((out / "history.json").read_text())
    assert resumed["step_loss"] == straight["step_loss"] and resumed["loss"] == straight["loss"]
    before = files(out)
    for option, value, named in (("--fraction", "0.3", "fraction"), ("--batch-size", "20", "batch_size"),
                                 ("--method", "mmvae", "method"), ("--z-dim", "5", "z_dim"),
                                 ("--beta", "2", "options"), ("--encoder", "mlp", "networks"),
                                 ("--matmul-precision", "medium", "matmul_precision='highest', this run has "
                                  "matmul_precision='medium'")):
        changed = argv[:]
        if option in changed:
            changed[changed.index(option) + 1] = value
        else:
            changed += [option, value]
        fails(changed + ["--resume"], named, capsys)
    assert files(out) == before  # nothing was touched


def test_train_at_a_reduced_matmul_precision_records_it(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["train", "--method", "mvae", "--size", "10", "--matmul-precision", "medium", "--out", str(out)] + TINY
    assert main(argv) == 0
    assert json.loads((out / "history.json").read_text())["config"]["matmul_precision"] == "medium"
    assert torch.get_float32_matmul_precision() == "highest"  # training only
    fails(argv + ["--devices", "1"], "--matmul-precision is the built-in trainer's", capsys)


def test_ctrl_c_during_train_points_at_resume(tmp_path, monkeypatch, capsys):
    def interrupted(self, *args, **kwargs):
        if kwargs["checkpoint"].parent.name == "saved":
            kwargs["checkpoint"].write_bytes(b"a checkpoint")
        raise KeyboardInterrupt

    monkeypatch.setattr(api.MultimodalVAE, "fit", interrupted)
    argv = ["train", "--method", "mvae", "--size", "10", "--out", str(tmp_path / "run")] + TINY
    assert main(argv) == 130
    assert capsys.readouterr().err == "pyro-mm: interrupted by Ctrl-C before the first checkpoint; nothing to resume\n"
    (tmp_path / "run" / "checkpoint.pt").write_bytes(b"an earlier run's")
    assert main(argv) == 130
    assert "before the first checkpoint of this run; " in capsys.readouterr().err
    argv[argv.index("--out") + 1] = str(tmp_path / "saved")
    assert main(argv) == 130
    assert capsys.readouterr().err == (f"pyro-mm: interrupted by Ctrl-C; {tmp_path / 'saved' / 'checkpoint.pt'} holds "
                                       "the last checkpoint: continue with the same command and --resume\n")


def test_sample_from_the_prior_and_given_a_modality(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--method", "mmvae", "--num-particles", "2", "--size", "40", "--batch-size", "40",
                 "--out", str(out)] + TINY) == 0
    assert main(["sample", "--run", str(out), "--num", "3"]) == 0
    assert "drawing 3 samples" in capsys.readouterr().out
    prior = torch.load(out / "samples.pt")
    assert prior["mnist"].shape == (3, 1, 28, 28) and prior["syndigits"].shape == (3, 3, 32, 32)
    assert (out / "samples.png").stat().st_size > 0
    given = tmp_path / "given"
    assert main(["sample", "--run", str(out), "--given", "syndigits", "--index", "4", "0", "--out", str(given)]) == 0
    assert "generating mnist from syndigits" in capsys.readouterr().out  # (on a fresh cache, a build's progress on stderr)
    samples = torch.load(given / "samples.pt")
    assert set(samples) == {"syndigits->mnist"} and samples["syndigits->mnist"].shape == (2, 1, 28, 28)
    assert (given / "samples.png").stat().st_size > 0
    for argv, message in ((["--given", "svhn"], "'svhn' is not a modality of this model"),
                          (["--index", "1"], "--index .* needs --given"),
                          (["--given", "mnist", "--index", "99999"], "--index 99999: .*size must be between"),
                          (["--given", "mnist", "--num", "100000"], "--num 100000: .*size must be between")):
        fails(["sample", "--run", str(out)] + argv, message, capsys)
    fails(["sample", "--run", str(tmp_path / "nothing")], "holds no trained run", capsys)


def test_data_prepare_reports_sizes_and_cache_files_and_preview_draws(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PYRO_MM_MNIST_DIR", str(data_dir() / "mnist"))  # no download in a fresh cache
    monkeypatch.setenv("PYRO_MM_DATA_DIR", str(tmp_path / "cache"))
    argv = ["data", "prepare", "--dataset", "mnist-syndigits", "--size", "30", "--split", "test"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "150 samples; mnist 1x28x28, syndigits 3x32x32" in out
    assert f"cache directory {tmp_path / 'cache'}" in out and "wrote " + str(tmp_path / "cache") in out
    assert main(argv) == 0
    assert "nothing to build" in capsys.readouterr().out
    fails(["data", "prepare", "--dataset", "mnist-syndigits", "--size", "20000", "--split", "test"],
          "--size: .*size must be between 1 and 10000", capsys)
    assert main(["data", "preview", "--dataset", "captioned-digits", "--size", "20", "--out",
                 str(tmp_path / "p.png")]) == 0
    assert (tmp_path / "p.png").stat().st_size > 0


def test_the_committed_cli_reference_is_what_the_parser_says():
    from pyro_mm.cli.reference import markdown_reference

    committed = (Path(__file__).resolve().parents[1] / "docs" / "cli.md").read_text()
    assert committed == markdown_reference(), "docs/cli.md is out of date; run python scripts/generate_docs.py"


@pytest.mark.parametrize("method", ["meme", "mmvae"])
def test_mnist_label_is_prepared_and_trained_with_some_or_all_labels(method, tmp_path, monkeypatch, capsys):
    """The image + digit-label set from `pyro-mm data` and `pyro-mm train`: exactly --paired N
    labelled samples (scheme s by default: every image seen), or every label (--scheme paired);
    a wrong number of labels, and evaluation of a label, end in one line."""
    monkeypatch.setenv("PYRO_MM_MNIST_DIR", str(data_dir() / "mnist"))  # no download in a fresh cache
    monkeypatch.setenv("PYRO_MM_DATA_DIR", str(tmp_path / "cache"))
    assert main(["data", "prepare", "--dataset", "mnist-label", "--size", "30", "--split", "test",
                 "--no-progress"]) == 0
    assert "30 samples; image 1x28x28, label 10 classes" in capsys.readouterr().out
    tiny = ["train", "--method", method, "--dataset", "mnist-label", "--size", "60", "--steps", "3",
            "--batch-size", "20", "--z-dim", "4", "--encoder", "mlp", "--num-particles", "2", "--no-progress"]
    tiny += ["--num-pseudo-samples", "8"] if method == "meme" else []
    some, everything = tmp_path / "some", tmp_path / "all"
    fit, seen = api.MultimodalVAE.fit, []

    def spy(self, data, *args, **kwargs):
        seen.append(data)
        return fit(self, data, *args, **kwargs)

    monkeypatch.setattr(api.MultimodalVAE, "fit", spy)
    assert main(tiny + ["--paired", "10", "--observation-seed", "3", "--likelihood-scale", "label=5",
                        "--out", str(some)]) == 0
    assert f"training {method} on mnist-label (60 samples, scheme s, 10 paired)" in capsys.readouterr().out
    record = json.loads((some / "history.json").read_text())
    assert record["config"]["paired"] == 10 and len(record["step_loss"]) == 3
    vae = api.load_model(some / "model.pt")
    assert vae.names == ("image", "label") and vae.modalities[1].likelihood_scale == 5.0
    masks = seen[-1].masks  # every image, 10 labels: one of each digit
    assert masks[:, 0].all() and int(masks[:, 1].sum()) == 10
    assert seen[-1].labels[masks[:, 1]].bincount(minlength=10).tolist() == [1] * 10
    assert main(tiny + ["--scheme", "paired", "--out", str(everything)]) == 0
    assert "scheme paired, f=0.5" in capsys.readouterr().out and seen[-1].masks.all()
    fails(tiny + ["--paired", "100", "--out", str(tmp_path / "r")], "--paired 100: .*100 paired samples asked of a "
          "data set of 60 samples", capsys)
    fails(tiny + ["--paired", "5", "--scheme", "random", "--out", str(tmp_path / "r")],
          "--scheme random with --paired: .* not for 'random'", capsys)
    fails(["evaluate", "--run", str(some), "--samples", "20", "--particles", "30", "--no-progress"],
          "mnist-label has the label modality 'label', which the judging classifiers .* do not read yet", capsys)

