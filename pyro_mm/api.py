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

import hashlib
import inspect
import itertools
import math
import time
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Union

import torch
from torch import nn
from tqdm.auto import tqdm

from .batch import MultimodalBatch
from .export import to_datatree
from .checkpoint import MODEL_FORMAT, TRAINING_FORMAT, VERSIONS, atomic_save, capture_rng, read_payload, restore_rng
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

def default_modalities(dataset, z_dim: int, decoder: Union[str, Mapping[str, str]] = "mlp",
                       encoder: Union[str, Mapping[str, str]] = "conv", standardize_colour: bool = False,
                       balance_images: bool = False) -> List[Modality]:
    """Default networks for a pyro_mm data set: for images, convolutional or MLP encoders and MLP or
    convolutional decoders; for token sequences, convolutional encoders and MLP decoders.

    :param decoder: ``"mlp"`` or ``"conv"`` for every image modality, or a mapping from modality
        name to either (modalities not named keep ``"mlp"``).
    :param encoder: ``"conv"`` or ``"mlp"``, likewise (default ``"conv"``). An MLP reads a 28×28
        digit about ten times faster than the convolutions, forward and backward, on a CPU.
    :param bool standardize_colour: colour-image encoders read per-image standardised inputs
        (:func:`~pyro_mm.nets.standardize_images`: colour and brightness removed).
    :param bool balance_images: scale each image modality's log-likelihood by
        ``min_m |x_m| / |x_m|`` so that every image weighs as much as the smallest one (784/3072
        for a 3×32×32 SynDigits image beside a 28×28 MNIST digit; MMVAE's likelihood rescaling,
        normalised to the smallest image so that the KL and classifier terms keep their weight).
    """
    images = {n: math.prod(dataset.event_shapes[n]) for n in dataset.names
              if dataset.likelihoods[n] != "categorical" and len(dataset.event_shapes[n]) == 3}
    decoders = _network_kinds("decoder", decoder, "mlp", images)
    encoders = _network_kinds("encoder", encoder, "conv", images)
    mods = []
    for name in dataset.names:
        shape = tuple(dataset.event_shapes[name])
        if dataset.likelihoods[name] == "categorical":
            vocab = len(dataset.vocab)
            mods.append(Modality(name, shape, TextEncoder(vocab, shape[0], z_dim),
                                 TextDecoder(z_dim, shape[0], vocab), Categorical(vocab)))
        elif len(shape) == 3:
            dec = ConvDecoder(z_dim, shape, (64, 32, 16)) if decoders[name] == "conv" else MLPDecoder(z_dim, shape, (400,))
            standardize = standardize_colour and shape[0] == 3
            enc = (ConvEncoder(shape, z_dim, (32, 64, 64), standardize=standardize) if encoders[name] == "conv"
                   else MLPEncoder(shape, z_dim, (512,), standardize=standardize))
            scale = min(images.values()) / images[name] if balance_images else 1.0
            mods.append(Modality(name, shape, enc, dec, "bernoulli", likelihood_scale=scale))
        else:
            mods.append(Modality(name, shape, MLPEncoder(shape, z_dim), MLPDecoder(z_dim, shape), "bernoulli"))
    return mods


def _network_kinds(role: str, spec, default: str, images) -> Dict[str, str]:
    """``"conv"`` or ``"mlp"`` for every image modality, from one kind or a mapping name -> kind."""
    named = dict(spec) if isinstance(spec, Mapping) else {}
    unknown = sorted(set(named) - set(images))
    if unknown:
        raise ValueError(f"{role} kinds given for {unknown}, which are not image modalities of the data set "
                         f"({sorted(images)})")
    kinds = {n: named.get(n, default) if isinstance(spec, Mapping) else spec for n in images}
    bad = {n: k for n, k in kinds.items() if k not in ("conv", "mlp")}
    if bad:
        raise ValueError(f"{role} must be 'conv' or 'mlp' (or a mapping of modality names to them), got {bad}")
    return kinds


def _adam(params, lr: float) -> torch.optim.Adam:
    """Adam with its update fused into one kernel where the parameters' device has one (CPU and
    CUDA do: on this project's 2-core CPU 7 % of a main-job step), else the multi-tensor one."""
    params = list(params)
    try:
        return torch.optim.Adam(params, lr=lr, fused=True)
    except RuntimeError:  # a device or dtype without a fused kernel
        return torch.optim.Adam(params, lr=lr)


