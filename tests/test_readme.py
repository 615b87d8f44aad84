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
