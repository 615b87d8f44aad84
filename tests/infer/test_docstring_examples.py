"""Every registered objective's module carries a plain ``pyro.infer.SVI`` example in its docstring,
and the example runs: the objectives come from the method registry (the class of each method's
ELBO, its module), so a new objective brings its example in its own file or fails here."""

import sys
import textwrap
from typing import Optional

import pytest
from mm_helpers import make_vae

from pyro_mm.registry import METHODS


def docstring_example(doc: Optional[str]) -> Optional[str]:
    """The code of the paragraph that starts with ``Example`` and ends with ``::`` (a reST literal
    block: the indented lines after it), dedented; ``None`` when there is none."""
    lines = (doc or "").splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("Example")), None)
    if start is None:
        return None
    end = next((i for i in range(start, len(lines)) if lines[i].rstrip().endswith("::")), None)
    if end is None:
        return None
    block = []
    for line in lines[end + 1:]:
        if line.strip() and not line.startswith(" "):
            break
        block.append(line)
    code = textwrap.dedent("\n".join(block)).strip()
    return code or None


def objective_module(method: str):
    """The module of the class of method ``method``'s objective."""
    vae = make_vae(METHODS[method], 2)
    return sys.modules[type(vae.elbo).__module__]


@pytest.mark.parametrize("method", list(METHODS))
def test_every_registered_objective_has_a_plain_svi_example_that_runs(method):
    module = objective_module(method)
    code = docstring_example(module.__doc__)
    assert code, (f"{module.__name__}, the objective of method {method!r}, has no example: its module docstring "
                  "needs an 'Example ...::' block training a model and guide with plain pyro.infer.SVI")
    assert "SVI(" in code and ".step(" in code, code
    assert "initialise(" in code, "the example makes the public initialisation call"
    assert "mask" in code, "the example's data lacks a modality for some samples"
    exec(compile(code, f"<example of {module.__name__}>", "exec"), {"__name__": "example"})


def test_the_example_reader_finds_the_block_and_nothing_else():
    doc = "Title.\n\nExample — a thing,\non two lines::\n\n    x = 1\n\n    y = x + 1\n\nReferences: none\n"
    assert docstring_example(doc) == "x = 1\n\ny = x + 1"
    assert docstring_example("Title.\n\nNo example here.\n") is None
    assert docstring_example(None) is None
