"""User-facing classes: one object per method that owns its Pyro model, guide and ELBO.

Following ``pyro.contrib.cevae``, each class builds the Pyro pieces (which stay usable on their
own: ``vae.model``, ``vae.guide``, ``vae.elbo``) and adds ``fit``, ``encode``, ``predict``,
``generate``, ``log_likelihood``, ``save`` and ``load``. Queries are built from poutine handlers
(:mod:`pyro_mm.queries`).

====================  =================================  ==========================================
class                 guide                              objective
====================  =================================  ==========================================
:class:`UnimodalVAE`  :class:`UnimodalGuide`             ELBO (IWAE with K > 1)
:class:`MVAE`         :class:`ProductOfExpertsGuide`     :class:`TraceMVAE_ELBO`
:class:`MMVAE`        :class:`MixtureOfExpertsGuide`     :class:`TraceMixture_ELBO` (DReG, K = 10)
:class:`MoPoE`        :class:`MixtureOfProductsGuide`    :class:`TraceMixture_ELBO` (subset density)
:class:`MEME`         :class:`MutualSupervisionGuide`    :class:`TraceMEME_ELBO`
====================  =================================  ==========================================
"""

from __future__ import annotations

import io
import math
import os
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional, Sequence

import torch
from torch import nn
from tqdm.auto import tqdm

from .batch import MultimodalBatch
from .guides import (
    MixtureOfExpertsGuide,
    MixtureOfProductsGuide,
    MutualSupervisionGuide,
    ProductOfExpertsGuide,
    UnimodalGuide,
)
from .infer import TraceMEME_ELBO, TraceMixture_ELBO, TraceMVAE_ELBO
from .likelihoods import Categorical
from .metrics.likelihood import log_likelihood as _log_likelihood
from .modality import Modality
from .models import MutualSupervisionModel, SharedLatentModel
from .nets import ConvDecoder, ConvEncoder, MLPDecoder, MLPEncoder, TextDecoder, TextEncoder
from .queries import embed, predict, sample_prior

__all__ = ["default_modalities", "load_model", "MultimodalVAE", "UnimodalVAE", "MVAE", "MMVAE", "MoPoE", "MEME"]

CHECKPOINT_FORMAT = "pyro_mm-model"
CHECKPOINT_VERSION = 1


def default_modalities(dataset, z_dim: int, decoder: str = "mlp", standardize_colour: bool = False,
                       balance_images: bool = False) -> List[Modality]:
    """Default networks for a pyro_mm data set: convolutional encoders for images (decoders MLP or
    convolutional), convolutional text encoders and MLP text decoders for token sequences.

    :param bool standardize_colour: colour-image encoders read per-image standardised inputs
        (:func:`~pyro_mm.nets.standardize_images`: colour and brightness removed).
    :param bool balance_images: scale each image modality's log-likelihood by
        ``min_m |x_m| / |x_m|`` so that every image weighs as much as the smallest one (784/3072
        for a 3×32×32 SynDigits image beside a 28×28 MNIST digit; MMVAE's likelihood rescaling,
        normalised to the smallest image so that the KL and classifier terms keep their weight).
    """
    images = {n: math.prod(dataset.event_shapes[n]) for n in dataset.names
              if dataset.likelihoods[n] != "categorical" and len(dataset.event_shapes[n]) == 3}
    mods = []
    for name in dataset.names:
        shape = tuple(dataset.event_shapes[name])
        if dataset.likelihoods[name] == "categorical":
            vocab = len(dataset.vocab)
            mods.append(Modality(name, shape, TextEncoder(vocab, shape[0], z_dim),
                                 TextDecoder(z_dim, shape[0], vocab), Categorical(vocab)))
        elif len(shape) == 3:
            dec = ConvDecoder(z_dim, shape, (64, 32, 16)) if decoder == "conv" else MLPDecoder(z_dim, shape, (400,))
            enc = ConvEncoder(shape, z_dim, (32, 64, 64), standardize=standardize_colour and shape[0] == 3)
            scale = min(images.values()) / images[name] if balance_images else 1.0
            mods.append(Modality(name, shape, enc, dec, "bernoulli", likelihood_scale=scale))
        else:
            mods.append(Modality(name, shape, MLPEncoder(shape, z_dim), MLPDecoder(z_dim, shape), "bernoulli"))
    return mods


def _batches(data, batch_size: int, generator: torch.Generator) -> Iterable[MultimodalBatch]:
    """Shuffled mini-batches of a pyro_mm data set, a MultimodalBatch, or any iterable of batches."""
    if isinstance(data, MultimodalBatch):
        order = torch.randperm(len(data), generator=generator)
        return (data.select(order[i:i + batch_size]) for i in range(0, len(data), batch_size))
    if hasattr(data, "batch") and hasattr(data, "masks"):  # a pyro_mm data set
        order = torch.randperm(len(data), generator=generator)
        return (data.batch(order[i:i + batch_size]) for i in range(0, len(data), batch_size))
    return iter(data)


