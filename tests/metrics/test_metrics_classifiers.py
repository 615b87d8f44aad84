import pytest
import torch

from pyro_mm.data.cache import load_arrays
from pyro_mm.metrics import classifiers as module
from pyro_mm.metrics.classifiers import (
    ImageClassifier,
    TextClassifier,
    classifier_cache_file,
    classifiers_for,
    make_classifier,
)

EPOCHS = {"image": 1.0, "text": 15.0}


def test_second_call_loads_and_a_corrupt_file_is_retrained(captions, tmp_path, monkeypatch):
    train, test = captions
    cache = tmp_path / "cache"
    trained = []
    real = module._prepare  # the set-up of every classifier trained, alone or side by side

    def spy(dataset, modality, *args):
        trained.append(modality)
        return real(dataset, modality, *args)

    monkeypatch.setattr(module, "_prepare", spy)
    first, accuracy = classifiers_for(train, test, cache_dir=cache, epochs=EPOCHS, progress=False)
    assert sorted(trained) == ["image", "text"]
    assert isinstance(first["image"], ImageClassifier) and isinstance(first["text"], TextClassifier)
    assert accuracy["text"] > 0.9
    files = sorted((cache / "classifiers").glob("*.npz"))
    assert len(files) == 2 and all(f.with_name(f.name + ".sha256").exists() for f in files)

    second, again = classifiers_for(train, test, cache_dir=cache, epochs=EPOCHS, progress=False)
    assert sorted(trained) == ["image", "text"]  # nothing retrained
    assert again == accuracy
    for name in ("image", "text"):
        for key, value in first[name].state_dict().items():
            assert torch.equal(value, second[name].state_dict()[key])

    path = classifier_cache_file(train, "text", cache, epochs=EPOCHS["text"], batch_size=128, seed=0)
    assert path in files
    path.write_bytes(path.read_bytes()[:200])
    with pytest.warns(UserWarning, match="corrupt or truncated"):
        classifiers_for(train, test, cache_dir=cache, epochs=EPOCHS, progress=False)
    assert sorted(trained) == ["image", "text", "text"]
    assert load_arrays(path) is not None  # rewritten, valid again


def test_cache_key_follows_the_data_and_the_training(captions, small_mnist, tmp_path):
    train, _ = captions
    path = classifier_cache_file(train, "image", tmp_path, epochs=1.0)
    assert path == classifier_cache_file(train, "image", tmp_path, epochs=1.0)
    assert path != classifier_cache_file(train, "text", tmp_path, epochs=1.0)
    assert path != classifier_cache_file(train, "image", tmp_path, epochs=2.0)
    assert classifier_cache_file(small_mnist("train", 100), "mnist", tmp_path) != classifier_cache_file(
        small_mnist("train", 101), "mnist", tmp_path
    )
    assert path.parent == tmp_path / "classifiers"


def test_shapes_and_errors(captions):
    train, _ = captions
    image, text = make_classifier(train, "image"), make_classifier(train, "text")
    x = train.modality("image", torch.arange(4))
    ids = train.modality("text", torch.arange(4))
    assert image(x).shape == (4, 10) and image.features(x).shape == (4, 128)
    assert text(ids).shape == (4, 10) and text.features(ids).shape == (4, 64)
    assert ImageClassifier((3, 32, 32))(torch.rand(2, 3, 32, 32)).shape == (2, 10)
    with pytest.raises(ValueError, match="expected images"):
        image(torch.rand(4, 1, 28, 28))
    with pytest.raises(ValueError, match="token ids"):
        text(ids.float())
    with pytest.raises(ValueError, match="must lie"):
        text(ids + 1000)
    with pytest.raises(KeyError, match="unknown modality"):
        make_classifier(train, "audio")
