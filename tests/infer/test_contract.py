"""The contract checks of every registered objective (pyro_mm.infer.contract): each violation of the
model/guide contract is one ContractError line saying what to fix, under plain pyro.infer.SVI,
with Pyro's validation on and off, on complete and incomplete data — and the checks run once per
model, guide and batch layout, not on every step."""

import copy

import pyro
import pyro.distributions as dist
import pytest
import torch
from mm_helpers import make_vae, small_batch, small_modalities
from pyro import poutine
from pyro.infer import SVI
from pyro.optim import Adam
from pyro.poutine.messenger import Messenger

from pyro_mm.batch import MultimodalBatch
from pyro_mm.guides import MixtureOfExpertsGuide
from pyro_mm.infer import ContractError, TraceMixture_ELBO
from pyro_mm.likelihoods import Categorical
from pyro_mm.registry import METHODS
from pyro_mm.modality import Modality, decode
from pyro_mm.nets import LabelEncoder, MLPDecoder, MLPEncoder

METHOD_NAMES = list(METHODS)
MULTIMODAL = [n for n in METHOD_NAMES if n != "unimodal"]  # a missing modality needs two of them
DATA = {"complete": 0.0, "incomplete": 0.35}


@pytest.fixture(params=[True, False], ids=["validation", "no-validation"])
def validation(request):
    pyro.enable_validation(request.param)
    yield request.param
    pyro.enable_validation(True)


def _vae(method, **options):
    return make_vae(METHODS[method], 2, **options)


def _batch(vae, missing, seed=0):
    return small_batch(vae.modalities, missing=missing, seed=seed)


def _steps(model, guide, elbo, batch, steps=2):
    svi = SVI(model, guide, Adam({"lr": 1e-3}), loss=elbo)
    for _ in range(steps):
        svi.step(batch)


def _one_line_error(model, guide, elbo, batch, *fragments) -> str:
    """The ContractError of a plain SVI step, one line holding every fragment."""
    with pytest.raises(ContractError) as info:
        _steps(model, guide, elbo, batch)
    message = str(info.value)
    assert "\n" not in message, message
    for fragment in fragments:
        assert fragment in message, message
    return message


class UserModel:
    """``model`` as a user may have written it: run under a handler that changes it, with its
    attributes (names, pseudo_experts, ...) — what the objectives read besides its sites."""

    def __init__(self, model, handler):
        self.__dict__.update(model=model, handler=handler)

    def __getattr__(self, name):
        return getattr(self.__dict__["model"], name)

    def __call__(self, *args, **kwargs):
        with self.handler:
            return self.model(*args, **kwargs)


class _ForgetMasks(Messenger):
    """As if the model sampled its modalities without ``poutine.mask``."""

    def _pyro_sample(self, msg):
        if msg["is_observed"]:
            msg["mask"] = None


class _Rename(Messenger):
    """As if the model named some sites differently."""

    def __init__(self, names):
        super().__init__()
        self.names = names

    def _pyro_sample(self, msg):
        msg["name"] = self.names.get(msg["name"], msg["name"])


# --- the violations -------------------------------------------------------------------------------
@pytest.mark.parametrize("method", MULTIMODAL)
def test_a_model_that_forgets_the_mask_is_named(method, validation):
    """Complete batches pass (nothing is missing, the mask changes nothing); the first batch that
    lacks a modality is checked again and names the site to mask."""
    vae = _vae(method)
    model = UserModel(vae.model, _ForgetMasks())
    _steps(model, vae.guide, vae.elbo, _batch(vae, 0.0))
    _one_line_error(model, vae.guide, vae.elbo, _batch(vae, 0.35), "is not masked where the batch says",
                    "poutine.mask(mask=batch.observed(")


@pytest.mark.parametrize("data", DATA)
@pytest.mark.parametrize("method", METHOD_NAMES)
def test_latent_sites_named_differently_in_model_and_guide_are_named(method, data, validation):
    vae = _vae(method)
    model = UserModel(vae.model, _Rename({"z": "u"}))
    _one_line_error(model, vae.guide, vae.elbo, _batch(vae, DATA[data]), "latent site 'u'", "'z'",
                    "same names in the model and the guide")


@pytest.mark.parametrize("data", DATA)
@pytest.mark.parametrize("method", METHOD_NAMES)
def test_an_encoder_returning_one_tensor_is_named_with_its_shape(method, data, validation):
    vae = _vae(method)
    encoder = vae.modalities[0].encoder
    pair = encoder.forward
    encoder.forward = lambda x: torch.cat(pair(x), -1)  # (loc, scale) concatenated: one tensor
    width = 2 * vae.model.prior().event_shape[0] if method != "mmvae+" else 2 * (3 + 2)
    _one_line_error(vae.model, vae.guide, vae.elbo, _batch(vae, DATA[data]), "encoder of modality 'm0'",
                    f"one tensor of shape [12, {width}]", "(loc, scale)")


