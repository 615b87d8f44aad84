"""Every script in examples/ runs with its --small flag (a new example is covered automatically)."""

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.py"))


def test_there_are_examples():
    assert EXAMPLES


@pytest.mark.parametrize("script", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_runs_small(script):
    assert "--small" in script.read_text(), f"{script.name} needs a --small flag for this test"
    out = subprocess.run([sys.executable, str(script), "--small"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "|" in out.stdout or "=" in out.stdout
