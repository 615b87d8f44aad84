"""Small builders shared by the tests (imported as ``helpers`` from the tests folder)."""

import torch

from pyro_mm.batch import MultimodalBatch
from pyro_mm.guides import (
    MixtureOfExpertsGuide,
    MixtureOfProductsGuide,
    ProductOfExpertsGuide,
    UnimodalGuide,
)
from pyro_mm.infer import TraceMixture_ELBO, TraceMVAE_ELBO
from pyro_mm.modality import Modality
from pyro_mm.models import SharedLatentModel
from pyro_mm.nets import MLPDecoder, MLPEncoder

Z_DIM = 3


def small_modalities(num=2, z_dim=Z_DIM, dtype=torch.float32):
    """Two (or more) small modalities: a Bernoulli one and Normal ones, tiny MLPs."""
    mods = []
    for i in range(num):
        d = 5 + i
        lik = "bernoulli" if i == 0 else "normal"
        enc, dec = MLPEncoder((d,), z_dim, (8,)).to(dtype), MLPDecoder(z_dim, (d,), (8,)).to(dtype)
        mods.append(Modality(f"m{i}", (d,), enc, dec, lik))
    return mods


def small_batch(mods, batch_size=12, missing=0.0, seed=0, dtype=torch.float32):
    """Random data for ``mods`` with a fraction ``missing`` of modality entries hidden (never a
    whole sample)."""
    g = torch.Generator().manual_seed(seed)
    data = {}
    for m in mods:
        x = torch.rand((batch_size,) + m.event_shape, generator=g, dtype=dtype)
        data[m.name] = x.round() if type(m.likelihood).__name__ == "Bernoulli" else 2 * x - 1
    mask = torch.rand(batch_size, len(mods), generator=g) >= missing
    empty = ~mask.any(-1)
    mask[empty, torch.randint(len(mods), (int(empty.sum()),), generator=g)] = True
    return MultimodalBatch(data, mask)


def method_cases():
    """(id, guide factory, ELBO factory) for every ELBO class × guide pairing pyro_mm offers."""
    return [
        ("mvae", ProductOfExpertsGuide, lambda: TraceMVAE_ELBO(num_random_subsets=1)),
        ("mvae-k3-dreg", ProductOfExpertsGuide, lambda: TraceMVAE_ELBO(num_particles=3, estimator="dreg")),
        ("poe-mixture", ProductOfExpertsGuide, lambda: TraceMixture_ELBO(num_particles=2)),
        ("mmvae", MixtureOfExpertsGuide, lambda: TraceMixture_ELBO()),
        ("mmvae-k4-dreg", MixtureOfExpertsGuide, lambda: TraceMixture_ELBO(num_particles=4, estimator="dreg")),
        ("mmvae-subset", MixtureOfExpertsGuide, lambda: TraceMixture_ELBO(density="subset", num_subsets=1)),
        ("mopoe", MixtureOfProductsGuide, lambda: TraceMixture_ELBO(density="subset")),
        ("mopoe-k1", MixtureOfProductsGuide, lambda: TraceMixture_ELBO(density="subset", num_subsets=1)),
        ("mopoe-k3-dreg", MixtureOfProductsGuide,
         lambda: TraceMixture_ELBO(num_particles=3, estimator="dreg", density="mixture")),
    ]


def build(guide_cls, mods, z_dim=Z_DIM):
    return SharedLatentModel(mods, z_dim), guide_cls(mods)


__all__ = ["Z_DIM", "small_modalities", "small_batch", "method_cases", "build", "UnimodalGuide"]
