"""ArviZ export: a DataTree of posterior draws and the training trace that reads back identically."""

import math

import numpy as np
import pytest
import torch
import xarray as xr
from mm_helpers import make_vae, small_batch, small_modalities

from pyro_mm.api import METHODS, MMVAE, MVAE, UnimodalVAE
from pyro_mm.export import load_datatree, save_datatree, to_datatree

S = 400
CLASSES = list(METHODS.values())


@pytest.fixture(scope="module")
def trained():
    torch.manual_seed(0)
    mods = small_modalities(3)
    vae = MVAE(mods, 3)
    vae.fit(small_batch(mods, batch_size=64, missing=0.3, seed=1), epochs=2, batch_size=32, progress=False)
    return vae


@pytest.mark.parametrize("missing", [0.0, 0.4], ids=["complete", "incomplete"])
def test_shapes_and_round_trip(trained, missing, tmp_path):
    batch = small_batch(trained.modalities, batch_size=7, missing=missing, seed=3)
    tree = trained.to_arviz(batch, num_samples=S, step_losses=[3.0, 2.0, 1.5], seed=0)
    posterior = tree["posterior"]
    assert posterior["z"].dims == ("chain", "draw", "input", "latent_dim")
    assert posterior["z"].shape == (1, S, 7, 3)
    assert posterior["z_given"].dims == ("chain", "draw", "input", "modality", "latent_dim")
    assert posterior["z_given"].shape == (1, S, 7, 3, 3)
    assert posterior["modality"].values.tolist() == ["m0", "m1", "m2"]
    assert np.isfinite(posterior["z"].values).all()
    given = posterior["z_given"].values[0]
    observed = batch.mask.numpy()
    assert np.isnan(given[:, ~observed]).all() and np.isfinite(given[:, observed]).all()
    assert tree["constant_data"]["observed"].values.tolist() == batch.mask.tolist()
    assert tree["training"]["loss"].values.tolist() == trained.history
    assert tree["training"]["step_loss"].values.tolist() == [3.0, 2.0, 1.5]
    assert tree.attrs["pyro_mm_class"] == "MVAE" and tree.attrs["num_samples"] == S

    path = save_datatree(tree, tmp_path / "posterior.nc")
    assert not path.with_name(path.name + ".tmp").exists()
    back = load_datatree(path)
    assert back.identical(tree)  # values, dims, coords and attrs of every group
    for group in ("posterior", "constant_data", "training"):
        assert dict(back[group].sizes) == dict(tree[group].sizes)
        assert back[group].attrs == tree[group].attrs
        for name, var in tree[group].variables.items():
            assert back[group][name].dims == var.dims
            np.testing.assert_array_equal(back[group][name].values, var.values)


@pytest.mark.parametrize("cls", CLASSES, ids=[c.__name__ for c in CLASSES])
def test_draws_follow_the_guide_posteriors(cls):
    """Mean of the draws = the guide's posterior mean within Monte-Carlo error, for the joint
    q(z | x_o) and for q(z | x_m), the guide given x_m alone (computed here independently)."""
    torch.manual_seed(0)
    multimodal = cls is not UnimodalVAE
    vae = make_vae(cls, 3 if multimodal else 1)
    mods = vae.modalities
    batch = small_batch(mods, batch_size=6, missing=0.4 if multimodal else 0.0, seed=5)
    num = 2000
    tree = to_datatree(vae, batch, num_samples=num, seed=1)

    def check(draws, posterior):
        se = draws.std(0) / math.sqrt(num)
        assert ((draws.mean(0) - posterior.mean).abs() < 5 * se).all()

    with torch.no_grad():
        check(torch.as_tensor(tree["posterior"]["z"].values[0]), vae.guide.posterior(batch))
        for i, name in enumerate(vae.names):
            rows = batch.observed(name)
            alone = torch.zeros(int(rows.sum()), len(mods), dtype=torch.bool)
            alone[:, i] = True
            draws = torch.as_tensor(tree["posterior"]["z_given"].values[0][:, rows.numpy(), i])
            check(draws, vae.guide.posterior(batch.select(rows).with_mask(alone)))


def test_mvae_single_modality_posterior_includes_the_prior_expert(trained):
    """For MVAE, q(z | x_m) = p(z) q̃(z | x_m): tighter than the bare expert."""
    batch = small_batch(trained.modalities, batch_size=5, seed=2)
    tree = trained.to_arviz(batch, num_samples=4000, seed=3)
    with torch.no_grad():
        _, scale, _ = trained.guide.experts(batch)
    expected = (1 + scale ** -2) ** -0.5  # [B, M, D]
    spread = torch.as_tensor(tree["posterior"]["z_given"].values[0]).std(0)
    assert torch.allclose(spread, expected, rtol=0.1)


def test_seed_reproduces_and_leaves_the_global_random_state_alone(trained):
    batch = small_batch(trained.modalities, batch_size=4, missing=0.3, seed=4)
    state = torch.get_rng_state()
    first = trained.to_arviz(batch, num_samples=5, seed=7)
    assert torch.equal(torch.get_rng_state(), state)
    second = trained.to_arviz(batch, num_samples=np.int64(5), seed=7)
    xr.testing.assert_equal(first["posterior"].to_dataset(), second["posterior"].to_dataset())  # attrs hold a timestamp


def test_mixture_guide_round_trip_without_training(tmp_path):
    mods = small_modalities(2)
    vae = MMVAE(mods, 3, num_particles=2)
    tree = vae.to_arviz(small_batch(mods, batch_size=4, missing=0.3, seed=2), num_samples=5)
    assert tree["training"]["loss"].size == 0
    assert load_datatree(save_datatree(tree, tmp_path / "sub" / "t.nc")).identical(tree)


def test_bad_input_is_named(trained, tmp_path):
    batch = small_batch(trained.modalities, batch_size=3, seed=0)
    for bad in (0, -2, 1.5, True, "10"):
        with pytest.raises(ValueError, match="num_samples"):
            trained.to_arviz(batch, num_samples=bad)
    with pytest.raises(KeyError, match="m3"):
        trained.to_arviz(small_batch(small_modalities(4), batch_size=3), num_samples=2)
    with pytest.raises(KeyError, match="lacks"):
        trained.to_arviz(small_batch(small_modalities(2), batch_size=3), num_samples=2)
    with pytest.raises(TypeError, match="MultimodalBatch"):
        trained.to_arviz({"m0": torch.zeros(3, 5)}, num_samples=2)
    with pytest.raises(IsADirectoryError):
        save_datatree(trained.to_arviz(batch, num_samples=2), tmp_path)


def test_bad_files_are_named_and_left_untouched(trained, tmp_path):
    with pytest.raises(FileNotFoundError, match="no pyro_mm ArviZ file"):
        load_datatree(tmp_path / "absent.nc")
    garbage = tmp_path / "garbage.nc"
    garbage.write_bytes(b"not a netcdf file")
    with pytest.raises(ValueError, match="corrupt"):
        load_datatree(garbage)
    assert garbage.read_bytes() == b"not a netcdf file"
    good = save_datatree(trained.to_arviz(small_batch(trained.modalities, batch_size=3), num_samples=3),
                         tmp_path / "good.nc")
    truncated = tmp_path / "truncated.nc"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(ValueError, match="corrupt"):
        load_datatree(truncated)
    foreign = tmp_path / "foreign.nc"
    xr.DataTree(xr.Dataset({"x": ("a", np.arange(3.0))})).to_netcdf(foreign, engine="h5netcdf")
    with pytest.raises(ValueError, match="not a pyro_mm export"):
        load_datatree(foreign)
