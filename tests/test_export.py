"""ArviZ export: a DataTree of posterior draws and the training trace that reads back identically."""

import math

import numpy as np
import pytest
import torch
from mm_helpers import small_batch, small_modalities

from pyro_mm.api import MMVAE, MVAE
from pyro_mm.export import load_datatree, save_datatree

S = 400


@pytest.fixture(scope="module")
def trained():
    torch.manual_seed(0)
    mods = small_modalities(2)
    vae = MVAE(mods, 3)
    vae.fit(small_batch(mods, batch_size=64, missing=0.3, seed=1), epochs=2, batch_size=32, progress=False)
    return vae


@pytest.mark.parametrize("missing", [0.0, 0.4], ids=["complete", "incomplete"])
def test_round_trip_is_identical(trained, missing, tmp_path):
    batch = small_batch(trained.modalities, batch_size=7, missing=missing, seed=3)
    tree = trained.to_arviz(batch, num_samples=S, step_losses=[3.0, 2.0, 1.5], seed=0)
    assert tree["posterior"]["z"].shape == (1, S, 7, 3)
    assert tree["training"]["loss"].values.tolist() == trained.history
    assert tree["constant_data"]["observed"].values.tolist() == batch.mask.tolist()
    for i, name in enumerate(trained.names):
        expert = tree["posterior"][f"z_{name}"].values
        assert np.isnan(expert[0, :, ~batch.mask[:, i].numpy()]).all()
        assert np.isfinite(expert[0, :, batch.mask[:, i].numpy()]).all()
    path = save_datatree(tree, tmp_path / "posterior.nc")
    back = load_datatree(path)
    assert back.identical(tree)


def test_draws_follow_the_guide_posterior(trained):
    batch = small_batch(trained.modalities, batch_size=6, missing=0.3, seed=5)
    tree = trained.to_arviz(batch, num_samples=S, seed=1)
    posterior = trained.guide.posterior(batch)
    draws = torch.as_tensor(tree["posterior"]["z"].values[0])
    se = posterior.stddev / math.sqrt(S)
    assert ((draws.mean(0) - posterior.mean).abs() < 5 * se).all()
    assert torch.allclose(draws.std(0), posterior.stddev, rtol=0.25)


def test_mixture_guides_export_too(tmp_path):
    mods = small_modalities(2)
    vae = MMVAE(mods, 3, num_particles=2)
    tree = vae.to_arviz(small_batch(mods, batch_size=4, missing=0.3, seed=2), num_samples=5)
    assert np.isfinite(tree["posterior"]["z"].values).all()
    assert load_datatree(save_datatree(tree, tmp_path / "t.nc")).identical(tree)


def test_bad_input_is_named(trained, tmp_path):
    batch = small_batch(trained.modalities, batch_size=3, seed=0)
    with pytest.raises(ValueError, match="num_samples"):
        trained.to_arviz(batch, num_samples=0)
    with pytest.raises(KeyError, match="m2"):
        trained.to_arviz(small_batch(small_modalities(3), batch_size=3), num_samples=2)
    with pytest.raises(TypeError, match="MultimodalBatch"):
        trained.to_arviz({"m0": torch.zeros(3, 4)}, num_samples=2)
    with pytest.raises(FileNotFoundError, match="no pyro_mm ArviZ file"):
        load_datatree(tmp_path / "absent.nc")
    bad = tmp_path / "bad.nc"
    bad.write_bytes(b"not a netcdf file")
    with pytest.raises(ValueError, match="corrupt"):
        load_datatree(bad)
    assert bad.read_bytes() == b"not a netcdf file"
