"""Training checkpoints: exact resume for every registered method, Ctrl-C, corrupt and
incompatible files left untouched."""

import pytest
import torch
from mm_helpers import make_vae, quick_options, small_batch, small_modalities

from pyro_mm.api import MEME, METHODS, MMVAE, MVAE
from pyro_mm.checkpoint import TRAINING_FORMAT, VERSIONS, atomic_save, read_payload
from pyro_mm.training import adam

#: every registered method, MVAE with KL annealing (its schedule is training state)
CASES = [(cls, quick_options(cls, 2)) for cls in METHODS.values()] + [(MVAE, {"annealing_steps": 12})]
IDS = list(METHODS) + ["mvae-annealing"]
RUN = dict(batch_size=16, lr=3e-3, progress=False)  # 80 samples: 5 steps per epoch


def make(cls=MVAE, options=None, z_dim=3):
    torch.manual_seed(0)
    return make_vae(cls, 2, z_dim, **(options or {}))


def data(seed=4):
    return small_batch(small_modalities(2), batch_size=80, missing=0.3, seed=seed)


def train(vae, losses, epochs=3, **kwargs):
    torch.manual_seed(1)
    return vae.fit(data(), epochs=epochs, callback=lambda record: losses.append(record.loss), **RUN, **kwargs)


def resume(vae, path, losses, epochs=3, **kwargs):
    torch.manual_seed(123)  # the checkpoint's random state must win over the current one
    return vae.fit(data(), epochs=epochs, callback=lambda record: losses.append(record.loss),
                   checkpoint=path, resume=True, **{**RUN, **kwargs})


def inner_payload(path):
    """The payload of a pyro_mm file, whatever its format version."""
    import io

    from pyro_mm.checkpoint import verified_content

    return torch.load(io.BytesIO(verified_content(path)), weights_only=False)


def assert_same_parameters(a, b):
    mine, theirs = a.state_dict(), b.state_dict()
    assert mine.keys() == theirs.keys()
    for name, value in mine.items():
        assert torch.equal(value, theirs[name]) if torch.is_tensor(value) else value == theirs[name], name


class Interrupt:
    """A callback that records losses and presses Ctrl-C after ``after`` steps."""

    def __init__(self, after):
        self.after, self.losses = after, []

    def __call__(self, record):
        self.losses.append(record.loss)
        if len(self.losses) == self.after:
            raise KeyboardInterrupt


@pytest.fixture(params=CASES, ids=IDS)
def uninterrupted(request):
    """(class, options, model, per-step losses, epoch history) of a straight 3-epoch run."""
    cls, options = request.param
    losses = []
    vae = make(cls, options)
    history = train(vae, losses)
    return cls, options, vae, losses, history


def test_ctrl_c_between_steps_writes_a_checkpoint_that_resumes_exactly(uninterrupted, tmp_path):
    """Every method: interrupted in its second epoch and resumed, it repeats the uninterrupted
    run's losses and parameters exactly — every piece of training state round-trips."""
    cls, options, reference, straight, history = uninterrupted
    path = tmp_path / "ckpt.pt"
    interrupt = Interrupt(after=8)  # in epoch 2; the periodic checkpoints are at steps 3 and 6
    first = make(cls, options)
    with pytest.raises(KeyboardInterrupt):
        torch.manual_seed(1)
        first.fit(data(), epochs=3, callback=interrupt, checkpoint=path, checkpoint_every=3, **RUN)
    saved = read_payload(path, TRAINING_FORMAT)
    assert len(saved["state_dict"]["_extra_state"]["step_losses"]) == 8
    rest = []
    resumed = make(cls, options)
    assert resume(resumed, path, rest) == history
    assert interrupt.losses + rest == straight  # exact float equality, step by step
    assert resumed.step_losses == straight
    assert_same_parameters(reference, resumed)
    if cls is MEME:  # the pseudo-samples are parameters, and not initialised again
        assert resumed.model.initialised and any("pseudo" in name for name in resumed.state_dict())
    if options.get("annealing_steps"):  # the KL weight continues where it was: 15 steps of 12
        assert resumed.elbo.step == reference.elbo.step == 15 and resumed.elbo.latent_weight() == 1.0


