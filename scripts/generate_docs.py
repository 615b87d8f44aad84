"""Every generated part of the documentation, written from the code by one command.

    python scripts/generate_docs.py           # rewrite every generated part
    python scripts/generate_docs.py --check   # change nothing; exit 1, naming each part that differs

The parts:

* ``docs/cli.md`` — every command's ``--help`` (:func:`pyro_mm.cli.reference.markdown_reference`);
* the README's method table, between ``<!-- methods: ... -->`` and ``<!-- end methods -->`` — one
  row per registered method (:data:`pyro_mm.registry.METHODS`): its title, its ``--method`` name, its
  user class, the classes of its model, guide and objective (the method built once, at its default
  options, on two tiny modalities) and its paper;
* the README's result tables — copied from the committed result pages (``scripts/readme_tables.py``).

``tests/test_cli.py``, ``tests/test_registry.py`` and ``tests/test_readme.py`` fail on a stale
part, naming this command, so that adding a method to the registry is followed by this command and
no hand edit.
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import sys
from pathlib import Path
from typing import Dict, List

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
CLI_REFERENCE = ROOT / "docs" / "cli.md"
COMMAND = "python scripts/generate_docs.py"
#: the README's method table sits between these two lines
_METHODS = re.compile(r"(<!-- methods: [^\n]*-->\n)(?P<body>.*?)(<!-- end methods -->)", re.DOTALL)


def _readme_tables():
    spec = importlib.util.spec_from_file_location("readme_tables", ROOT / "scripts" / "readme_tables.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def method_rows() -> List[Dict[str, str]]:
    """One row per registered method: its declared names, and the classes of the model, guide and
    objective that it builds at its default options."""
    import torch

    from pyro_mm.registry import METHODS
    from pyro_mm.modality import Modality
    from pyro_mm.nets import MLPDecoder, MLPEncoder

    rows = []
    for name, cls in METHODS.items():
        size = cls.latent_size(2, **cls.resolve_options({}))
        modalities = [Modality(f"m{i}", (3,), MLPEncoder((3,), size, (4,)), MLPDecoder(size, (3,), (4,)), "normal")
                      for i in range(2)]
        with torch.random.fork_rng():  # the caller's random state untouched
            vae = cls(modalities, 2)
        rows.append({"title": cls.title, "method": name, "class": cls.__name__, "model": type(vae.model).__name__,
                     "guide": type(vae.guide).__name__, "objective": type(vae.elbo).__name__,
                     "paper": cls.reference})
    return rows


def method_table() -> str:
    """The README's method table (markdown, each line ending in a newline)."""
    lines = ["| method | `--method` | user class | model | guide | objective | paper |",
             "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['title']} | `{r['method']}` | `{r['class']}` | `{r['model']}` | `{r['guide']}` | "
              f"`{r['objective']}` | {r['paper']} |" for r in method_rows()]
    return "\n".join(lines) + "\n"


def _with_method_table(text: str) -> str:
    match = _METHODS.search(text)
    if match is None:
        raise ValueError("README.md has no '<!-- methods: ... -->' ... '<!-- end methods -->' block")
    return text[:match.start("body")] + method_table() + text[match.end("body"):]


def generated() -> Dict[Path, str]:
    """path -> what the file must hold."""
    from pyro_mm.cli.reference import markdown_reference

    readme = _readme_tables().rewrite(_with_method_table(README.read_text()))
    return {CLI_REFERENCE: markdown_reference(), README: readme}


def stale() -> List[str]:
    """The generated parts that differ from what the code says, named."""
    from pyro_mm.cli.reference import markdown_reference

    parts = ["docs/cli.md"] if CLI_REFERENCE.read_text() != markdown_reference() else []
    text = README.read_text()
    if text != _with_method_table(text):
        parts.append("README.md's method table")
    return parts + [f"README.md's table from {source}" for source in _readme_tables().stale(text)]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="report the parts that differ; change nothing")
    args = parser.parse_args(argv)
    if args.check:
        differing = stale()
        for part in differing:
            print(f"{part} is out of date; run {COMMAND}", file=sys.stderr)
        return 1 if differing else 0
    for path, text in generated().items():
        if path.read_text() != text:
            path.write_text(text)
            print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
