"""Every failure a user can cause ends in one clear line, and nothing saved is silently wrong.

One test per case of the reliability campaign (numbered as in its list): bad input and faults
thrown at the ``pyro-mm`` command (in process, and through a real subprocess where the exit
status and stderr matter) and at the user classes.
"""

import os
import random
import subprocess
import sys
import textwrap
import warnings

import pytest
import torch
from mm_helpers import make_vae, small_batch, small_modalities

from pyro_mm.api import MEME, METHODS, MMVAE, MVAE, UnimodalVAE, load_model
from pyro_mm.batch import MultimodalBatch
from pyro_mm.checkpoint import DirectoryLock
from pyro_mm.cli import main
from pyro_mm.data.base import MultimodalDataset
from pyro_mm.data.catalog import DATASETS
from pyro_mm.training import Objective, Trainer

TINY = ["--z-dim", "4", "--no-progress"]


def one_line(capsys, pattern, code, got):
    """``got`` is ``code`` and stderr one line matching ``pattern``, without a traceback."""
    import re

    err = capsys.readouterr().err
    assert got == code, err
    assert re.search(pattern, err) and err.startswith("pyro-mm: error: ") and err.count("\n") == 1, err
    return err


def command(*argv, env=None, timeout=300):
    """``pyro-mm ARGV`` in a subprocess: ``(exit status, stdout, stderr)``."""
    done = subprocess.run([sys.executable, "-m", "pyro_mm", *argv], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})
    return done.returncode, done.stdout, done.stderr