@pytest.mark.parametrize("data", DATA)
@pytest.mark.parametrize("method", METHOD_NAMES)
def test_a_latent_size_that_disagrees_with_the_prior_is_named(method, data, validation):
    """Encoders and decoders one entry wider than the method's latent (its z_dim, or z_dim +
    private_dim): named before a decoder's matrix product fails."""
    cls, z_dim = METHODS[method], 3
    options = cls.resolve_options({"num_particles": 2, "private_dim": 2} if method == "mmvae+" else {})
    size = cls.latent_size(z_dim, **options)
    vae = cls(small_modalities(1 if method == "unimodal" else 2, size + 1), z_dim,
              **({"private_dim": 2} if method == "mmvae+" else {}))
    message = _one_line_error(vae.model, vae.guide, vae.elbo, _batch(vae, DATA[data]))
    assert f"[12, {size + 1}]" in message or f"[{size + 1}]" in message, message
    assert str(size) in message and ("prior" in message or "z_dim" in message), message


@pytest.mark.parametrize("data", DATA)
@pytest.mark.parametrize("method", METHOD_NAMES)
def test_a_decoder_that_cannot_read_the_latent_is_named(method, data, validation):
    cls, z_dim = METHODS[method], 3
    extra = {"private_dim": 2} if method == "mmvae+" else {}
    size = cls.latent_size(z_dim, **cls.resolve_options(extra))
    mods = [Modality(f"m{i}", (5,), MLPEncoder((5,), size, (8,)), MLPDecoder(size + 1, (5,), (8,)), "bernoulli")
            for i in range(1 if method == "unimodal" else 2)]
    vae = cls(mods, z_dim, **extra)
    _one_line_error(vae.model, vae.guide, vae.elbo, _batch(vae, DATA[data]), "decoder of modality 'm0'",
                    f"make its input size {size}")


class _Delegate(UserModel):
    """A user's own function with the attributes of ``model``."""

    def __init__(self, model, fn):
        self.__dict__.update(model=model, fn=fn)

    def __call__(self, *args, **kwargs):
        return self.fn(*args, **kwargs)


def _without_data_plate(model):
    """``model``'s sites, written without the data plate."""
    def user_model(batch):
        pyro.module("model", model)
        z = pyro.sample(model.latent, model.prior())
        for m in model.modalities:
            code = model.decoder_input(m, z)
            with poutine.mask(mask=batch.observed(m.name)):
                pyro.sample(m.name, model.likelihood(m.name, code), obs=batch[m.name])
    return _Delegate(model, user_model)


@pytest.mark.parametrize("data", DATA)
@pytest.mark.parametrize("method", METHOD_NAMES)
def test_a_model_without_the_data_plate_gets_our_message(method, data, validation):
    vae = _vae(method)
    _one_line_error(_without_data_plate(vae.model), vae.guide, vae.elbo, _batch(vae, DATA[data]),
                    "model site 'z' is not inside a plate over the data", 'pyro.plate("data"')


@pytest.mark.parametrize("data", DATA)
@pytest.mark.parametrize("method", METHOD_NAMES)
def test_a_modality_site_named_otherwise_is_named(method, data, validation):
    vae = _vae(method)
    model = UserModel(vae.model, _Rename({n: f"x_{n}" for n in vae.names}))
    _one_line_error(model, vae.guide, vae.elbo, _batch(vae, DATA[data]),
                    f"no observed site named after modality '{vae.names[0]}'", f"'x_{vae.names[0]}'")


@pytest.mark.parametrize("data", DATA)
def test_meme_names_the_site_it_cannot_find_even_unchecked(data, validation):
    """With the checks off, MEME's own look-up still names the modality (not a bare KeyError)."""
    vae = _vae("meme")
    vae.elbo.contract.enabled = False
    model = UserModel(vae.model, _Rename({"m0": "image"}))
    _one_line_error(model, vae.guide, vae.elbo, _batch(vae, DATA[data]), "TraceMEME_ELBO",
                    "no observed model site named after modality 'm0'", "'image'")


# --- once per model, guide and layout ------------------------------------------------------------------
class _Calls:
    def __init__(self, guide):
        self.guide, self.count = guide, 0

    def __call__(self, *args, **kwargs):
        self.count += 1
        return self.guide(*args, **kwargs)


