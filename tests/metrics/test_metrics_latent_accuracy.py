import pytest
import torch

from pyro_mm.metrics.latent_accuracy import linear_probe_accuracy


def test_random_embedding_is_chance_and_label_embedding_is_perfect():
    gen = torch.Generator().manual_seed(0)
    y_train, y_test = torch.randint(10, (2000,), generator=gen), torch.randint(10, (2000,), generator=gen)
    z_train, z_test = torch.randn(2000, 16, generator=gen), torch.randn(2000, 16, generator=gen)
    assert abs(linear_probe_accuracy(z_train, y_train, z_test, y_test) - 0.1) < 0.04
    codes = torch.randn(10, 16, generator=gen)
    z_train = codes[y_train] + 0.3 * torch.randn(2000, 16, generator=gen)
    z_test = codes[y_test] + 0.3 * torch.randn(2000, 16, generator=gen)
    assert linear_probe_accuracy(z_train.numpy(), y_train.numpy(), z_test, y_test) > 0.99


def test_bad_inputs():
    z, y = torch.randn(10, 3), torch.arange(10) % 2
    with pytest.raises(ValueError, match="expected embeddings"):
        linear_probe_accuracy(z, y[:5], z, y)
    with pytest.raises(ValueError, match="embedding sizes differ"):
        linear_probe_accuracy(z, y, torch.randn(10, 4), y)
    with pytest.raises(ValueError, match="integers"):
        linear_probe_accuracy(z, y.float(), z, y)
    with pytest.raises(ValueError, match="no samples"):
        linear_probe_accuracy(z[:0], y[:0], z, y)
