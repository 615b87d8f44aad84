"""Reduced-precision float32 matmuls for training only (:mod:`pyro_mm.precision`): the scope sets
and restores torch's settings, ``fit`` uses it for its loop and nothing else, a checkpoint records
the precision and the data's content, and a resume that would mix either is refused."""

import platform
import warnings

import pytest
import torch
from mm_helpers import make_vae

from pyro_mm.api import MVAE
from pyro_mm.checkpoint import atomic_save
from pyro_mm.data.base import MultimodalDataset
from pyro_mm.precision import PRECISIONS, float32_precision, in_effect
from pyro_mm.provenance import RELEVANT_CPU_FLAGS, cpu_flags, provenance, stamp
from pyro_mm.training import Trainer

#: the torch settings the scope may change: torch.backends.<path>.fp32_precision
BACKENDS = ("mkldnn.matmul", "mkldnn.conv", "cuda.matmul", "cudnn.conv")
X86 = platform.machine().lower() in ("x86_64", "amd64")


def backend(path):
    module = torch.backends
    for part in path.split("."):
        module = getattr(module, part)
    return module


def torch_settings():
    return {"legacy": torch.get_float32_matmul_precision(), **{p: backend(p).fp32_precision for p in BACKENDS}}


@pytest.fixture(autouse=True)
def _torch_settings_kept():
    """Every test leaves torch's precision settings as it found them (and fails if the code did not)."""
    before = torch_settings()
    yield
    after = torch_settings()
    torch.set_float32_matmul_precision(before["legacy"])
    for path in BACKENDS:
        backend(path).fp32_precision = before[path]
    assert after == before


