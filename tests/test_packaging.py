"""Packaging: the explicit package list matches the folders, and __all__ is honest."""

import configparser
import importlib
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


MODULES = ["pyro_mm", "pyro_mm.distributions", "pyro_mm.infer", "pyro_mm.models", "pyro_mm.guides",
           "pyro_mm.data", "pyro_mm.subsets", "pyro_mm.batch", "pyro_mm.modality", "pyro_mm.likelihoods",
           "pyro_mm.nets", "pyro_mm.linear_gaussian"]


@pytest.mark.parametrize("name", MODULES)
def test_all_names_exist(name):
    module = importlib.import_module(name)
    for attr in getattr(module, "__all__", []):
        assert hasattr(module, attr), f"{name}.__all__ names {attr!r}, which does not exist"


def test_core_never_imports_models_or_guides():
    offenders = []
    for path in (ROOT / "pyro_mm").rglob("*.py"):
        text = path.read_text()
        if "pyro_mm.models" in text.replace("pyro_mm.models`", "") or "pyro_mm.guides" in text.replace("pyro_mm.guides`", ""):
            for line in text.splitlines():
                if line.lstrip().startswith(("import ", "from ")) and ("models" in line or "guides" in line):
                    offenders.append(f"{path.relative_to(ROOT)}: {line.strip()}")
    allowed = {"pyro_mm/api.py", "pyro_mm/cli.py", "pyro_mm/demo.py"}  # user-facing modules import all three
    assert not [o for o in offenders if o.split(":")[0] not in allowed]


def test_torchvision_is_only_an_optional_extra():
    cfg = _config()
    assert "torchvision" not in cfg["options"]["install_requires"]
    assert "torchvision" in cfg["options.extras_require"]["vision"]
