"""User classes (every registered method and its variants): fit on complete and incomplete
data, queries, save/load, options checked against the registry's declaration."""

import inspect
from types import SimpleNamespace

import numpy as np
import pyro
import pytest
import torch
from mm_helpers import VARIANTS, make_vae, small_batch

from pyro_mm.api import MEME, METHODS, MMVAE, MVAE, UnimodalVAE, default_modalities, load_model
from pyro_mm.nets import ConvDecoder, ConvEncoder, MLPDecoder, MLPEncoder

CLASSES = [(cls, {}) for cls in METHODS.values()] + [(METHODS[name], options) for _, name, options in VARIANTS]
IDS = list(METHODS) + [id for id, _, _ in VARIANTS]


@pytest.mark.parametrize("missing", [0.0, 0.3], ids=["complete", "incomplete"])
@pytest.mark.parametrize("cls,options", CLASSES, ids=IDS)
def test_fit_queries_and_save_load(cls, options, missing, tmp_path):
    vae = make_vae(cls, 2, **options)
    mods = vae.modalities if cls is not UnimodalVAE else make_vae(MVAE, 2).modalities
    data = small_batch(mods, batch_size=96, missing=missing, seed=2)  # the unimodal VAE reads its modality of it
    history = vae.fit(data, epochs=15, batch_size=32, lr=3e-3, progress=False)
    assert len(history) == 15 and history[-1] < history[0]
    test = small_batch(mods, batch_size=5, seed=9)
    if cls is UnimodalVAE:
        assert vae.predict(test, ["m0"], ["m0"])["m0"].shape == (5, 5)
    else:
        out = vae.predict(test, ["m0"], ["m1"])
        assert out["m1"].shape == (5, 6)
        assert vae.predict(test, ["m0"], ["m1"], z="mean", likelihood="sample")["m1"].shape == (5, 6)
    assert vae.encode(test)["joint"].shape == (5, 3)
    samples = vae.generate(4)
    assert samples["m0"].shape == (4, 5) and samples["z"].shape == (4, 3)
    path = vae.save(tmp_path / "model.pt")
    loaded = cls.load(path)
    assert type(load_model(path)) is cls and loaded.option_values == vae.option_values
    assert loaded.step_losses == vae.step_losses and loaded.history == vae.history
    given = ["m0"]
    target = "m0" if cls is UnimodalVAE else "m1"
    pyro.set_rng_seed(1)
    a = vae.predict(test, given, [target])[target]
    pyro.set_rng_seed(1)
    b = loaded.predict(test, given, [target])[target]
    assert torch.equal(a, b)


@pytest.mark.parametrize("missing", [0.0, 0.4], ids=["complete", "incomplete"])
@pytest.mark.parametrize("cls,options", CLASSES[1:], ids=IDS[1:])
def test_encode_gives_the_posterior_given_each_modality_alone(cls, options, missing):
    """encode()[m] is q(z | x_m) — one sample at a time through the guide, NaN where x_m is
    missing; for MVAE the expert times the prior expert (closed form), for MMVAE the expert."""
    vae = make_vae(cls, 3, 4, **options)
    mods = vae.modalities
    batch = small_batch(mods, batch_size=10, missing=missing, seed=4)
    codes = vae.encode(batch)
    assert torch.allclose(codes["joint"], vae.guide.posterior(batch).mean)
    loc, scale, _ = vae.guide.experts(batch)
    for i, name in enumerate(vae.names):
        for b in range(len(batch)):
            if not batch.mask[b, i]:
                assert torch.isnan(codes[name][b]).all()
                continue
            only = torch.zeros(1, 3, dtype=torch.bool)
            only[0, i] = True
            alone = vae.guide.posterior(batch.select(torch.tensor([b])).with_mask(only)).mean[0]
            assert torch.allclose(codes[name][b], alone, atol=1e-6)
            if cls is MVAE:  # N(0, I) × N(loc, scale²): precision 1 + 1/scale²
                precision = 1 + scale[b, i] ** -2
                assert torch.allclose(alone, loc[b, i] * scale[b, i] ** -2 / precision, atol=1e-6)
            if cls is MMVAE:
                assert torch.allclose(alone, loc[b, i], atol=1e-6)
    if missing:
        assert torch.isnan(torch.cat([codes[n] for n in vae.names])).any()


