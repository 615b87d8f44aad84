"""The judging classifiers of a results store are the same in every process: trained on one
thread whatever the process's thread count, named by :func:`judges_sha256`, cached under a key
that holds what changes their weights."""

import pytest
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


@pytest.mark.parametrize("workers, rounds", [(1, 2), (2, 1), (5, 1)])
def test_the_judges_duration_counts_the_classifiers_trained_at_once(tmp_path, monkeypatch, workers, rounds):
    """With a clock that advances one second per reading, every classifier's timed steps take one
    second: two equal classifiers take two rounds on one thread and one round on two or more."""
    import itertools

    from pyro_mm.metrics import classifiers

    train, test = load_dataset("mnist-syndigits", "train", size=200), load_dataset("mnist-syndigits", "test", size=100)
    clock = itertools.count()
    monkeypatch.setattr(classifiers.time, "perf_counter", lambda: float(next(clock)))
    one_round = classifiers.classifiers_training_seconds(train, test, tmp_path, modalities=["mnist"], epochs=1.0)
    seconds = classifiers.classifiers_training_seconds(train, test, tmp_path, epochs=1.0, workers=workers)
    assert one_round > 0 and seconds == rounds * one_round


def test_a_classifier_two_sets_of_judges_share_is_counted_once(tmp_path, monkeypatch):
    """PolyMNIST's m0 judge is the same file at every number of modalities: the estimate over
    several sets counts it for the first set only."""
    import itertools

    from pyro_mm.metrics import classifiers

    train, test = load_dataset("mnist-syndigits", "train", size=200), load_dataset("mnist-syndigits", "test", size=100)
    clock = itertools.count()
    monkeypatch.setattr(classifiers.time, "perf_counter", lambda: float(next(clock)))
    counted = set()
    both = classifiers.classifiers_training_seconds(train, test, tmp_path, epochs=1.0, counted=counted)
    again = classifiers.classifiers_training_seconds(train, test, tmp_path, modalities=["mnist"], epochs=1.0,
                                                     counted=counted)
    alone = classifiers.classifiers_training_seconds(train, test, tmp_path, modalities=["mnist"], epochs=1.0)
    assert len(counted) == 2 and again == 0 and both == 2 * alone > 0



def test_an_interruption_stops_the_judges_training_at_the_next_step(tmp_path, monkeypatch):
    """Ctrl-C while two classifiers train side by side (here SIGINT sent to the main thread at the
    first classifier's third step) ends the call within a few steps, not after their hundreds;
    nothing is cached."""
    import signal
    import threading

    from pyro_mm.metrics import classifiers

    train, test = load_dataset("mnist-syndigits", "train", size=2000), load_dataset("mnist-syndigits", "test", size=100)
    prepare, taken = classifiers._prepare, []

    def counted(dataset, modality, *args):
        model, steps, step = prepare(dataset, modality, *args)

        def counting(i):
            taken.append(i)
            if modality == "mnist" and i == 2:
                signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)
            return step(i)

        return model, steps, counting

    monkeypatch.setattr(classifiers, "_prepare", counted)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with pytest.raises(KeyboardInterrupt):
            classifiers_for(train, test, cache_dir=tmp_path, epochs=4.0, progress=False)
    finally:
        torch.set_num_threads(threads)
    assert 3 <= len(taken) < 20
    assert not list(tmp_path.rglob("*.npz"))
