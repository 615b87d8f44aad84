"""The README's Python blocks run as written (in a scratch directory), so the documentation cannot
drift from the API."""

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_the_readme_has_its_quick_start_and_user_class_examples():
    assert len(BLOCKS) >= 2 and "SVI" in BLOCKS[0] and "MEME" in BLOCKS[1]


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_block_runs(index, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(compile(BLOCKS[index], f"README.md python block {index + 1}", "exec"), namespace)
    if "loss" in namespace:
        assert namespace["loss"] == namespace["loss"]  # a number, not NaN
    if "vae" in namespace:
        assert (tmp_path / "runs/meme/model.pt").stat().st_size > 0
        assert set(namespace["out"]) == {"syndigits"} and namespace["samples"]["mnist"].shape[0] == 4


def _readme_tables():
    import importlib.util

    spec = importlib.util.spec_from_file_location("readme_tables", README.parent / "scripts/readme_tables.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_readme_result_tables_equal_the_committed_tables():
    tables = _readme_tables()
    text = README.read_text()
    assert {b.path for b in tables.blocks(text)} >= {"docs/results/linear-gaussian.md",
                                                     "docs/results/meme-table/table.md"}
    assert tables.stale(text) == [], "run python scripts/generate_docs.py and commit README.md"


def test_a_table_edited_by_hand_or_left_behind_is_caught(tmp_path):
    """The check is not vacuous: a README whose copy differs from its source is reported, and the
    rewrite restores it."""
    tables = _readme_tables()
    (tmp_path / "page.md").write_text("# page\n\n**Verdicts**\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\nafter\n")
    readme = '<!-- table: page.md after "**Verdicts**" -->\n| a | b |\n|---|---|\n| 1 | 3 |\n<!-- end table -->\n'
    assert tables.stale(readme, tmp_path) == ['page.md after "**Verdicts**"']
    fixed = tables.rewrite(readme, tmp_path)
    assert "| 1 | 2 |" in fixed and tables.stale(fixed, tmp_path) == []
    with pytest.raises(ValueError, match="no line containing"):
        tables.source_table("page.md", "**Missing**", tmp_path)