class MultimodalVAE(nn.Module):
    """Base class: a model, a guide and an ELBO, trained with an ``ELBOModule`` and Adam."""

    def __init__(self, modalities: Sequence[Modality], z_dim: int, **options):
        super().__init__()
        self.modalities = list(modalities)
        self.z_dim = int(z_dim)
        self.options = options
        self.model, self.guide, self.elbo = self.build(self.modalities, self.z_dim, **options)
        self.history: List[float] = []

    def build(self, modalities, z_dim, **options):  # pragma: no cover - abstract
        raise NotImplementedError

    @classmethod
    def for_dataset(cls, dataset, z_dim: int = 16, decoder: str = "mlp", **options) -> "MultimodalVAE":
        """The method with pyro_mm's default networks for ``dataset``'s modalities."""
        return cls(default_modalities(dataset, z_dim, decoder), z_dim, **options)

    @property
    def names(self):
        return self.model.names

    def prepare(self, data) -> None:
        """Hook run once before training (MEME initialises its pseudo-samples)."""

    def fit(self, data, epochs: int = 1, batch_size: int = 128, lr: float = 1e-3,
            time_budget: Optional[float] = None, seed: int = 0, progress: bool = True,
            callback: Optional[Callable[[int, float], None]] = None) -> List[float]:
        """Train with the method's ELBO; returns the mean loss per sample of every epoch.

        :param data: a pyro_mm data set, a :class:`MultimodalBatch` or an iterable of batches.
        :param time_budget: stop after this many seconds (checked after every step).
        """
        if epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {epochs}")
        if time_budget is not None and time_budget <= 0:
            raise ValueError(f"time_budget must be positive, got {time_budget}")
        self.prepare(data)
        module = self.elbo(self.model, self.guide)
        optim = torch.optim.Adam(module.parameters(), lr=lr)
        generator = torch.Generator().manual_seed(seed)
        start, device = time.time(), self.model.prior_loc.device
        for epoch in range(1, epochs + 1):
            total, count = 0.0, 0
            bar = tqdm(_batches(data, batch_size, generator), desc=f"epoch {epoch}/{epochs}", disable=not progress,
                       leave=False)
            for step, batch in enumerate(bar):
                batch = batch.to(device)
                optim.zero_grad()
                loss = module(batch)
                loss.backward()
                optim.step()
                total, count = total + loss.item(), count + len(batch)
                if step % 10 == 0:
                    bar.set_postfix(loss=f"{total / count:.2f}")
                if callback is not None:
                    callback(step, loss.item() / len(batch))
                if time_budget is not None and time.time() - start > time_budget:
                    break
            self.history.append(total / max(count, 1))
            if time_budget is not None and time.time() - start > time_budget:
                break
        return list(self.history)

    def encode(self, batch: MultimodalBatch) -> Dict[str, torch.Tensor]:
        """Posterior means: ``"joint"`` and, for expert guides, each modality's own expert."""
        return embed(self.guide, batch)

    def predict(self, batch: MultimodalBatch, given: Sequence[str], generate: Sequence[str],
                mean: bool = True) -> Dict[str, torch.Tensor]:
        """Condition on the modalities ``given`` and generate ``generate``."""
        return predict(self.model, self.guide, batch, given, generate, mean)

    def generate(self, num_samples: int, mean: bool = True) -> Dict[str, torch.Tensor]:
        """Unconditional samples: z ~ p(z) and every modality."""
        return sample_prior(self.model, num_samples, mean)

    def log_likelihood(self, batch: MultimodalBatch, num_particles: int = 1000) -> Dict[str, torch.Tensor]:
        """Importance-sampled log p(X_o) per sample and its Pareto k̂."""
        return _log_likelihood(self.model, self.guide, batch, num_particles)

    # --- persistence ----------------------------------------------------------------------------
    def save(self, path) -> Path:
        """Write the modalities, options and weights atomically (a temporary file renamed over
        ``path``, so an interrupted save leaves the previous file intact)."""
        path = Path(path)
        for param in self.parameters():  # Pyro's param store tags parameters with a weak reference
            param.__dict__.pop("unconstrained", None)
        buffer = io.BytesIO()
        torch.save({"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "class": type(self).__name__,
                    "modalities": self.modalities, "z_dim": self.z_dim, "options": self.options,
                    "state_dict": self.state_dict(), "history": self.history}, buffer)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            f.write(buffer.getvalue())
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path, map_location="cpu") -> "MultimodalVAE":
        """Read an object written by :meth:`save`; clear errors for a missing, corrupt or foreign file."""
        payload = _read_checkpoint(path, map_location)
        if payload.get("class") != cls.__name__:
            raise TypeError(f"{path} holds a {payload.get('class')}, not a {cls.__name__}")
        obj = cls(payload["modalities"], payload["z_dim"], **payload["options"])
        obj.load_state_dict(payload["state_dict"])
        obj.history = list(payload["history"])
        return obj


