"""MultimodalBatch: validation on entry, placeholders, moves and collation."""

import pytest
import torch
from mm_helpers import small_modalities

from pyro_mm.batch import MultimodalBatch, collate_multimodal
from pyro_mm.models import SharedLatentModel


def _data(b=4):
    return {"img": torch.rand(b, 2, 3), "txt": torch.randint(0, 5, (b, 7))}


def test_missing_entries_become_zeros_whatever_the_placeholder():
    data = _data()
    data["img"][1] = float("nan")
    mask = torch.tensor([[1, 1], [0, 1], [1, 0], [1, 1]], dtype=torch.bool)
    batch = MultimodalBatch(data, mask)
    assert torch.equal(batch["img"][1], torch.zeros(2, 3))
    assert torch.equal(batch["txt"][2], torch.zeros(7, dtype=torch.long))
    assert torch.equal(batch["img"][0], data["img"][0])


@pytest.mark.parametrize("mask,message", [
    (torch.ones(4, 3, dtype=torch.bool), "mask has shape"),
    (torch.ones(4, 2), "boolean"),
    (torch.tensor([[1, 1], [0, 0], [1, 0], [1, 1]], dtype=torch.bool), "observe no modality"),
])
def test_bad_masks_are_named(mask, message):
    with pytest.raises((ValueError, TypeError), match=message):
        MultimodalBatch(_data(), mask)


def test_nan_or_inf_in_observed_entries_is_an_error_naming_the_modality():
    data = _data()
    data["img"][2, 0, 0] = float("inf")
    with pytest.raises(ValueError, match="'img'.*NaN or inf"):
        MultimodalBatch(data)


def test_batch_sizes_and_keys_are_checked():
    data = _data()
    data["txt"] = data["txt"][:3]
    with pytest.raises(ValueError, match="batch size"):
        MultimodalBatch(data)
    with pytest.raises(KeyError, match="unknown"):
        MultimodalBatch(_data(), names=("img",))
    with pytest.raises(TypeError, match="torch.Tensor"):
        MultimodalBatch({"img": [[1.0]]})


def test_models_name_unknown_and_missing_modalities_wrong_shapes_and_dtypes():
    mods = small_modalities(2)
    model = SharedLatentModel(mods, 3)
    good = {"m0": torch.rand(4, 5).round(), "m1": torch.randn(4, 6)}
    with pytest.raises(KeyError, match=r"unknown \['extra'\] and lacks \['m1'\]"):
        model(MultimodalBatch({"m0": good["m0"], "extra": good["m1"]}))
    with pytest.raises(ValueError, match="'m1': expected shape"):
        model(MultimodalBatch({"m0": good["m0"], "m1": torch.randn(4, 7)}))
    with pytest.raises(TypeError, match="'m0'.*floating-point"):
        model(MultimodalBatch({"m0": good["m0"].long(), "m1": good["m1"]}))
    with pytest.raises(ValueError, match="'m0'.*Bernoulli data must lie in"):
        model(MultimodalBatch({"m0": good["m0"] + 2, "m1": good["m1"]}))
    with pytest.raises(TypeError, match="MultimodalBatch"):
        model(good)


def test_to_select_only_and_collate_keep_the_mask():
    mask = torch.tensor([[1, 1], [0, 1], [1, 0], [1, 1]], dtype=torch.bool)
    batch = MultimodalBatch(_data(), mask, labels=torch.arange(4))
    moved = batch.to("cpu", torch.float64)
    assert moved["img"].dtype == torch.float64 and moved["txt"].dtype == torch.long
    assert torch.equal(moved.mask, mask) and moved.mask.dtype == torch.bool
    only = batch.only(["img"])
    assert only.names == ("img",) and len(only) == 3 and only.labels.tolist() == [0, 2, 3]
    items = [{"data": {n: batch[n][i] for n in batch.names}, "mask": mask[i], "label": i} for i in range(4)]
    collated = collate_multimodal(items)
    assert torch.equal(collated.mask, mask) and torch.equal(collated["img"], batch["img"])
    assert collated.labels.tolist() == [0, 1, 2, 3]