def test_corrupt_missing_and_foreign_checkpoints_are_named(tmp_path):
    vae = make_vae(MVAE, 2)
    with pytest.raises(FileNotFoundError, match="no pyro_mm model file"):
        MVAE.load(tmp_path / "absent.pt")
    path = vae.save(tmp_path / "m.pt")
    good = path.read_bytes()
    path.write_bytes(good[: len(good) // 2])
    with pytest.raises(ValueError, match="corrupt"):
        MVAE.load(path)
    path.write_bytes(good)
    with pytest.raises(TypeError, match="holds a MVAE, not a MEME"):
        MEME.load(path)
    assert isinstance(MVAE.load(path), MVAE)


def test_bad_training_options():
    vae = make_vae(MVAE, 2)
    with pytest.raises(ValueError, match="time_budget"):
        vae.fit(small_batch(vae.model.modalities), time_budget=0)
    with pytest.raises(ValueError, match="epochs"):
        vae.fit(small_batch(vae.model.modalities), epochs=0)


@pytest.mark.parametrize("name", list(METHODS))
def test_every_method_declares_its_options_once_and_checks_them(name):
    """The registry's declaration is the class's signature and docstring; unknown options and
    bad values are named; one name, one class."""
    cls = METHODS[name]
    assert cls.method == name and cls.reference and cls.summary
    params = inspect.signature(cls).parameters
    assert list(params)[:2] == ["modalities", "z_dim"]
    assert {p: params[p].default for p in list(params)[2:]} == {o.name: o.default for o in cls.options}
    assert all(f":param {o.name}:" in cls.__doc__ for o in cls.options)
    with pytest.raises(TypeError, match=f"{cls.__name__} has no option \\['no_such_option'\\]"):
        make_vae(cls, 2, no_such_option=1)
    with pytest.raises(ValueError, match="option beta: must be a finite number >= 0.0, got -1"):
        make_vae(cls, 2, beta=-1)
    assert [c.__name__ for c in METHODS.values()].count(cls.__name__) == 1


def test_meme_beyond_two_modalities_needs_its_extension_up_front():
    with pytest.raises(ValueError, match="MEME is defined for two modalities, got 3; pass extension=True"):
        make_vae(MEME, 3, extension=False)
    assert make_vae(MEME, 3).elbo.extension


def test_default_networks_per_modality():
    data = SimpleNamespace(names=["grey", "colour", "label"], likelihoods={"grey": "bernoulli", "colour": "bernoulli",
                           "label": "bernoulli"}, event_shapes={"grey": (1, 28, 28), "colour": (3, 32, 32), "label": (10,)})
    kinds = lambda mods: [(type(m.encoder), type(m.decoder)) for m in mods]  # noqa: E731
    assert kinds(default_modalities(data, 4)) == [(ConvEncoder, MLPDecoder), (ConvEncoder, MLPDecoder),
                                                   (MLPEncoder, MLPDecoder)]
    mods = default_modalities(data, 4, decoder={"colour": "conv"}, encoder={"grey": "mlp"}, standardize_colour=True)
    assert kinds(mods) == [(MLPEncoder, MLPDecoder), (ConvEncoder, ConvDecoder), (MLPEncoder, MLPDecoder)]
    assert not mods[0].encoder.standardize and mods[1].encoder.standardize
    colour = default_modalities(data, 4, encoder="mlp", standardize_colour=True)[1].encoder
    x = torch.rand(5, 3, 32, 32)
    assert torch.allclose(colour(x)[0], colour(0.5 * x + 0.2)[0], atol=1e-4)  # colour and brightness removed
    with pytest.raises(ValueError, match=r"encoder kinds given for \['audio'\], which are not image modalities"):
        default_modalities(data, 4, encoder={"audio": "mlp"})
    with pytest.raises(ValueError, match="decoder must be 'conv' or 'mlp'"):
        default_modalities(data, 4, decoder="rnn")


def _image_and_label(n=64, missing=0.0, seed=0):
    """A user's data set of two modalities: binary 1x8x8 images whose mean row says the class,
    and the class as a categorical label; ``missing`` hides that fraction of the labels."""
    from pyro_mm.data import MultimodalDataset

    g = torch.Generator().manual_seed(seed)
    digits = torch.randint(0, 10, (n,), generator=g)
    images = (torch.rand(n, 1, 8, 8, generator=g) < 0.2).to(torch.uint8) * 255
    images[torch.arange(n), 0, digits % 8] = 255
    observed = torch.ones(n, 2, dtype=torch.bool)
    observed[torch.randperm(n, generator=g)[: round(missing * n)], 1] = False
    return MultimodalDataset({"image": images, "label": digits}, {"image": "bernoulli", "label": "categorical"},
                             digits, observation=observed, num_categories={"label": 10})


@pytest.mark.parametrize("missing", [0.0, 0.75], ids=["complete", "incomplete"])
@pytest.mark.parametrize("name", list(METHODS))
def test_for_dataset_gives_a_label_modality_its_networks_and_every_method_trains(name, missing):
    """A user's MultimodalDataset with a categorical label: for_dataset gives it a one-hot MLP
    encoder and an MLP decoder to 10 logits under Categorical(10); a few steps train with labels
    complete or mostly missing; the label is predicted from the image, as int64 classes."""
    from pyro_mm.likelihoods import Categorical
    from pyro_mm.nets import LabelEncoder

    data = _image_and_label(missing=missing)
    cls = METHODS[name]
    # quick options; the unimodal VAE is the label's
    quick = {"num_particles": 2, "num_pseudo_samples": 8, "private_dim": 2, "modality": "label"}
    options = {k: v for k, v in quick.items() if k in {o.name for o in cls.options}}
    vae = cls.for_dataset(data, z_dim=4, networks={"encoder": "mlp", "likelihood_scale": {"label": 5.0}}, **options)
    label = next(m for m in vae.modalities if m.name == "label")
    assert label.event_shape == () and isinstance(label.encoder, LabelEncoder)
    assert isinstance(label.likelihood, Categorical) and label.likelihood.num_categories == 10
    assert label.likelihood_scale == 5.0
    history = vae.fit(data, epochs=None, steps=4, batch_size=32, lr=3e-3, progress=False)
    assert len(vae.step_losses) == 4 and all(np.isfinite(vae.step_losses)) and history
    if cls is UnimodalVAE:
        assert vae.names == ("label",) and vae.generate(3)["label"].dtype == torch.long
        return
    guess = vae.predict(data.batch(torch.arange(6)), ["image"], ["label"])["label"]
    assert guess.shape == (6,) and guess.dtype == torch.long and 0 <= int(guess.min()) <= int(guess.max()) <= 9
    assert vae.generate(3)["label"].shape == (3,)


def test_a_label_batch_that_is_not_class_ids_is_named():
    """Float, one-hot and out-of-range labels in a batch stop before any network runs, naming the
    modality and the fix; a categorical data set that does not say its categories is named."""
    from pyro_mm.batch import MultimodalBatch

    data = _image_and_label()
    vae = MMVAE.for_dataset(data, z_dim=4, networks={"encoder": "mlp"}, num_particles=2)
    batch = data.batch(torch.arange(4))
    label = batch["label"]
    for bad, error, message in (
            (label.float(), TypeError, r"modality 'label': its Categorical likelihood reads int64 category ids .* "
                                       r"got torch.float32"),
            (label.int(), TypeError, r"modality 'label': .* got torch.int32 \(x.long\(\)\)"),
            (torch.nn.functional.one_hot(label, 10), ValueError,
             r"modality 'label': expected a batch of shape \[batch\], got \[4, 10\] \(one-hot .* x.argmax\(-1\)\)"),
            (torch.tensor([0, 10, 12, 3]), ValueError,
             r"modality 'label': category ids \(labels or tokens\) must lie in \[0, 10\), got values in \[10, 12\]")):
        with pytest.raises(error, match=message):
            vae.guide(MultimodalBatch({"image": batch["image"], "label": bad}))
    nameless = SimpleNamespace(names=["image", "label"], likelihoods={"image": "bernoulli", "label": "categorical"},
                               event_shapes={"image": (1, 8, 8), "label": ()})
    with pytest.raises(ValueError, match=r"modality 'label' is categorical, but the data set does not say how many "
                                         r"categories it has: .*num_categories=\{'label': K\}"):
        default_modalities(nameless, 4)
    with pytest.raises(ValueError, match=r"likelihood scales given for \['audio'\]"):
        default_modalities(data, 4, likelihood_scale={"audio": 2.0})
