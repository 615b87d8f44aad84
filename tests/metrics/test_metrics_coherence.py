import pytest
import torch

from pyro_mm.batch import MultimodalBatch
from pyro_mm.metrics.coherence import cross_coherence, joint_coherence, predict, proper_subsets

NAMES = ("a", "b", "c")


def _batches(images, labels, size=250):
    """Three-modality batches: ``a`` and ``b`` the real images, ``c`` the images mirrored."""
    for i in range(0, len(labels), size):
        x = images[i : i + size]
        data = {"a": x, "b": x, "c": x.flip(-1)}
        yield MultimodalBatch(data, labels=labels[i : i + size], names=NAMES)


def test_real_pairs_score_the_classifier_accuracy(mnist_classifier, mnist_test):
    images, labels = mnist_test
    clf = {n: mnist_classifier for n in NAMES}
    result = cross_coherence(lambda batch, given, target: batch[target], _batches(images, labels), clf, NAMES)
    pred = {"a": predict(mnist_classifier, images), "c": predict(mnist_classifier, images.flip(-1))}
    pred["b"] = pred["a"]
    accuracy = {n: (p == labels).double().mean().item() for n, p in pred.items()}
    assert 0.7 < accuracy["a"] and accuracy["c"] < accuracy["a"] - 0.1  # the mirrored modality is harder
    assert set(result.pairs) == {(s, t) for s in proper_subsets(NAMES) for t in NAMES if t not in s}
    for (subset, target), value in result.pairs.items():
        assert value == pytest.approx(accuracy[target], abs=1e-12)
        assert result.counts[subset, target] == len(labels)
        for k in range(10):
            expected = (pred[target][labels == k] == k).double().mean().item()
            assert result.per_class[subset, target][k] == pytest.approx(expected, abs=1e-12)
    # size 1: (a->b, a->c, b->a, b->c, c->a, c->b); size 2: (ab->c, ac->b, bc->a)
    assert result.by_size[1] == pytest.approx((4 * accuracy["a"] + 2 * accuracy["c"]) / 6)
    assert result.by_size[2] == pytest.approx((2 * accuracy["a"] + accuracy["c"]) / 3)


def test_random_images_score_chance(mnist_classifier, mnist_test):
    images, labels = mnist_test
    clf = {n: mnist_classifier for n in NAMES}
    gen = torch.Generator().manual_seed(0)

    def noise(batch, given, target):
        return torch.rand(batch[target].shape, generator=gen)

    result = cross_coherence(noise, _batches(images, labels), clf, NAMES, subsets=[("a",), ("a", "b")])
    assert set(result.pairs) == {(("a",), "b"), (("a",), "c"), (("a", "b"), "c")}
    for value in result.pairs.values():
        assert abs(value - 0.1) < 0.05


def test_only_samples_observing_the_inputs_are_used(mnist_classifier, mnist_test):
    images, labels = mnist_test
    x, y = images[:100], labels[:100]
    mask = torch.ones(100, 2, dtype=torch.bool)
    mask[:30, 0] = False
    batch = MultimodalBatch({"a": x, "b": x}, mask, y)
    seen = []

    def generate(part, given, target):
        seen.append((given, target, len(part)))
        return part[target]

    result = cross_coherence(generate, [batch], {"a": mnist_classifier, "b": mnist_classifier}, ("a", "b"))
    assert sorted(seen) == [(("a",), "b", 70), (("b",), "a", 100)]
    assert result.counts == {(("a",), "b"): 70, (("b",), "a"): 100}


def test_joint_coherence(mnist_classifier, mnist_test):
    images, _ = mnist_test
    clf = {"a": mnist_classifier, "b": mnist_classifier}
    gen = torch.Generator().manual_seed(0)

    def same(n):
        x = images[torch.randint(len(images), (n,), generator=gen)]
        return {"a": x, "b": x}

    def independent(n):
        return {k: images[torch.randint(len(images), (n,), generator=gen)] for k in "ab"}

    assert joint_coherence(same, clf, 900, 256) == 1.0
    assert abs(joint_coherence(independent, clf, 2000, 256) - 0.1) < 0.04


def test_bad_inputs(mnist_classifier, mnist_test):
    images, labels = mnist_test
    clf = {n: mnist_classifier for n in NAMES}
    with pytest.raises(ValueError, match="proper subset"):
        cross_coherence(lambda b, g, t: b[t], _batches(images, labels), clf, NAMES, subsets=[NAMES])
    with pytest.raises(KeyError, match="no classifier"):
        cross_coherence(lambda b, g, t: b[t], _batches(images, labels), {"a": mnist_classifier}, NAMES)
    with pytest.raises(ValueError, match="rows"):
        cross_coherence(lambda b, g, t: b[t][:3], _batches(images, labels), clf, NAMES)
    with pytest.raises(ValueError, match="labels"):
        cross_coherence(lambda b, g, t: b[t], [MultimodalBatch({"a": images[:4], "b": images[:4]})],
                        clf, ("a", "b"))
    with pytest.raises(ValueError, match="rows for every modality"):
        joint_coherence(lambda n: {"a": images[:n]}, clf, 10, names=("a", "b"))
