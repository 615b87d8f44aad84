"""The judging classifiers of a results store are the same in every process: trained on one
thread whatever the process's thread count, named by :func:`judges_sha256`, cached under a key
that holds what changes their weights."""

import torch

from pyro_mm.data.catalog import load_dataset
from pyro_mm.metrics.classifiers import classifier_cache_file, classifiers_for, judges_sha256


def test_judges_are_bit_identical_at_one_and_two_threads(tmp_path):
    train, test = load_dataset("mnist-syndigits", "train", size=200), load_dataset("mnist-syndigits", "test", size=100)
    threads = torch.get_num_threads()
    hashes = []
    try:
        for count in (1, 2):
            torch.set_num_threads(count)
            judges, _ = classifiers_for(train, test, cache_dir=tmp_path / str(count), epochs=0.3, progress=False)
            assert torch.get_num_threads() == count  # restored after training on one thread
            hashes.append(judges_sha256(judges))
    finally:
        torch.set_num_threads(threads)
    assert hashes[0] == hashes[1]

    with torch.no_grad():
        judges["mnist"].head.bias[0] += 1e-6
    assert judges_sha256(judges) != hashes[0]
    assert judges_sha256({"syndigits": judges["syndigits"], "mnist": judges["mnist"]}) == judges_sha256(judges)


def test_the_cache_key_holds_the_device(tmp_path):
    train = load_dataset("mnist-syndigits", "train", size=200)
    cpu = classifier_cache_file(train, "mnist", tmp_path, epochs=1.0)
    assert cpu == classifier_cache_file(train, "mnist", tmp_path, device="cpu", epochs=1.0)
    assert cpu != classifier_cache_file(train, "mnist", tmp_path, device="cuda", epochs=1.0)


def test_judges_trained_side_by_side_equal_judges_trained_one_at_a_time(tmp_path):
    """classifiers_for trains the judges at once, each on a thread of its own: the weights are
    those of train_classifier called for one modality after the other."""
    from pyro_mm.metrics.classifiers import train_classifier

    train, test = load_dataset("mnist-syndigits", "train", size=200), load_dataset("mnist-syndigits", "test", size=100)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        together, _ = classifiers_for(train, test, cache_dir=tmp_path, epochs=0.3, progress=False)
    finally:
        torch.set_num_threads(threads)
    alone = {n: train_classifier(train, n, epochs=0.3, progress=False) for n in ("mnist", "syndigits")}
    assert judges_sha256(together) == judges_sha256(alone)