def dataset(n=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    return MultimodalDataset({"m0": torch.rand(n, 5, generator=g).round(), "m1": torch.rand(n, 6, generator=g)},
                             {"m0": "bernoulli", "m1": "bernoulli"}, torch.arange(n) % 10)


def make():
    torch.manual_seed(0)
    return make_vae(MVAE, 2, 3)


RUN = dict(batch_size=16, progress=False)


def relative_gap(fast, exact):
    return float((fast - exact).norm() / exact.norm())


def products():
    """A float32 matrix product and a convolution of random numbers."""
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(256, 784, generator=g), torch.randn(784, 512, generator=g)
    x, w = torch.randn(8, 3, 32, 32, generator=g), torch.randn(32, 3, 4, 4, generator=g)
    return a @ b, torch.nn.functional.conv2d(x, w, stride=2, padding=1)


# --- the scope ----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", PRECISIONS)
def test_the_scope_sets_torch_and_restores_every_setting_even_on_an_error(name):
    before, onednn = torch_settings(), {"highest": "ieee", "high": "tf32", "medium": "bf16"}[name]
    with pytest.raises(KeyError):
        with float32_precision(name):
            assert torch.get_float32_matmul_precision() == name == in_effect()
            assert backend("mkldnn.matmul").fp32_precision == onednn
            assert backend("mkldnn.conv").fp32_precision == backend("mkldnn.matmul").fp32_precision
            assert backend("cuda.matmul").fp32_precision == backend("cudnn.conv").fp32_precision == \
                ("ieee" if name == "highest" else "tf32")
            raise KeyError("inside")
    assert torch_settings() == before


def test_the_scope_restores_per_backend_settings_made_apart_from_torchs_one_precision():
    """A caller who set a backend through torch's newer API (torch then names no one precision)
    gets exactly that back."""
    torch.backends.cuda.matmul.fp32_precision = "tf32"
    backend("mkldnn.conv").fp32_precision = "bf16"
    before = {p: backend(p).fp32_precision for p in BACKENDS}
    with float32_precision("highest"):
        assert {p: backend(p).fp32_precision for p in BACKENDS} == dict.fromkeys(BACKENDS, "ieee")
    assert {p: backend(p).fp32_precision for p in BACKENDS} == before
    assert "cuda.matmul tf32" in in_effect()
    torch.set_float32_matmul_precision("highest")  # torch's one precision nameable again, for the fixture
    for path in ("mkldnn.matmul", "mkldnn.conv", "cuda.matmul"):
        backend(path).fp32_precision = "none"


def test_unknown_precisions_are_refused():
    with pytest.raises(ValueError, match=r"matmul_precision must be one of \['highest', 'high', 'medium'\], got 'low'"):
        Trainer(matmul_precision="low")
    with pytest.raises(ValueError, match="got 'bf16'"):
        with float32_precision("bf16"):
            pass


def test_highest_is_torchs_default_arithmetic_bit_for_bit():
    exact = products()
    with float32_precision("highest"):
        scoped = products()
    assert all(torch.equal(a, b) for a, b in zip(exact, scoped))


@pytest.mark.skipif("amx_bf16" not in cpu_flags(),
                    reason="this CPU has no AMX-BF16: oneDNN keeps its float32 kernels under the bfloat16 setting")
def test_medium_computes_products_and_convolutions_in_bfloat16_on_a_cpu_with_amx():
    exact = products()
    with float32_precision("medium"):
        fast = products()
    for name, a, b in zip(("matmul", "conv"), fast, exact):
        assert 1e-4 < relative_gap(a, b) < 2e-2, name


@pytest.mark.skipif(not X86 or "amx_bf16" in cpu_flags(), reason="an x86 CPU without AMX-BF16 only")
def test_medium_stays_float32_on_an_x86_cpu_without_amx():
    """oneDNN only permits the down-conversion: without AMX (e.g. AMD Zen 4, which has
    AVX512-BF16) matrix products move to oneDNN's float32 kernels, equal to float rounding."""
    exact = products()
    with float32_precision("medium"):
        fast = products()
    assert all(relative_gap(a, b) < 1e-5 for a, b in zip(fast, exact))


# --- training -----------------------------------------------------------------------------------
def test_fit_trains_at_its_precision_and_everything_after_it_at_the_process_setting():
    vae, seen = make(), []
    encoder = vae.modalities[0].encoder
    encoder.register_forward_hook(lambda *_: seen.append(torch.get_float32_matmul_precision()))
    data = dataset()
    losses = vae.fit(data, epochs=2, matmul_precision="medium", **RUN)
    assert len(losses) == 2 and all(torch.isfinite(torch.tensor(losses)))
    assert seen and set(seen) == {"medium"}
    seen.clear()
    batch = data.batch(torch.arange(8))
    vae.encode(batch), vae.predict(batch, ["m0"], ["m1"]), vae.log_likelihood(batch, num_particles=25)
    assert seen and set(seen) == {"highest"}
    assert in_effect() == "highest"


def test_a_resume_at_another_precision_is_refused_and_the_file_kept(tmp_path):
    path = tmp_path / "ckpt.pt"
    make().fit(dataset(), epochs=1, checkpoint=path, matmul_precision="medium", **RUN)
    written = path.read_bytes()
    with pytest.raises(ValueError, match="matmul_precision='medium', this run has matmul_precision='highest'"):
        make().fit(dataset(), epochs=2, checkpoint=path, resume=True, **RUN)
    assert path.read_bytes() == written
    make().fit(dataset(), epochs=2, checkpoint=path, resume=True, matmul_precision="medium", **RUN)


def test_a_resume_on_data_of_another_content_is_refused_in_one_line(tmp_path):
    path = tmp_path / "ckpt.pt"
    before, after = dataset(seed=0), dataset(seed=1)  # same size and masks, other samples
    make().fit(before, epochs=1, checkpoint=path, **RUN)
    with pytest.raises(ValueError) as error:
        make().fit(after, epochs=2, checkpoint=path, resume=True, **RUN)
    message = str(error.value)
    assert "\n" not in message and "the data set's content changed since the checkpoint was written" in message
    assert f"sha256 {after.content_hash[:8]}… now, {before.content_hash[:8]}… then" in message
    assert "resume on the same data or start a new run" in message


def test_a_checkpoint_from_before_precision_and_content_were_recorded_resumes_at_highest(tmp_path):
    from test_checkpoint import inner_payload

    path = tmp_path / "ckpt.pt"
    make().fit(dataset(), epochs=1, checkpoint=path, **RUN)
    payload = inner_payload(path)
    for key in ("matmul_precision", "data_sha256"):
        del payload["settings"][key]
    atomic_save(payload, path)
    with pytest.raises(ValueError, match="matmul_precision='highest', this run has matmul_precision='medium'"):
        make().fit(dataset(), epochs=2, checkpoint=path, resume=True, matmul_precision="medium", **RUN)
    with pytest.warns(UserWarning, match="does not record its data's content hash"):
        make().fit(dataset(), epochs=2, checkpoint=path, resume=True, **RUN)


def test_the_training_data_content_hash_is_saved_with_the_model(tmp_path):
    vae, data = make(), dataset()
    assert vae.data_sha256 is None
    vae.fit(data, epochs=1, **RUN)
    assert vae.data_sha256 == data.content_hash
    loaded = MVAE.load(vae.save(tmp_path / "model.pt"))
    assert loaded.data_sha256 == data.content_hash


def test_a_batch_without_a_content_hash_trains_and_resumes_without_warning(tmp_path):
    path = tmp_path / "ckpt.pt"
    batch = dataset().batch(torch.arange(40))
    make().fit(batch, epochs=1, checkpoint=path, **RUN)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        vae = make()
        vae.fit(batch, epochs=2, checkpoint=path, resume=True, **RUN)
    assert vae.data_sha256 is None


# --- provenance ---------------------------------------------------------------------------------
def test_provenance_names_the_software_threads_precision_and_cpu_flags():
    import pyro

    record = provenance()
    assert record["torch"] == torch.__version__ and record["pyro"] == pyro.__version__
    assert record["threads"] == torch.get_num_threads() and record["matmul_precision"] == "highest"
    assert record["cpu_flags"] == cpu_flags() and set(cpu_flags()) <= set(RELEVANT_CPU_FLAGS)
    assert isinstance(record["gpu"], str) and "torch" in record["machine"]
    line = stamp(record)
    assert line.startswith(f"Measured at commit `{record['commit']}` on {record['machine']}")
    assert "float32 matmul precision highest" in line and f"pyro {pyro.__version__}" in line
    with float32_precision("medium"):
        assert provenance()["matmul_precision"] == "medium"
    assert stamp({"commit": "abc", "machine": "m", "date": "d"}) == "Measured at commit `abc` on m, d."
