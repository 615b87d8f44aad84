"""Small builders shared by the tests (imported as ``helpers`` from the tests folder).

The cases of the conformance tests come from the method registry: every registered method (with
quick options: few particles and pseudo-samples, small private latents, the many-modality
extension where it is needed) and its declared variants, plus the pairings of ELBO and guide that
no method names but the library supports.
"""

from dataclasses import dataclass
from typing import Callable, Dict

import torch

from pyro_mm.batch import MultimodalBatch
from pyro_mm.guides import (
    MixtureOfExpertsGuide,
    MixtureOfProductsGuide,
    ProductOfExpertsGuide,
    UnimodalGuide,
)
from pyro_mm.infer import TraceMixture_ELBO
from pyro_mm.registry import METHODS
from pyro_mm.modality import Modality
from pyro_mm.models import SharedLatentModel
from pyro_mm.nets import MLPDecoder, MLPEncoder

Z_DIM = 3


def small_modalities(num=2, z_dim=Z_DIM):
    """Two (or more) small modalities: a Bernoulli one and Normal ones, tiny MLPs (in the default
    dtype) whose latent size (encoder output, decoder input) is ``z_dim``."""
    mods = []
    for i in range(num):
        d = 5 + i
        lik = "bernoulli" if i == 0 else "normal"
        enc, dec = MLPEncoder((d,), z_dim, (8,)), MLPDecoder(z_dim, (d,), (8,))
        mods.append(Modality(f"m{i}", (d,), enc, dec, lik))
    return mods


def small_batch(mods, batch_size=12, missing=0.0, seed=0):
    """Random data (in the default dtype) for ``mods`` with a fraction ``missing`` of modality
    entries hidden (never a whole sample)."""
    g = torch.Generator().manual_seed(seed)
    data = {}
    for m in mods:
        x = torch.rand((batch_size,) + m.event_shape, generator=g)
        data[m.name] = x.round() if type(m.likelihood).__name__ == "Bernoulli" else 2 * x - 1
    mask = torch.rand(batch_size, len(mods), generator=g) >= missing
    empty = ~mask.any(-1)
    mask[empty, torch.randint(len(mods), (int(empty.sum()),), generator=g)] = True
    return MultimodalBatch(data, mask)


def quick_options(cls, num_modalities: int) -> Dict:
    """Options that keep a method's tests fast and valid for ``num_modalities`` modalities, for
    whichever of them the method declares."""
    declared = {o.name for o in cls.options}
    rules = {"num_particles": 3, "num_pseudo_samples": 8, "private_dim": 2}
    options = {k: v for k, v in rules.items() if k in declared}
    if "extension" in declared and num_modalities > 2:
        options["extension"] = True
    return options


def make_vae(cls, num_modalities=2, z_dim=Z_DIM, **options):
    """A method on :func:`small_modalities` sized for it, with quick options (overridden by ``options``)."""
    options = {**quick_options(cls, num_modalities), **options}
    size = cls.latent_size(z_dim, **cls.resolve_options(options))
    return cls(small_modalities(num_modalities, size), z_dim, **options)


@dataclass
class Case:
    """An objective and a guide the library supports: ``make(num_modalities)`` gives
    ``(model, guide, elbo factory, modalities)``."""

    id: str
    make: Callable


def _method_case(id, cls, **options):
    def make(num_modalities):
        vae = make_vae(cls, num_modalities, **options)

        def fresh_elbo():  # the method's objective, built without drawing from the random state
            with torch.random.fork_rng():
                return make_vae(cls, num_modalities, **options).elbo
        return vae.model, vae.guide, fresh_elbo, vae.modalities
    return Case(id, make)


def _pairing(id, guide_cls, make_elbo):
    def make(num_modalities):
        mods = small_modalities(num_modalities)
        return SharedLatentModel(mods, Z_DIM), guide_cls(mods), make_elbo, mods
    return Case(id, make)


#: variants of registered methods worth their own case
VARIANTS = [("mvae-random-subsets", "mvae", {"num_random_subsets": 1}),
            ("mvae-k3-dreg", "mvae", {"num_particles": 3, "estimator": "dreg"}),
            ("mmvae-k1", "mmvae", {"num_particles": 1, "estimator": "iwae"}),
            ("mopoe-k1", "mopoe", {"num_subsets": 1}),
            ("meme-rao-blackwell", "meme", {"rao_blackwell": True}),
            ("mmvae+-normal", "mmvae+", {"family": "normal"}),
            ("mmvae+-one-subset", "mmvae+", {"num_subsets": 1, "estimator": "iwae"})]


def method_cases():
    """Every registered method, its variants, and the further ELBO × guide pairings."""
    cases = [_method_case(name, cls) for name, cls in METHODS.items() if name != "unimodal"]
    cases += [_method_case(id, METHODS[name], **options) for id, name, options in VARIANTS]
    cases += [
        _pairing("poe-mixture", ProductOfExpertsGuide, lambda: TraceMixture_ELBO(num_particles=2)),
        _pairing("mmvae-subset", MixtureOfExpertsGuide, lambda: TraceMixture_ELBO(density="subset", num_subsets=1)),
        _pairing("mopoe-k3-dreg-mixture", MixtureOfProductsGuide,
                 lambda: TraceMixture_ELBO(num_particles=3, estimator="dreg", density="mixture")),
    ]
    return cases


def build(guide_cls, mods, z_dim=Z_DIM):
    return SharedLatentModel(mods, z_dim), guide_cls(mods)


__all__ = ["Z_DIM", "small_modalities", "small_batch", "quick_options", "make_vae", "method_cases", "build",
           "UnimodalGuide", "Case", "VARIANTS"]
