"""Training checkpoints: exact resume, Ctrl-C, corrupt and incompatible files left untouched."""

import pytest
import torch
from mm_helpers import small_batch, small_modalities

from pyro_mm.api import MEME, MMVAE, MVAE

CASES = [(MEME, {"num_particles": 3, "num_pseudo_samples": 8}), (MMVAE, {"num_particles": 3})]


def make(cls, options):
    torch.manual_seed(0)
    return cls(small_modalities(2), 3, **options)


def data():
    return small_batch(small_modalities(2), batch_size=80, missing=0.3, seed=4)


def train(vae, losses, **kwargs):
    torch.manual_seed(1)
    return vae.fit(data(), epochs=3, batch_size=16, lr=3e-3, progress=False,
                   callback=lambda step, loss: losses.append(loss), **kwargs)


class Interrupt:
    """A callback that records losses and presses Ctrl-C after ``after`` steps."""

    def __init__(self, after):
        self.after, self.losses = after, []

    def __call__(self, step, loss):
        self.losses.append(loss)
        if len(self.losses) == self.after:
            raise KeyboardInterrupt


@pytest.mark.parametrize("cls,options", CASES, ids=[c.__name__ for c, _ in CASES])
def test_interrupted_and_resumed_run_equals_an_uninterrupted_one(cls, options, tmp_path):
    straight = []
    reference = make(cls, options)
    history = train(reference, straight)
    path = tmp_path / "ckpt.pt"
    first = make(cls, options)
    interrupt = Interrupt(after=8)  # mid-epoch 2 (5 batches per epoch); last checkpoint at step 6
    with pytest.raises(KeyboardInterrupt):
        torch.manual_seed(1)
        first.fit(data(), epochs=3, batch_size=16, lr=3e-3, progress=False, callback=interrupt,
                  checkpoint=path, checkpoint_every=3)
    resumed_losses = []
    resumed = make(cls, options)
    torch.manual_seed(123)  # the checkpoint's random state must win over the current one
    resumed_history = resumed.fit(data(), epochs=3, batch_size=16, lr=3e-3, progress=False,
                                  callback=lambda step, loss: resumed_losses.append(loss), checkpoint=path,
                                  resume=True)
    assert interrupt.losses[:6] + resumed_losses == straight
    assert resumed_history == history
    for (name, a), b in zip(reference.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name


def test_time_budget_stop_resumes_mid_epoch(tmp_path):
    straight = []
    train(make(MVAE, {}), straight)
    path = tmp_path / "ckpt.pt"
    part = []
    vae = make(MVAE, {})
    torch.manual_seed(1)
    vae.fit(data(), epochs=3, batch_size=16, lr=3e-3, progress=False, time_budget=1e-9,
            callback=lambda step, loss: part.append(loss), checkpoint=path)
    assert len(part) == 1  # stopped after the first step, checkpoint written at the end
    rest = []
    make(MVAE, {}).fit(data(), epochs=3, batch_size=16, lr=3e-3, progress=False,
                       callback=lambda step, loss: rest.append(loss), checkpoint=path, resume=True)
    assert part + rest == straight


def test_corrupt_and_incompatible_checkpoints_are_named_and_left_untouched(tmp_path):
    path = tmp_path / "ckpt.pt"
    train(make(MVAE, {}), [], checkpoint=path)
    good = path.read_bytes()
    path.write_bytes(good[: len(good) // 3])
    broken = path.read_bytes()
    with pytest.raises(ValueError, match="corrupt"):
        train(make(MVAE, {}), [], checkpoint=path, resume=True)
    assert path.read_bytes() == broken
    path.write_bytes(good)
    with pytest.raises(ValueError, match="incompatible.*class"):
        train(make(MMVAE, {"num_particles": 3}), [], checkpoint=path, resume=True)
    with pytest.raises(ValueError, match="incompatible.*z_dim"):
        torch.manual_seed(0)
        train(MVAE(small_modalities(2), 4), [], checkpoint=path, resume=True)
    with pytest.raises(ValueError, match="batch_size=16.*batch_size=8"):
        make(MVAE, {}).fit(data(), epochs=3, batch_size=8, progress=False, checkpoint=path, resume=True)
    with pytest.raises(ValueError, match="not a pyro_mm checkpoint"):
        make(MVAE, {}).save(tmp_path / "model.pt")
        train(make(MVAE, {}), [], checkpoint=tmp_path / "model.pt", resume=True)
    assert path.read_bytes() == good
    with pytest.raises(FileNotFoundError, match="no pyro_mm checkpoint"):
        train(make(MVAE, {}), [], checkpoint=tmp_path / "absent.pt", resume=True)
    with pytest.raises(ValueError, match="need a checkpoint path"):
        train(make(MVAE, {}), [], resume=True)