def _read_checkpoint(path, map_location) -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no pyro_mm checkpoint at {path}")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as error:
        raise ValueError(f"{path} is corrupt or not a pyro_mm checkpoint ({type(error).__name__}: {error})") from None
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not a pyro_mm model checkpoint")
    if payload.get("version") != CHECKPOINT_VERSION:
        raise ValueError(f"{path} has checkpoint version {payload.get('version')}, this pyro_mm reads "
                         f"{CHECKPOINT_VERSION}")
    return payload


def load_model(path, map_location="cpu") -> "MultimodalVAE":
    """Load a saved model of any pyro_mm class."""
    name = _read_checkpoint(path, map_location).get("class")
    classes = {c.__name__: c for c in (UnimodalVAE, MVAE, MMVAE, MoPoE, MEME)}
    if name not in classes:
        raise ValueError(f"{path} holds an unknown model class {name!r}")
    return classes[name].load(path, map_location)


class UnimodalVAE(MultimodalVAE):
    """A VAE on the first modality only (the baseline of the generative-quality gap)."""

    def __init__(self, modalities, z_dim, num_particles: int = 1):
        super().__init__(list(modalities)[:1], z_dim, num_particles=num_particles)

    def build(self, modalities, z_dim, num_particles):
        return SharedLatentModel(modalities, z_dim), UnimodalGuide(modalities[0]), TraceMixture_ELBO(num_particles)


class MVAE(MultimodalVAE):
    """Product of experts with the MVAE sub-sampled objective (Wu & Goodman 2018)."""

    def __init__(self, modalities, z_dim, num_random_subsets: int = 0, annealing_steps: int = 0):
        super().__init__(modalities, z_dim, num_random_subsets=num_random_subsets, annealing_steps=annealing_steps)

    def build(self, modalities, z_dim, **options):
        return SharedLatentModel(modalities, z_dim), ProductOfExpertsGuide(modalities), TraceMVAE_ELBO(**options)


class MMVAE(MultimodalVAE):
    """Mixture of experts with the stratified IWAE bound and DReG gradients (Shi et al. 2019)."""

    def __init__(self, modalities, z_dim, num_particles: int = 10, estimator: str = "dreg"):
        super().__init__(modalities, z_dim, num_particles=num_particles, estimator=estimator)

    def build(self, modalities, z_dim, **options):
        return (SharedLatentModel(modalities, z_dim), MixtureOfExpertsGuide(modalities),
                TraceMixture_ELBO(density="mixture", **options))


class MoPoE(MultimodalVAE):
    """Mixture of products of experts with the (sub-sampled) mixture bound (Sutter et al. 2021)."""

    def __init__(self, modalities, z_dim, num_subsets: Optional[int] = None):
        super().__init__(modalities, z_dim, num_subsets=num_subsets)

    def build(self, modalities, z_dim, num_subsets):
        return (SharedLatentModel(modalities, z_dim), MixtureOfProductsGuide(modalities),
                TraceMixture_ELBO(num_subsets=num_subsets, density="subset"))


class MEME(MultimodalVAE):
    """Mutual supervision with pseudo-sample priors for missing modalities (Joy et al. 2022).

    ``preset`` picks the paper's (λ = 1, directions averaged) or the reference code's (λ = 10,
    summed) objective; ``classifier_weight`` (λ) and ``combine`` override it (see
    :class:`~pyro_mm.infer.TraceMEME_ELBO`)."""

    def __init__(self, modalities, z_dim, num_particles: int = 10, num_pseudo_samples: int = 128,
                 preset: str = "paper", extension: bool = False, classifier_weight: Optional[float] = None,
                 combine: Optional[str] = None):
        self.num_pseudo_samples = num_pseudo_samples
        self._pseudo_ready = False
        super().__init__(modalities, z_dim, num_particles=num_particles, num_pseudo_samples=num_pseudo_samples,
                         preset=preset, extension=extension, classifier_weight=classifier_weight, combine=combine)

    def build(self, modalities, z_dim, num_pseudo_samples, **options):
        model = MutualSupervisionModel(modalities, z_dim, pseudo_samples=num_pseudo_samples)
        return model, MutualSupervisionGuide(modalities), TraceMEME_ELBO(**options)

    def prepare(self, data) -> None:
        """Initialise the pseudo-samples from real observed samples of the training data."""
        if self._pseudo_ready:
            return
        generator = torch.Generator().manual_seed(0)
        first = next(iter(_batches(data, 4 * self.num_pseudo_samples, generator)))
        init = {}
        for n in first.names:
            rows = first[n][first.observed(n)][: self.num_pseudo_samples]
            if len(rows):
                init[n] = rows
        self.model.init_pseudo_samples(init)
        self._pseudo_ready = True