def _batches(data, batch_size: int, generator: torch.Generator, skip: int = 0) -> Iterable[MultimodalBatch]:
    """Shuffled mini-batches of a pyro_mm data set, a MultimodalBatch, or any iterable of batches,
    without the first ``skip`` batches (a resumed epoch)."""
    if _masks(data) is not None:
        order = torch.randperm(len(data), generator=generator)
        take = data.select if isinstance(data, MultimodalBatch) else data.batch
        return (take(order[i:i + batch_size]) for i in range(skip * batch_size, len(data), batch_size))
    return itertools.islice(iter(data), skip, None)


def _masks(data) -> Optional[torch.Tensor]:
    """The observation masks of a :class:`MultimodalBatch` or a pyro_mm data set (else ``None``)."""
    if isinstance(data, MultimodalBatch):
        return data.mask
    if hasattr(data, "batch") and hasattr(data, "masks"):
        return data.masks
    return None


def _num_batches(data, batch_size: int) -> Optional[int]:
    """Batches per epoch (``None`` for an iterable without a length)."""
    if _masks(data) is not None:
        return math.ceil(len(data) / batch_size)
    return len(data) if hasattr(data, "__len__") else None


def _data_settings(data) -> dict:
    """What a resumed run checks about its data: the size and a hash of the observation masks."""
    masks = _masks(data)
    if masks is None:
        return {"data_size": None, "masks_sha1": None}
    digest = hashlib.sha1(masks.detach().cpu().numpy().tobytes()).hexdigest()[:16]
    return {"data_size": len(data), "masks_sha1": digest}


