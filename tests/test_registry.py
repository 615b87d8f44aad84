"""The method registry is the only list of methods: what lists them — the command line, the user
API, the README's method table, ``docs/cli.md`` — reads :data:`pyro_mm.registry.METHODS`, the
generated parts are current, and a method added to the registry changes no experiment's grid."""

import configparser
import importlib.util
from pathlib import Path

import pytest

from pyro_mm import api
from pyro_mm.cli import build_parser
from pyro_mm.experiments import EXPERIMENTS
from pyro_mm.multimodal_vae import MultimodalVAE
from pyro_mm.registry import METHODS

ROOT = Path(__file__).resolve().parents[1]


def _generate_docs():
    spec = importlib.util.spec_from_file_location("generate_docs", ROOT / "scripts" / "generate_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_generated_documentation_is_current():
    """docs/cli.md and the README's method and result tables are what the code says."""
    assert _generate_docs().stale() == [], "run python scripts/generate_docs.py and commit what it wrote"


def test_the_readme_method_table_has_a_row_per_registered_method():
    generate_docs = _generate_docs()
    rows = generate_docs.method_rows()
    assert [r["method"] for r in rows] == list(METHODS)
    assert [r["class"] for r in rows] == [cls.__name__ for cls in METHODS.values()]
    table = generate_docs.method_table()
    assert table in (ROOT / "README.md").read_text()
    assert all(f"| {cls.title} | `{name}` | `{cls.__name__}` |" in table for name, cls in METHODS.items())


def test_every_method_has_a_title_reference_and_summary():
    for name, cls in METHODS.items():
        assert cls.title and cls.reference and cls.summary, name
    assert len({cls.title for cls in METHODS.values()}) == len(METHODS)


def test_the_user_api_exports_every_registered_class():
    for cls in METHODS.values():
        assert getattr(api, cls.__name__) is cls and cls.__name__ in api.__all__


def test_the_command_line_lists_the_registered_methods():
    parser = build_parser()
    train = next(a for a in parser._actions if a.dest == "command").choices["train"]
    method = next(a for a in train._actions if a.dest == "method")
    assert list(method.choices) == list(METHODS)
    assert ", ".join(METHODS) in " ".join(parser.description.split())


def test_the_package_description_lists_no_methods():
    """The one-line description of the package names no method (the README's table lists them)."""
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    description = cfg["metadata"]["description"]
    assert not [cls.title for cls in METHODS.values() if cls.title in description.split()], description


@pytest.mark.parametrize("name", list(EXPERIMENTS))
def test_a_new_method_changes_no_experiment_grid(name, monkeypatch):
    """Every experiment names the methods it compares: registering one more leaves its cells (and
    so the keys of its committed records) as they were."""
    experiment = EXPERIMENTS[name]()
    settings = [(quick, seeds) for quick in (True, False) for seeds in (1, 3)]
    before = [[cell.key for cell in experiment.cells(quick, seeds)] for quick, seeds in settings]

    class Plugin(MultimodalVAE):
        """A method registered after the experiments were written."""

        method = "plugin"
        reference = summary = "none"

    monkeypatch.setitem(METHODS, "plugin", Plugin)
    after = [[cell.key for cell in experiment.cells(quick, seeds)] for quick, seeds in settings]
    assert after == before
    assert all(cell.method in METHODS for cells in (experiment.cells(True, 1), experiment.cells(False, 1))
               for cell in cells)