# 1. ---------------------------------------------------------------------------------------------------
def test_1_an_output_directory_that_cannot_be_written_is_refused_before_training(tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("keep")
    for out in (blocker / "run", "/proc/1/pyro_mm-run"):
        code, stdout, stderr = command("train", "--method", "mvae", "--size", "20", "--steps", "1", "--out", str(out),
                                       *TINY)
        assert code == 1 and stderr.startswith("pyro-mm: error: ") and "cannot be written" in stderr
        assert stderr.count("\n") == 1 and "Traceback" not in stderr
        assert "training mvae" not in stdout  # refused before any work
    assert blocker.read_text() == "keep"


# 2. ---------------------------------------------------------------------------------------------------
def test_2_the_unimodal_vae_trains_on_a_multimodal_data_set(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--method", "unimodal", "--size", "20", "--steps", "2", "--out", str(out)] + TINY) == 0
    vae = load_model(out / "model.pt")
    assert isinstance(vae, UnimodalVAE) and vae.names == ("mnist",)
    assert main(["train", "--method", "unimodal", "--modality", "syndigits", "--size", "20", "--steps", "2",
                 "--out", str(tmp_path / "other")] + TINY) == 0
    assert load_model(tmp_path / "other" / "model.pt").names == ("syndigits",)
    data = small_batch(small_modalities(2), batch_size=40, missing=0.4, seed=1)
    unimodal = make_vae(UnimodalVAE, 1)
    assert len(unimodal.fit(data, epochs=2, batch_size=16, progress=False)) == 2  # the batch's m0 samples
    assert unimodal.predict(data, ["m0"], ["m0"])["m0"].shape[0] == int(data.observed("m0").sum())


# 3. ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dataset", list(DATASETS))
def test_3_every_method_trains_on_every_data_set_or_is_refused_up_front(dataset, tmp_path, capsys):
    for method in METHODS:
        argv = ["train", "--method", method, "--dataset", dataset, "--size", "16", "--steps", "1", "--batch-size", "8",
                "--out", str(tmp_path / method)] + TINY
        for option, value in (("--num-particles", "2"), ("--num-pseudo-samples", "4")):
            if any(o.flag == option for o in METHODS[method].options):
                argv += [option, value]
        code = main(argv)
        if method == "meme" and dataset in ("polymnist", "translated-polymnist"):
            one_line(capsys, r"MEME is defined for two modalities, got 5; pass extension=True .*--extension", 1, code)
            assert not (tmp_path / method / "checkpoint.pt").exists()  # refused before any step
            assert main(argv + ["--extension"]) == 0
        else:
            assert code == 0, capsys.readouterr().err
    capsys.readouterr()
    scheme = main(["train", "--method", "mvae", "--dataset", "polymnist", "--scheme", "alternate", "--size", "16",
                   "--steps", "1", "--out", str(tmp_path / "scheme")] + TINY)
    one_line(capsys, r"observation scheme 'alternate' .* defined for two modalities, the data set has 5", 1, scheme)


# 4. ---------------------------------------------------------------------------------------------------
def test_4_meme_with_fewer_observed_samples_than_pseudo_samples_saves_a_model_that_loads(tmp_path):
    vae = make_vae(MEME, 2, num_pseudo_samples=128)
    data = small_batch(vae.modalities, batch_size=29, missing=0.3, seed=3)
    vae.fit(data, epochs=1, batch_size=16, progress=False, checkpoint=tmp_path / "ckpt.pt")
    assert vae.model.num_pseudo_samples == 128
    loaded = load_model(vae.save(tmp_path / "model.pt"))
    complete = data.with_mask(torch.ones_like(data.mask))
    assert loaded.predict(complete, ["m0"], ["m1"])["m1"].shape == (29, 6) and loaded.generate(3)["m0"].shape == (3, 5)
    resumed = make_vae(MEME, 2, num_pseudo_samples=128)
    resumed.fit(data, epochs=2, batch_size=16, progress=False, checkpoint=tmp_path / "ckpt.pt", resume=True)
    assert len(resumed.step_losses) == 4


# 5. ---------------------------------------------------------------------------------------------------
def test_5_a_flipped_byte_in_a_saved_file_is_refused_naming_the_file(tmp_path):
    vae = make_vae(MVAE, 2)
    vae.fit(small_batch(vae.modalities, batch_size=32), epochs=1, batch_size=16, progress=False,
            checkpoint=tmp_path / "checkpoint.pt")
    model = vae.save(tmp_path / "model.pt")
    rng = random.Random(0)
    for path, read in ((model, load_model),
                       (tmp_path / "checkpoint.pt", lambda p: make_vae(MVAE, 2).fit(
                           small_batch(vae.modalities, batch_size=32), epochs=1, batch_size=16, progress=False,
                           resume=p))):
        good = path.read_bytes()
        for _ in range(20):
            damaged = bytearray(good)
            damaged[rng.randrange(len(damaged))] ^= 0x40
            path.write_bytes(bytes(damaged))
            with pytest.raises(ValueError, match=f"{path}.*(corrupt|not a pyro_mm)"):
                read(path)
        path.write_bytes(good)


# 6. ---------------------------------------------------------------------------------------------------
def test_6_a_second_process_training_into_the_same_directory_is_refused(tmp_path, capsys):
    out = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import time
        from pyro_mm.checkpoint import DirectoryLock
        with DirectoryLock({str(out)!r}):
            print("locked", flush=True)
            time.sleep(60)
        """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        code = main(["train", "--method", "mvae", "--size", "20", "--steps", "1", "--out", str(out)] + TINY)
        one_line(capsys, rf"in use by another pyro-mm process \(pid {holder.pid} on .*since", 1, code)
        assert not (out / "model.pt").exists()
    finally:
        holder.kill()
        holder.wait()
    with DirectoryLock(out):  # released with its holder
        pass


# 7. (MVAE's annealing after a resume: tests/test_checkpoint.py, the "mvae-annealing" case) --------------

# 8. ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("bad,message", [
    (lambda x: torch.zeros(x.shape[0], 7), r"modality 'm0': expected a batch of shape \[batch, 5\], got \[12, 7\]"),
    (lambda x: x.round().to(torch.uint8), "integer data .torch.uint8.; .* / 255"),
    (lambda x: x.round().bool(), "bool data"),
    (lambda x: x.double(), "torch.float64 data for torch.float32 networks"),
])
def test_8_shapes_and_dtypes_are_named_before_any_network_runs(bad, message):
    vae = make_vae(MVAE, 2)
    batch = small_batch(vae.modalities, seed=1)
    wrong = MultimodalBatch({"m0": bad(batch["m0"]), "m1": batch["m1"]})
    with pytest.raises((ValueError, TypeError), match=message):
        vae.elbo.loss(vae.model, vae.guide, wrong)
    if "float64" in message:  # the user classes convert floating-point data to the networks' precision
        assert vae.fit(wrong, epochs=1, batch_size=16, progress=False)
    else:
        with pytest.raises((ValueError, TypeError), match=message):
            vae.fit(wrong, epochs=1, batch_size=16, progress=False)


def test_8_an_image_without_its_channel_dimension_is_named():
    from types import SimpleNamespace

    from pyro_mm.defaults import default_modalities

    data = SimpleNamespace(names=["mnist"], likelihoods={"mnist": "bernoulli"}, event_shapes={"mnist": (1, 28, 28)})
    vae = MVAE(default_modalities(data, 4), 4)
    with pytest.raises(ValueError, match=r"expected a batch of shape \[batch, 1, 28, 28\], got \[3, 28, 28\] "
                                         r"\(one dimension short"):
        vae.encode(MultimodalBatch({"mnist": torch.rand(3, 28, 28)}))


# 9. ---------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("reliability") / "run"
    assert main(["train", "--method", "mvae", "--size", "30", "--steps", "2", "--out", str(out)] + TINY) == 0
    return out


def test_9_damaged_run_files_end_in_one_line(trained_run, tmp_path, capsys):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    model = (run / "model.pt").read_bytes()
    (run / "model.pt").write_bytes(model[:100])
    for argv in (["evaluate", "--run", str(run)], ["sample", "--run", str(run)]):
        one_line(capsys, "model.pt is corrupt", 1, main(argv))
    (run / "model.pt").write_bytes(model)
    for content, pattern in (("{not json", "history.json is corrupt"), ("{}", "not a pyro-mm training record")):
        (run / "history.json").write_text(content)
        one_line(capsys, pattern, 1, main(["sample", "--run", str(run)]))


def test_9_a_diverging_learning_rate_ends_in_one_line_and_keeps_the_checkpoint(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["train", "--method", "mvae", "--size", "30", "--steps", "50", "--lr", "1e6", "--checkpoint-every",
                 "1", "--out", str(out)] + TINY)
    one_line(capsys, r"the loss is (nan|inf) at step \d+ .* updated no parameter", 1, code)
    assert (out / "checkpoint.pt").is_file()
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--lr", "inf", "--out", str(out)])
    assert exit_info.value.code == 2


def test_9_evaluation_options_are_checked_before_any_work(trained_run, capsys, monkeypatch):
    import pyro_mm.metrics as metrics

    monkeypatch.setattr(metrics, "classifiers_for", lambda *a, **k: pytest.fail("classifiers trained"))
    one_line(capsys, "--particles 1: .*at least 25", 1, main(["evaluate", "--run", str(trained_run), "--particles", "1"]))
    one_line(capsys, "--samples 1: .*at least 2", 1, main(["evaluate", "--run", str(trained_run), "--samples", "1"]))


def test_9_seeds_beyond_64_bits_are_usage_errors(capsys):
    for argv in (["train", "--seed", str(2 ** 64)], ["sample", "--seed", "-1"]):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2 and "2^63" in capsys.readouterr().err


def test_9_a_broken_data_cache_is_named(tmp_path, monkeypatch, capsys):
    from pyro_mm.data.cache import data_dir

    monkeypatch.setenv("PYRO_MM_MNIST_DIR", str(data_dir() / "mnist"))
    blocker = tmp_path / "a-file"
    blocker.write_text("keep")
    monkeypatch.setenv("PYRO_MM_DATA_DIR", str(blocker))
    one_line(capsys, "the data cache .*a-file .*PYRO_MM_DATA_DIR.* is a file", 1,
             main(["data", "prepare", "--split", "test", "--size", "10"]))
    monkeypatch.setenv("PYRO_MM_DATA_DIR", "/proc/1/pyro_mm-cache")
    one_line(capsys, "cannot be created", 1, main(["data", "prepare", "--split", "test", "--size", "10"]))
    cache = tmp_path / "cache"
    monkeypatch.setenv("PYRO_MM_DATA_DIR", str(cache))
    assert main(["data", "prepare", "--split", "test", "--size", "10", "--no-progress"]) == 0
    capsys.readouterr()
    built = next(p for p in cache.glob("mnist_syndigits-test-*.npz"))
    built.unlink()
    built.mkdir()
    one_line(capsys, "is a directory; remove it", 1, main(["data", "prepare", "--split", "test", "--size", "10",
                                                           "--no-progress"]))


@pytest.mark.parametrize("out,pattern", [("DIR", "is a directory; name the PNG file"), ("x.txt", "ending in .png"),
                                         ("/proc/1/x/p.png", "cannot be written")])
def test_9_preview_outputs_are_checked(out, pattern, tmp_path, capsys):
    target = {"DIR": str(tmp_path), "x.txt": str(tmp_path / "x.txt")}.get(out, out)
    one_line(capsys, pattern, 1, main(["data", "preview", "--size", "5", "--out", target]))
    assert not (tmp_path.parent / (tmp_path.name + ".png")).exists()


@pytest.mark.parametrize("kwargs,message", [
    ({"batch_size": 0}, "batch_size must be a positive integer"), ({"batch_size": -5}, "batch_size"),
    ({"epochs": 2.5}, "epochs must be a positive integer"), ({"time_budget": float("nan")}, "time_budget"),
    ({"steps": 0}, "steps must be a positive integer"),
])
def test_9_bad_training_arguments_are_named(kwargs, message):
    vae = make_vae(MVAE, 2)
    with pytest.raises(ValueError, match=message):
        vae.fit(small_batch(vae.modalities), progress=False, **kwargs)
    assert vae.step_losses == []


def test_9_empty_data_and_bad_queries_are_named():
    vae = make_vae(MVAE, 2)
    with pytest.raises(ValueError, match="hold no sample"):
        vae.fit([], progress=False)
    empty = small_batch(vae.modalities).select(torch.zeros(12, dtype=torch.bool))
    with pytest.raises(ValueError, match="hold no sample"):
        vae.fit(empty, progress=False)
    with pytest.raises(ValueError, match="positive integer, got 0"):
        vae.generate(0)
    with pytest.raises(KeyError, match=r"unknown modalities \['nope'\]"):
        vae.predict(small_batch(vae.modalities), ["m0"], ["nope"])
    with pytest.raises(ValueError, match="z must be one of"):
        vae.predict(small_batch(vae.modalities), ["m0"], ["m1"], z="median")


# 10. --------------------------------------------------------------------------------------------------
class _Exploding(Objective):
    """An objective whose loss grows tenfold every step (a diverging training, never NaN)."""

    def __init__(self):
        super().__init__(None, None, None)
        self.w = torch.nn.Parameter(torch.ones(()))
        self.calls = 0

    def forward(self, batch):
        self.calls += 1
        return self.w * 0 + 10.0 ** min(self.calls, 30) * len(batch)

    def get_extra_state(self):
        return {"history": self.history, "step_losses": self.step_losses}


def test_10_a_loss_growing_by_orders_of_magnitude_is_warned_about():
    data = small_batch(small_modalities(2), batch_size=64)
    with pytest.warns(RuntimeWarning, match="training is diverging; lower the learning rate"):
        Trainer(epochs=None, steps=30, batch_size=2, progress=False).fit(_Exploding(), data)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        make_vae(MVAE, 2).fit(data, epochs=3, batch_size=16, progress=False)  # a healthy run says nothing


# 11. --------------------------------------------------------------------------------------------------
def test_11_temporary_files_of_a_killed_write_are_removed_at_the_next_start(tmp_path):
    stale = [tmp_path / "checkpoint.ptx1y2.tmp", tmp_path / "checkpoint.ptabc.tmp"]
    for p in stale:
        p.write_bytes(b"0" * 1000)
    keep = tmp_path / "notes.tmp"
    keep.write_text("mine")
    vae = make_vae(MVAE, 2)
    vae.fit(small_batch(vae.modalities), epochs=1, batch_size=16, progress=False, checkpoint=tmp_path / "checkpoint.pt")
    assert not any(p.exists() for p in stale) and keep.read_text() == "mine"


# 12. --------------------------------------------------------------------------------------------------
def test_12_a_data_set_checks_its_images_dtype_and_range():
    labels = torch.zeros(4, dtype=torch.long)
    as_bytes = torch.full((4, 3), 255, dtype=torch.uint8)
    as_floats = torch.full((4, 3), 0.5)
    as_bools = torch.ones(4, 3, dtype=torch.bool)
    for store, value in ((as_bytes, 1.0), (as_floats, 0.5), (as_bools, 1.0)):
        data = MultimodalDataset({"x": store}, {"x": "bernoulli"}, labels)
        assert data.batch(torch.arange(4))["x"].max().item() == value  # floats are not divided by 255
    with pytest.raises(ValueError, match=r"floating-point images must lie in \[0, 1\], got values in \[255, 255\]"):
        MultimodalDataset({"x": as_bytes.float()}, {"x": "bernoulli"}, labels)
    with pytest.raises(TypeError, match="images must be uint8"):
        MultimodalDataset({"x": as_bytes.to(torch.int16)}, {"x": "bernoulli"}, labels)


# 13. --------------------------------------------------------------------------------------------------
def test_13_an_encoder_returning_a_log_variance_is_named():
    vae = make_vae(MVAE, 2)

    class LogVariance(torch.nn.Module):
        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, x):
            loc, scale = self.net(x)
            return loc, scale.log() - 3.0  # many entries negative

    vae.guide.encoders["m0"] = LogVariance(vae.guide.encoders["m0"])
    with pytest.raises(ValueError, match="encoder of modality 'm0' returned a scale with entries <= 0.*log-variance"):
        vae.fit(small_batch(vae.modalities), epochs=1, batch_size=16, progress=False)


# 14. (a batch of bool tensors: case 8) ------------------------------------------------------------------

# 15. --------------------------------------------------------------------------------------------------
def test_15_meme_generates_from_its_learned_pseudo_sample_priors(monkeypatch):
    vae = make_vae(MEME, 2)
    centre = torch.full((8, 3), 5.0)
    monkeypatch.setattr(type(vae.model), "pseudo_experts", lambda self, name: (centre, torch.full((8, 3), 0.01)))
    z = vae.generate(50)["z"]
    assert torch.allclose(z, torch.full_like(z, 5.0), atol=0.1)  # not N(0, I)
    mmvae = make_vae(MMVAE, 2)
    assert mmvae.generate(2000)["z"].std().item() == pytest.approx(1.0, abs=0.1)


# 16. --------------------------------------------------------------------------------------------------
def test_16_predict_names_how_z_and_the_likelihood_are_read():
    vae = make_vae(MVAE, 2)
    batch = small_batch(vae.modalities, seed=2)
    at_mean = [vae.predict(batch, ["m1"], ["m0"], z="mean")["m0"] for _ in range(2)]
    assert torch.equal(*at_mean)  # no draw: the same every time
    drawn = vae.predict(batch, ["m1"], ["m0"], z="sample", likelihood="sample")["m0"]
    assert set(drawn.unique().tolist()) <= {0.0, 1.0}  # Bernoulli draws, not probabilities


# 17. --------------------------------------------------------------------------------------------------
def test_17_callbacks_get_the_epoch_and_the_elapsed_time():
    vae = make_vae(MVAE, 2)
    records = []
    vae.fit(small_batch(vae.modalities, batch_size=40), epochs=2, batch_size=16, progress=False,
            callback=records.append)
    assert [r.epoch for r in records] == [1, 1, 1, 2, 2, 2] and [r.batch for r in records] == [1, 2, 3] * 2
    assert [r.step for r in records] == list(range(1, 7))
    assert all(b.seconds >= a.seconds >= 0 for a, b in zip(records, records[1:]))


def test_the_command_prints_one_line_and_a_traceback_only_with_debug(tmp_path):
    code, _, stderr = command("sample", "--run", str(tmp_path / "nothing"))
    assert code == 1 and stderr.count("\n") == 1 and "holds no trained run" in stderr
    code, _, stderr = command("--debug", "sample", "--run", str(tmp_path / "nothing"))
    assert code == 1 and "Traceback" in stderr