class MultimodalVAE(nn.Module):
    """Base class: a model, a guide and an ELBO, trained with an ``ELBOModule`` and Adam."""

    def __init__(self, modalities: Sequence[Modality], z_dim: int, **options):
        super().__init__()
        self.modalities = list(modalities)
        self.z_dim = int(z_dim)
        self.options = options
        self.model, self.guide, self.elbo = self.build(self.modalities, self.z_dim, **options)
        self.history: List[float] = []  #: mean loss per sample of every epoch
        self.step_losses: List[float] = []  #: loss per sample of every training step

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
            callback: Optional[Callable[[int, float], None]] = None, checkpoint=None,
            checkpoint_every: int = 0, resume: Union[bool, str, Path] = False,
            config: Optional[dict] = None) -> List[float]:
        """Train with the method's ELBO; returns the mean loss per sample of every epoch (the loss
        of every step is appended to ``self.step_losses``).

        :param data: a pyro_mm data set, a :class:`MultimodalBatch` or an iterable of batches (a
            resumed run repeats an uninterrupted one exactly for the first two; an iterable must
            itself yield the same batches again).
        :param time_budget: stop after this many seconds of this call (checked after every step).
        :param callback: called after every step with (step within the epoch, loss per sample).
        :param checkpoint: path of a training checkpoint, written atomically every
            ``checkpoint_every`` steps (if > 0) and at the end. On Ctrl-C it is written once more
            if the interrupt came between two steps (else the last one stays as it was), and the
            ``KeyboardInterrupt`` is raised again.
        :param resume: ``True`` continues from ``checkpoint``, a path continues from that file
            (and, without ``checkpoint``, keeps writing to it). The run then produces the same
            losses and parameters as one that was never interrupted: the file holds the weights,
            Adam's state, the epoch and batch reached, the data-order and global random states
            and the loss history. A file of another class, other modalities, options or settings
            is refused with an error naming the difference, and left as it is.
        :param config: further settings stored in the checkpoint that a resumed run must repeat
            (e.g. the data set's name and observation scheme, as ``pyro-mm train`` passes).
        """
        if epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {epochs}")
        if time_budget is not None and time_budget <= 0:
            raise ValueError(f"time_budget must be positive, got {time_budget}")
        source = checkpoint if resume is True else (resume or None)
        checkpoint = checkpoint if checkpoint is not None else source
        if (resume is True or checkpoint_every) and checkpoint is None:
            raise ValueError("resume and checkpoint_every need a checkpoint path")
        settings = {**(config or {}), "batch_size": batch_size, "lr": lr, "seed": seed, **_data_settings(data)}
        state = self._read_training_state(source, settings) if source is not None else None
        self.prepare(data)
        module = self.elbo(self.model, self.guide)
        optim = _adam(module.parameters(), lr)
        generator = torch.Generator().manual_seed(seed)
        position = {"epoch": 1, "skip": 0, "total": 0.0, "count": 0}  # where the next step starts
        if state is not None:
            optim.load_state_dict(state["optimizer"])
            generator.set_state(state["epoch_generator"])
            restore_rng(state["rng"])
            position = state["position"]
        epoch_start = generator.get_state()  # the data order of position's epoch is drawn from it

        def save():
            atomic_save({"format": TRAINING_FORMAT, "version": VERSIONS[TRAINING_FORMAT], **self._description(),
                         "state_dict": self.state_dict(), "history": self.history, "step_losses": self.step_losses,
                         "optimizer": optim.state_dict(), "rng": capture_rng(), "epoch_generator": epoch_start,
                         "position": position, "settings": settings,
                         "pseudo_ready": getattr(self, "_pseudo_ready", None)}, checkpoint)

        start, device = time.time(), self.model.prior_loc.device
        out_of_time, between_steps, saved = False, True, {}
        try:
            while position["epoch"] <= epochs and not out_of_time:
                bar = tqdm(_batches(data, batch_size, generator, position["skip"]), initial=position["skip"],
                           total=_num_batches(data, batch_size), desc=f"epoch {position['epoch']}/{epochs}",
                           disable=not progress, leave=False)
                for step, batch in enumerate(bar, position["skip"]):
                    between_steps = False
                    batch = batch.to(device)
                    optim.zero_grad()
                    loss = module(batch)
                    loss.backward()
                    value = loss.item()  # read before the update: a NaN step changes no parameter
                    if not math.isfinite(value):
                        raise FloatingPointError(
                            f"the loss is {value} at step {len(self.step_losses) + 1} (epoch {position['epoch']}, "
                            f"batch {step + 1}); this step updated no parameter and wrote no checkpoint; "
                            "lower the learning rate or check the data")
                    optim.step()
                    self.step_losses.append(value / len(batch))
                    position = {**position, "skip": step + 1, "total": position["total"] + value,
                                "count": position["count"] + len(batch)}
                    between_steps = True
                    if callback is not None:
                        callback(step, value / len(batch))
                    out_of_time = time_budget is not None and time.time() - start > time_budget
                    due = checkpoint_every and len(self.step_losses) % checkpoint_every == 0 and not out_of_time
                    if due:
                        save()
                        saved = {"checkpoint": f"step {len(self.step_losses)}"}
                    if due or step % 10 == 0:
                        bar.set_postfix({"loss": f"{position['total'] / position['count']:.2f}", **saved})
                    if out_of_time:
                        break
                bar.close()
                if not out_of_time:
                    between_steps = False
                    self.history.append(position["total"] / max(position["count"], 1))
                    position = {"epoch": position["epoch"] + 1, "skip": 0, "total": 0.0, "count": 0}
                    epoch_start = generator.get_state()
                    between_steps = True
        except KeyboardInterrupt:
            if checkpoint is not None and between_steps:
                save()
            raise
        if checkpoint is not None:
            save()
        return list(self.history)

    def _read_training_state(self, path, settings) -> dict:
        """Load a training checkpoint's weights and histories into this object and return it, after
        checking that it was written by an object and a run like these (else ``ValueError``)."""
        state = read_payload(path, TRAINING_FORMAT)
        for key, value in settings.items():
            if state["settings"].get(key) != value:
                raise ValueError(f"{path} was written with {key}={state['settings'].get(key)!r}, this run has "
                                 f"{key}={value!r}; resume with the same settings")
        _check_compatible(state, self._description(), path, type(self))
        self.load_state_dict(state["state_dict"])
        self.history = list(state["history"])
        self.step_losses = list(state["step_losses"])
        if state["pseudo_ready"] is not None:
            self._pseudo_ready = state["pseudo_ready"]
        return state

    def _description(self) -> dict:
        """What must agree between an object and a file it loads: class, modalities, options."""
        for param in self.parameters():  # Pyro's param store tags parameters with a weak reference
            param.__dict__.pop("unconstrained", None)
        return {"class": type(self).__name__, "modalities": self.modalities, "z_dim": self.z_dim,
                "options": self.options}

    def encode(self, batch: MultimodalBatch) -> Dict[str, torch.Tensor]:
        """Posterior means ``[B, D]``: ``"joint"`` given everything observed and, with more than
        one modality, each modality's name: given that modality alone (NaN where it is missing);
        :func:`pyro_mm.queries.embed`."""
        return embed(self.guide, batch)

    def predict(self, batch: MultimodalBatch, given: Sequence[str], generate: Sequence[str],
                mean: bool = True) -> Dict[str, torch.Tensor]:
        """Condition on the modalities ``given`` and generate ``generate``."""
        return predict(self.model, self.guide, batch, given, generate, mean)

    def generate(self, num_samples: int, mean: bool = True) -> Dict[str, torch.Tensor]:
        """Unconditional samples: z ~ p(z) and every modality."""
        return sample_prior(self.model, num_samples, mean)

    def to_arviz(self, batch: MultimodalBatch, num_samples: int = 100, step_losses=None, seed=None):
        """Posterior draws of z for ``batch`` and the training trace as an ArviZ DataTree
        (:func:`pyro_mm.export.to_datatree`; save it with :func:`pyro_mm.export.save_datatree`).
        ``step_losses`` defaults to the loss of every training step (``self.step_losses``)."""
        if step_losses is None and self.step_losses:
            step_losses = self.step_losses
        return to_datatree(self, batch, num_samples, step_losses, seed)

    def log_likelihood(self, batch: MultimodalBatch, num_particles: int = 1000) -> Dict[str, torch.Tensor]:
        """Importance-sampled log p(X_o) per sample and its Pareto k̂."""
        return _log_likelihood(self.model, self.guide, batch, num_particles)

    # --- persistence ----------------------------------------------------------------------------
    def save(self, path) -> Path:
        """Write the modalities, options and weights atomically (a temporary file renamed over
        ``path``, so an interrupted save leaves the previous file intact)."""
        return atomic_save({"format": MODEL_FORMAT, "version": VERSIONS[MODEL_FORMAT], **self._description(),
                            "state_dict": self.state_dict(), "history": self.history,
                            "step_losses": self.step_losses}, path)

    @classmethod
    def load(cls, path, map_location="cpu") -> "MultimodalVAE":
        """Read an object written by :meth:`save`; clear errors for a missing, corrupt or foreign file."""
        payload = read_payload(path, MODEL_FORMAT, map_location)
        if payload.get("class") != cls.__name__:
            raise TypeError(f"{path} holds a {payload.get('class')}, not a {cls.__name__}")
        obj = cls(payload["modalities"], payload["z_dim"], **payload["options"])
        obj.load_state_dict(payload["state_dict"])
        obj.history = list(payload["history"])
        obj.step_losses = list(payload.get("step_losses", []))  # absent from files of pyro_mm 0.1.0
        if hasattr(obj, "_pseudo_ready"):
            obj._pseudo_ready = True
        return obj


