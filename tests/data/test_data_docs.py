"""docs/data.md's Python blocks run as written, in order and in one namespace (in a scratch
directory and data cache), so the data documentation cannot drift from the API."""

import re
from pathlib import Path

import torch

DOC = Path(__file__).resolve().parents[2] / "docs" / "data.md"
BLOCKS = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)


def test_the_data_doc_shows_a_users_data_set_labels_mnist_and_mnist_label():
    text = "\n".join(BLOCKS)
    for shown in ("MultimodalDataset(", "num_categories", "Categorical(10)", "LabelEncoder", "MNIST(",
                  "MNISTLabel(", "PairedCount("):
        assert shown in text, shown


def test_the_data_doc_blocks_run(tmp_path, monkeypatch, mnist_dir):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PYRO_MM_DATA_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("PYRO_MM_MNIST_DIR", str(mnist_dir))
    monkeypatch.setenv("PYRO_MM_PROGRESS", "0")
    namespace = {}
    for index, block in enumerate(BLOCKS):
        exec(compile(block, f"docs/data.md python block {index + 1}", "exec"), namespace)
    guess = namespace["guess"]
    assert guess.shape == (8,) and guess.dtype == torch.long and 0 <= int(guess.min()) <= int(guess.max()) <= 9