@pytest.mark.parametrize("data", DATA)
@pytest.mark.parametrize("method", METHOD_NAMES)
def test_the_checks_run_on_the_first_step_only(method, data, validation):
    vae = _vae(method)
    guide = _Calls(vae.guide)
    svi = SVI(vae.model, guide, Adam({"lr": 1e-3}), loss=vae.elbo)
    batches = [_batch(vae, DATA[data], seed=s) for s in range(4)]
    counts = []
    for batch in batches:
        svi.step(batch)
        counts.append(guide.count)
    assert counts == [2, 3, 4, 5]  # the first step runs the guide once more: the check
    if data == "incomplete":  # another batch size is the same layout; a new model or copy checks again
        svi.step(small_batch(vae.modalities, batch_size=7, missing=0.35, seed=9))
        assert guide.count == 6
        copy.deepcopy(vae.elbo).loss(vae.model, guide, batches[0])
        assert guide.count == 8


def test_a_modality_seen_missing_later_is_checked_then():
    """Complete batches leave both modalities pending; a batch lacking m1 checks again (and m1 is
    then done); a later batch lacking m0 once more; after that no batch is checked."""
    vae = _vae("mmvae")
    guide = _Calls(vae.guide)
    batch = _batch(vae, 0.0)
    lacking = []
    for column in (1, 0):
        mask = batch.mask.clone()
        mask[:3, column] = False
        lacking.append(batch.with_mask(mask))
    counts = []
    for b in (batch, batch, lacking[0], lacking[0], lacking[1], lacking[1], batch):
        vae.elbo.loss(vae.model, guide, b)
        counts.append(guide.count)
    assert counts == [2, 3, 5, 6, 8, 9, 10]


@pytest.mark.parametrize("method", METHOD_NAMES)
def test_the_checks_leave_the_random_numbers_and_the_loss_alone(method):
    """The check draws from forked random numbers: the first step's loss is the unchecked one."""
    vae = _vae(method)
    batch = _batch(vae, 0.35)
    losses = []
    for enabled in (True, False):
        elbo = copy.deepcopy(vae.elbo)
        elbo.contract.enabled = enabled
        pyro.set_rng_seed(4)
        losses.append((elbo.loss(vae.model, vae.guide, batch), torch.rand(())))
    assert losses[0] == losses[1]


def test_a_contract_error_is_a_value_error():
    assert issubclass(ContractError, ValueError)


def test_a_model_of_plain_tensors_is_checked_once():
    """Arguments other than a MultimodalBatch: the key is their shapes; nothing waits for a mask."""
    def model(x):
        with pyro.plate("data", x.shape[0], dim=-1):
            z = pyro.sample("z", dist.Normal(torch.zeros(2), 1.0).to_event(1))
            pyro.sample("x", dist.Normal(z.sum(-1, keepdim=True), 1.0).to_event(1), obs=x)

    def guide(x):
        loc = pyro.param("loc", torch.zeros(2))
        with pyro.plate("data", x.shape[0], dim=-1):
            pyro.sample("z", dist.Normal(loc, 1.0).to_event(1))

    calls = _Calls(guide)
    svi = SVI(model, calls, Adam({"lr": 1e-2}), loss=TraceMixture_ELBO(num_particles=2))
    counts = []
    for _ in range(3):
        svi.step(torch.randn(8, 1))
        counts.append(calls.count)
    assert counts == [2, 3, 4]


def test_a_users_image_and_label_model_that_forgets_the_label_mask_is_named(validation):
    """The issue's case: a user's own Pyro model of an image and its label (600 of 60 000 labelled,
    here 6 of 16), pyro_mm's guide and mixture ELBO under plain SVI, the label's mask forgotten."""
    image = Modality("image", (6,), MLPEncoder((6,), 3, (8,)), MLPDecoder(3, (6,), (8,)), "bernoulli")
    label = Modality("label", (), LabelEncoder(10, 3, (8,)), MLPDecoder(3, (10,), (8,)), Categorical(10))
    decoders = torch.nn.ModuleDict({"image": image.decoder, "label": label.decoder})

    def model(batch):
        pyro.module("decoders", decoders)
        with pyro.plate("data", batch.batch_size, dim=-1):
            z = pyro.sample("z", dist.Normal(torch.zeros(3), 1.0).to_event(1))
            with poutine.mask(mask=batch.observed("image")):
                pyro.sample("image", decode("image", image.decoder, z, lambda p: image.likelihood(p, 1)),
                            obs=batch["image"])
            pyro.sample("label", decode("label", label.decoder, z, lambda p: label.likelihood(p, 0)),
                        obs=batch["label"])  # no poutine.mask: the placeholder 0 would be learned as a label

    mask = torch.ones(16, 2, dtype=torch.bool)
    mask[6:, 1] = False
    batch = MultimodalBatch({"image": torch.rand(16, 6).round(), "label": torch.randint(10, (16,))}, mask)
    _one_line_error(model, MixtureOfExpertsGuide([image, label]), TraceMixture_ELBO(), batch,
                    "the model's site 'label' is not masked where the batch says 'label' is missing (e.g. sample 6)",
                    "poutine.mask(mask=batch.observed('label'))")