def _signature(description: dict) -> dict:
    mods = [(m.name, m.event_shape, type(m.likelihood).__name__, m.likelihood_scale,
             type(m.encoder).__name__, type(m.decoder).__name__) for m in description["modalities"]]
    return {"class": description["class"], "modalities": mods, "z_dim": description["z_dim"],
            "options": description["options"]}


def _check_compatible(payload: dict, description: dict, path, cls) -> None:
    """``ValueError`` naming the first difference between a file and the object of class ``cls``
    loading it; an option the file does not name counts as the constructor's default (files
    written before the option existed)."""
    saved, mine = _signature(payload), _signature(description)
    defaults = {name: p.default for name, p in inspect.signature(cls).parameters.items()
                if p.default is not inspect.Parameter.empty}
    saved["options"] = {**{k: defaults[k] for k in mine["options"] if k in defaults}, **saved["options"]}
    for key in ("class", "z_dim", "options", "modalities"):
        if saved[key] != mine[key]:
            raise ValueError(f"{path} is incompatible with this {mine['class']}: its {key} is {saved[key]!r}, "
                             f"this object's is {mine[key]!r}")


def load_model(path, map_location="cpu") -> "MultimodalVAE":
    """Load a saved model of any pyro_mm class."""
    name = read_payload(path, MODEL_FORMAT, map_location).get("class")
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

    def __init__(self, modalities, z_dim, num_particles: int = 10, estimator: str = "dreg",
                 num_subsets: Optional[int] = None):
        super().__init__(modalities, z_dim, num_particles=num_particles, estimator=estimator, num_subsets=num_subsets)

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
    summed) objective; ``classifier_weight`` (λ) and ``combine`` override it; ``rao_blackwell``
    picks the lower-variance estimator of the same objective (see
    :class:`~pyro_mm.infer.TraceMEME_ELBO`)."""

    def __init__(self, modalities, z_dim, num_particles: int = 10, num_pseudo_samples: int = 128,
                 preset: str = "paper", extension: bool = False, classifier_weight: Optional[float] = None,
                 combine: Optional[str] = None, rao_blackwell: bool = False):
        self.num_pseudo_samples = num_pseudo_samples
        self._pseudo_ready = False
        super().__init__(modalities, z_dim, num_particles=num_particles, num_pseudo_samples=num_pseudo_samples,
                         preset=preset, extension=extension, classifier_weight=classifier_weight, combine=combine,
                         rao_blackwell=rao_blackwell)

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