def test_ctrl_c_inside_a_step_keeps_the_last_periodic_checkpoint(uninterrupted, tmp_path, monkeypatch):
    cls, options, reference, straight, _ = uninterrupted
    path = tmp_path / "ckpt.pt"
    saved = {}
    adam_step, calls = torch.optim.Adam.step, []

    def step_then_interrupt(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 8:  # gradients computed, random numbers drawn, parameters not yet updated
            saved["bytes"] = path.read_bytes()
            raise KeyboardInterrupt
        return adam_step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", step_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        train(make(cls, options), [], checkpoint=path, checkpoint_every=3)
    monkeypatch.undo()
    assert path.read_bytes() == saved["bytes"]  # not rewritten in an inconsistent state
    assert sorted(p.name for p in tmp_path.iterdir()) == [".pyro_mm.lock", "ckpt.pt"]  # no temporary file left
    rest = []
    resumed = make(cls, options)
    resume(resumed, path, rest)
    assert straight[:6] + rest == straight
    assert_same_parameters(reference, resumed)


def test_time_budget_stop_resumes_mid_epoch_and_a_finished_run_continues_longer(tmp_path):
    straight = []
    reference = make()
    train(reference, straight)
    path = tmp_path / "ckpt.pt"
    part = []
    train(make(), part, time_budget=1e-9, checkpoint=path)
    assert len(part) == 1  # stopped after the first step, checkpoint written at the end
    rest = []
    torch.manual_seed(5)
    make().fit(data(), epochs=2, callback=lambda record: rest.append(record.loss), resume=path, **RUN)  # a path
    assert part + rest == straight[:10]
    more = []
    resumed = make()
    resume(resumed, path, more, epochs=3)  # the finished 2-epoch run continues for a third epoch
    assert part + rest + more == straight
    assert_same_parameters(reference, resumed)


def test_corrupt_and_incompatible_checkpoints_are_named_and_left_untouched(tmp_path):
    path = tmp_path / "ckpt.pt"
    train(make(), [], epochs=1, checkpoint=path)
    good = path.read_bytes()

    def saved():  # every file but the directory's lock, which each run takes
        return {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.name != ".pyro_mm.lock"}

    def refused(vae, message, **kwargs):
        before = saved()
        with pytest.raises(ValueError, match=message):
            resume(vae, path, [], **kwargs)
        assert saved() == before

    path.write_bytes(b"not a checkpoint at all" * 10)
    refused(make(), "corrupt or not a pyro_mm checkpoint")
    path.write_bytes(good[: len(good) // 3])
    refused(make(), "corrupt")
    path.write_bytes(good)
    atomic_save({**inner_payload(path), "version": 99}, path)
    refused(make(), f"checkpoint version 99, this pyro_mm reads version {VERSIONS[TRAINING_FORMAT]}")
    path.write_bytes(good[:-40] + bytes(40))  # the last bytes damaged
    refused(make(), "corrupt")
    make().save(path)
    refused(make(), "not a pyro_mm checkpoint .format 'pyro_mm-model'")
    path.write_bytes(good)
    refused(make(MMVAE, {"num_particles": 3}), "incompatible with this MMVAE: its class is 'MVAE'")
    refused(make(z_dim=4), "incompatible.*its z_dim is 3, this object's is 4")
    refused(make(MVAE, {"num_random_subsets": 1}), "incompatible.*its options")
    torch.manual_seed(0)
    refused(make_vae(MVAE, 3), "incompatible.*its modalities")
    refused(MEME(small_modalities(2), 3, num_pseudo_samples=8), "incompatible with this MEME")
    refused(make(), "batch_size=16, this run has batch_size=8", batch_size=8)
    with pytest.raises(ValueError, match="masks_sha1"):  # same size, another observation pattern
        make().fit(data(seed=5), **RUN, checkpoint=path, resume=True)
    assert path.read_bytes() == good
    with pytest.raises(FileNotFoundError, match="no pyro_mm checkpoint"):
        resume(make(), tmp_path / "absent.pt", [])
    with pytest.raises(ValueError, match="needs a checkpoint path"):
        train(make(), [], resume=True)


def test_a_checkpoint_written_before_an_option_existed_resumes_at_its_default(tmp_path):
    """A file whose options lack one (written by an older pyro_mm) counts it at the constructor's
    default: it resumes into an object with the default, and is refused by one without."""
    path = tmp_path / "ckpt.pt"
    options = {"num_particles": 3, "num_pseudo_samples": 8}
    train(make(MEME, options), [], epochs=1, checkpoint=path)
    payload = inner_payload(path)
    del payload["description"]["options"]["rao_blackwell"]
    atomic_save(payload, path)
    resume(make(MEME, options), path, [], epochs=2)
    atomic_save(payload, path)
    with pytest.raises(ValueError, match="incompatible.*its options"):
        resume(make(MEME, {**options, "rao_blackwell": True}), path, [], epochs=2)


def test_settings_given_by_the_caller_must_repeat(tmp_path):
    path = tmp_path / "ckpt.pt"
    train(make(), [], epochs=1, checkpoint=path, config={"dataset": "polymnist"})
    with pytest.raises(ValueError, match="dataset='polymnist', this run has dataset='mnist'"):
        resume(make(), path, [], config={"dataset": "mnist"})
    resume(make(), path, [], config={"dataset": "polymnist"})


@pytest.mark.parametrize("missing", [0.0, 0.3], ids=["complete", "incomplete"])
def test_a_nan_loss_stops_training_before_it_updates_anything(missing, tmp_path):
    """A step whose loss is NaN raises a clear error; no parameter moves and the checkpoint on
    disk stays the last good one."""
    vae = make(MVAE)
    path = tmp_path / "ckpt.pt"
    batch = small_batch(small_modalities(2), batch_size=80, missing=missing, seed=4)
    vae.fit(batch, epochs=1, checkpoint=path, **RUN)
    before = {k: v.clone() for k, v in vae.state_dict().items() if torch.is_tensor(v)}
    saved = path.read_bytes()
    name, poisoned = next((n, p) for n, p in vae.named_parameters() if "decoders.m0" in n)
    with torch.no_grad():
        poisoned[0].fill_(float("nan"))  # every sample's m0 likelihood is NaN
    with pytest.raises(FloatingPointError, match=r"loss is nan at step 6 .*updated no parameter"):
        vae.fit(batch, epochs=1, checkpoint=path, **RUN)
    for key, value in before.items():
        assert torch.equal(vae.state_dict()[key], value) or key == name, key
    assert path.read_bytes() == saved and len(vae.step_losses) == 5


def test_training_steps_with_fused_adam_where_the_device_has_it(tmp_path, monkeypatch):
    """fit's Adam is fused on a CPU (its state, saved in the checkpoint, says so) and falls back to
    the multi-tensor update where the fused kernel is refused."""
    path = tmp_path / "ckpt.pt"
    make().fit(data(), epochs=1, checkpoint=path, **RUN)
    assert read_payload(path, TRAINING_FORMAT)["optimizer"]["param_groups"][0]["fused"] is True

    torch_adam = torch.optim.Adam

    def no_fused_kernel(params, lr, fused=None):
        if fused:
            raise RuntimeError("`fused=True` requires all the params to be floating point Tensors of supported devices")
        return torch_adam(params, lr=lr)

    monkeypatch.setattr(torch.optim, "Adam", no_fused_kernel)
    optim = adam([torch.nn.Parameter(torch.zeros(3))], 1e-3)
    assert isinstance(optim, torch_adam) and not optim.defaults["fused"]


def test_a_file_of_the_older_layout_is_still_read_and_checked(tmp_path):
    """Files written before the header layout (an outer torch.save holding the digest and the
    payload) load as before, and a damaged payload in one is still refused."""
    import hashlib
    import io

    path = tmp_path / "model.pt"
    atomic_save({"format": TRAINING_FORMAT, "version": VERSIONS[TRAINING_FORMAT], "weights": torch.arange(3)}, path)
    content = path.read_bytes().split(b"\n", 1)[1]
    assert path.read_bytes().startswith(b"pyro_mm-file sha256 " + hashlib.sha256(content).hexdigest().encode())
    old = io.BytesIO()
    torch.save({"wrapper": "pyro_mm-file", "sha256": hashlib.sha256(content).hexdigest(), "content": content}, old)
    path.write_bytes(old.getvalue())
    assert torch.equal(read_payload(path, TRAINING_FORMAT)["weights"], torch.arange(3))
    damaged = io.BytesIO()
    torch.save({"wrapper": "pyro_mm-file", "sha256": hashlib.sha256(content).hexdigest(),
                "content": content[:-1] + bytes([content[-1] ^ 1])}, damaged)
    path.write_bytes(damaged.getvalue())
    with pytest.raises(ValueError, match="is corrupt: its content does not match its checksum"):
        read_payload(path, TRAINING_FORMAT)
