"""Packaging: the explicit package list matches the folders, and __all__ is honest."""

import ast
import configparser
import importlib
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _config():
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    return cfg


def test_setup_cfg_lists_every_package_folder():
    cfg = _config()
    listed = set(cfg["options"]["packages"].split())
    mapping = dict(line.split(" = ") for line in cfg["options"]["package_dir"].strip().splitlines())
    on_disk = set()
    for top, prefix in (("pyro_mm", "pyro_mm"), ("models", "pyro_mm.models"), ("guides", "pyro_mm.guides")):
        for init in (ROOT / top).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / top).parts
            on_disk.add(".".join((prefix,) + rel))
    assert listed == on_disk
    assert mapping == {"pyro_mm": "pyro_mm", "pyro_mm.models": "models", "pyro_mm.guides": "guides"}


def test_models_and_guides_are_flat_and_there_is_no_tests_package():
    assert not [p for p in (ROOT / "models").iterdir() if p.is_dir() and p.name != "__pycache__"]
    assert not [p for p in (ROOT / "guides").iterdir() if p.is_dir() and p.name != "__pycache__"]
    assert not (ROOT / "tests" / "__init__.py").exists()
    assert not (ROOT / "conftest.py").exists()


def test_pyproject_holds_only_the_build_system():
    text = (ROOT / "pyproject.toml").read_text()
    assert "[build-system]" in text and "[project]" not in text and "[tool" not in text


MODULES = sorted(".".join(p.relative_to(ROOT).with_suffix("").parts).replace(".__init__", "")
                 for p in (ROOT / "pyro_mm").rglob("*.py") if p.name != "__main__.py") + ["pyro_mm.models",
                                                                                         "pyro_mm.guides"]


@pytest.mark.parametrize("name", MODULES)
def test_all_names_exist(name):
    module = importlib.import_module(name)
    for attr in getattr(module, "__all__", []):
        assert hasattr(module, attr), f"{name}.__all__ names {attr!r}, which does not exist"


def _imports(path: Path, package: str):
    """Absolute names of the modules a file imports (relative imports resolved against ``package``)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)


#: the user-facing modules, which import the core, the models and the guides
USER_FACING = {"pyro_mm/api.py", "pyro_mm/registry.py"}


def test_core_never_imports_models_or_guides():
    """Read with ``ast``: no core module imports ``pyro_mm.models`` or ``pyro_mm.guides``, however
    spelled (``from .models import``, ``from ..guides.x import``, ``import pyro_mm.models``)."""
    offenders = []
    for path in (ROOT / "pyro_mm").rglob("*.py"):
        rel = path.relative_to(ROOT).as_posix()
        package = ".".join(path.relative_to(ROOT).parent.parts)
        for name in _imports(path, package):
            if name.split(".")[:2] in (["pyro_mm", "models"], ["pyro_mm", "guides"]) and rel not in USER_FACING:
                offenders.append(f"{rel}: {name}")
    assert not offenders


def test_the_layering_check_reads_relative_imports(tmp_path):
    fake = tmp_path / "pyro_mm" / "infer" / "x.py"
    fake.parent.mkdir(parents=True)
    fake.write_text("from ..models import SharedLatentModel\nfrom . import y\n")
    assert "pyro_mm.models.SharedLatentModel" in set(_imports(fake, "pyro_mm.infer"))


def test_the_core_works_without_any_extra_and_a_missing_one_is_named():
    """With the extras' packages hidden, the core imports and trains; what needs an extra says
    which ``pip install`` brings it."""
    import subprocess
    import sys

    code = textwrap.dedent("""
        import sys
        for name in ("skimage", "matplotlib", "PIL", "arviz_base", "arviz_stats", "xarray", "h5netcdf", "lightning",
                     "tensorboard"):
            sys.modules[name] = None
        import torch
        import pyro_mm.api, pyro_mm.cli, pyro_mm.data, pyro_mm.experiments, pyro_mm.monitor, pyro_mm.training
        from pyro_mm.api import MVAE, MultimodalBatch, Modality
        from pyro_mm.nets import MLPDecoder, MLPEncoder
        mods = [Modality(n, (4,), MLPEncoder((4,), 2), MLPDecoder(2, (4,)), "bernoulli") for n in ("a", "b")]
        vae = MVAE(mods, 2)
        vae.fit(MultimodalBatch({"a": torch.rand(8, 4), "b": torch.rand(8, 4)}), epochs=1, batch_size=4, progress=False)
        for build in (lambda: pyro_mm.data.PolyMNIST("test", size=2), lambda: __import__("pyro_mm.export"),
                      lambda: __import__("pyro_mm.lightning"), lambda: __import__("pyro_mm.metrics.plots")):
            try:
                build()
            except ImportError as error:
                print("named:", error)
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 4 and all("pip install" in line for line in lines), lines
    assert "'.[data]'" in lines[0] and "'.[arviz]'" in lines[1] and "lightning" in lines[2] and "'.[metrics]'" in lines[3]


def test_torchvision_is_only_an_optional_extra():
    cfg = _config()
    assert "torchvision" not in cfg["options"]["install_requires"]
    assert "torchvision" in cfg["options.extras_require"]["vision"]
    core = {line.split(">")[0].split("=")[0].strip() for line in cfg["options"]["install_requires"].split() if line}
    assert core == {"torch", "pyro-ppl", "numpy", "tqdm"}


def test_a_wheel_ships_the_data_assets(tmp_path):
    """The arrays SynDigits is built from are package data: a built wheel holds them."""
    import subprocess
    import sys
    import zipfile

    out = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w",
                          str(tmp_path), str(ROOT)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    (wheel,) = tmp_path.glob("pyro_mm-*.whl")
    assert "pyro_mm/data/assets/syndigits.npz" in zipfile.ZipFile(wheel).namelist()
