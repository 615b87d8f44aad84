"""The method registry: every multimodal VAE declared once, with its options.

A *method* is a user class — a subclass of :class:`MultimodalVAE` registered with :func:`register`
— that names one objective (``method = "mmvae+"``), cites its paper, declares its options
(:class:`~pyro_mm.options.Option`: name, default, help, the values it takes) and builds its Pyro
model, guide and ELBO from modalities, a latent size and those options
(:meth:`MultimodalVAE.build`). Everything that needs the list of methods reads :data:`METHODS`
(filled by importing :mod:`pyro_mm.registry`): loading a saved model
(:func:`pyro_mm.registry.load_model`), ``pyro-mm train``'s options, the command line's description,
the user API (:mod:`pyro_mm.api`), the README's method table and ``docs/cli.md`` (both written by
``python scripts/generate_docs.py``), the benchmarks and the tests. The entries themselves live in
:mod:`pyro_mm.registry`. The experiments alone name the methods they compare, so that a new method
changes no experiment's grid.

A :class:`MultimodalVAE` is a :class:`~pyro_mm.training.ModelGuideELBO` (model, guide and ELBO as one
module, trained by :class:`~pyro_mm.training.Trainer`) with, following ``pyro.contrib.cevae``,
``fit``, the queries ``encode``, ``predict``, ``generate``, ``log_likelihood``, ``to_arviz`` and
``save`` / ``load``. Its constructor takes ``(modalities, z_dim, **options)``; the options are
checked against the declaration (unknown names, wrong types and values are named) and appear in
the class's signature and docstring.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any, Callable, ClassVar, Dict, List, Mapping, Optional, Sequence, Tuple, Type, Union

import torch

from .batch import MultimodalBatch
from .checkpoint import MODEL_FORMAT, VERSIONS, atomic_save, read_payload
from .modality import Modality
from .options import (BATCH_SIZE, CHECKPOINT_EVERY, EPOCHS, LR, LR_SCHEDULE, NUM_SAMPLES, SEED, STEPS, TIME_BUDGET,
                      WARMUP_STEPS, Z_DIM, Option)
from .queries import embed, predict, sample_prior
from .subsets import SubsetFamily
from .training import ModelGuideELBO, StepRecord, Trainer, load_state

__all__ = ["MultimodalVAE", "METHODS", "register", "method_class"]

# --- the registry ---------------------------------------------------------------------------------
#: method name -> its user class, in registration order
METHODS: Dict[str, Type["MultimodalVAE"]] = {}


def register(cls: Type["MultimodalVAE"]) -> Type["MultimodalVAE"]:
    """Class decorator: add a method to :data:`METHODS` under ``cls.method`` (each name once)."""
    name = cls.__dict__.get("method")
    if not isinstance(name, str) or not name:
        raise TypeError(f"{cls.__name__} needs a class attribute method = '<name>' to be registered")
    if name in METHODS and METHODS[name] is not cls:
        raise ValueError(f"method {name!r} is already registered by {METHODS[name].__name__}")
    METHODS[name] = cls
    return cls


def method_class(name: str) -> Type["MultimodalVAE"]:
    """The user class of method ``name``, or a ``KeyError`` listing the registered ones."""
    try:
        return METHODS[name]
    except KeyError:
        raise KeyError(f"unknown method {name!r}; the registered methods are {list(METHODS)}") from None


# --- the user classes' base -----------------------------------------------------------------------
class MultimodalVAE(ModelGuideELBO):
    """Base class of the methods: a model, a guide and an ELBO built from modalities, a latent size
    and the declared options, trained by the one :class:`~pyro_mm.training.Trainer`.

    :param modalities: the :class:`~pyro_mm.modality.Modality` specifications (networks and
        likelihoods); each encoder returns ``(loc, scale)`` of size :meth:`latent_size`, each
        decoder reads that many inputs.
    :param int z_dim: size of the shared latent.
    """

    #: the registry name, the paper and the one-line summary of a method
    method: ClassVar[str] = ""
    reference: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    #: the name the documentation gives the method ("MoPoE-VAE"; default: the class's own name)
    title: ClassVar[str] = ""
    #: the method's options
    options: ClassVar[Tuple[Option, ...]] = ()
    #: whether the method models some of the modalities it is given (:meth:`modalities_for`)
    models_some_modalities: ClassVar[bool] = False
    #: for a mixture-based bound: the subset family of M modalities its bound sub-samples
    subset_family: ClassVar[Optional[Callable[[int], SubsetFamily]]] = None

    def __init__(self, modalities: Sequence[Modality], z_dim: int, **options):
        Z_DIM.validate(z_dim)
        resolved = self.resolve_options(options)
        modalities = self.modalities_for(list(modalities), **resolved)
        model, guide, elbo = self.build(modalities, z_dim, **resolved)
        super().__init__(model, guide, elbo)
        self.modalities = modalities
        self.z_dim = z_dim
        self.option_values = resolved

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if not cls.__dict__.get("title"):
            cls.title = cls.__name__
        names = [o.name for o in cls.options]
        if len(set(names)) != len(names):
            raise TypeError(f"{cls.__name__} declares an option twice: {names}")
        params = [inspect.Parameter("modalities", inspect.Parameter.POSITIONAL_OR_KEYWORD),
                  inspect.Parameter("z_dim", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
        params += [inspect.Parameter(o.name, inspect.Parameter.KEYWORD_ONLY, default=o.default) for o in cls.options]
        cls.__signature__ = inspect.Signature(params)
        if cls.options and cls.__doc__ and ":param" not in cls.__doc__:
            lines = "\n".join(f"    :param {o.name}: {o.help} (default ``{o.default!r}``)" for o in cls.options)
            cls.__doc__ = cls.__doc__.rstrip() + "\n\n" + lines + "\n"

    @classmethod
    def resolve_options(cls, options: Mapping[str, Any]) -> Dict[str, Any]:
        """Every declared option: the given value (checked) or its default."""
        declared = {o.name: o for o in cls.options}
        unknown = sorted(set(options) - set(declared))
        if unknown:
            raise TypeError(f"{cls.__name__} has no option {unknown}; its options are {sorted(declared) or 'none'}")
        return {name: _resolve(o, options.get(name, o.default)) for name, o in declared.items()}

    @classmethod
    def latent_size(cls, z_dim: int, **options) -> int:
        """The size of the encoders' ``(loc, scale)`` and of the decoders' input (default: z_dim)."""
        return z_dim

    @classmethod
    def for_dataset(cls, dataset, z_dim: int = Z_DIM.default, networks: Optional[Mapping[str, Any]] = None,
                    **options) -> "MultimodalVAE":
        """The method with pyro_mm's default networks for ``dataset``'s modalities
        (:func:`pyro_mm.defaults.default_modalities`; ``networks`` are its keyword arguments)."""
        from .defaults import default_modalities

        size = cls.latent_size(z_dim, **cls.resolve_options(options))
        return cls(default_modalities(dataset, size, **dict(networks or {})), z_dim, **options)

    @classmethod
    def modalities_for(cls, modalities: List[Modality], **options) -> List[Modality]:
        """The modalities the method models, of those given (default: all)."""
        return modalities

    def build(self, modalities: List[Modality], z_dim: int, **options):  # pragma: no cover - abstract
        """``(model, guide, elbo)`` of the method."""
        raise NotImplementedError

    @property
    def names(self) -> Tuple[str, ...]:
        return self.model.names

    @property
    def device(self) -> torch.device:
        return self.model.prior().mean.device

    # --- training ---------------------------------------------------------------------------------
    def training_data(self, data):
        """The data the method reads: for a method that models some of a data set's modalities
        (:meth:`modalities_for`, e.g. the unimodal VAE) the data restricted to them (samples
        observing none of them dropped); else the data as given."""
        names = list(self.names)
        if not self.models_some_modalities:
            return data
        if isinstance(data, MultimodalBatch):
            return data if list(data.names) == names else data.only(names)
        if hasattr(data, "only") and hasattr(data, "masks") and list(data.names) != names:
            return data.only(names)
        return data

    def fit(self, data, epochs: Optional[int] = EPOCHS.default, batch_size: int = BATCH_SIZE.default,
            lr: float = LR.default, time_budget: Optional[float] = TIME_BUDGET.default, seed: int = SEED.default,
            progress: bool = True, callback: Optional[Callable[[StepRecord], None]] = None, checkpoint=None,
            checkpoint_every: int = CHECKPOINT_EVERY.default, resume: Union[bool, str, Path] = False,
            config: Optional[dict] = None, steps: Optional[int] = STEPS.default,
            lr_schedule: str = LR_SCHEDULE.default, warmup_steps: int = WARMUP_STEPS.default,
            matmul_precision: str = "highest") -> List[float]:
        """Train with the method's objective (:class:`~pyro_mm.training.Trainer`); returns the mean
        loss per sample of every epoch (the loss of every step is in :attr:`step_losses`).

        **Calling fit again** continues the training: ``steps`` more steps (or ``epochs`` more
        epoch ends), keeping Adam's state, the data order — the rest of the current epoch, then
        the same shuffles as one longer call — and the objective's state (MVAE's KL annealing, the
        histories). ``fit(data, steps=4)`` twice equals ``fit(data, steps=8)`` once, bit for bit
        (given the same global random state, which the calls consume as one would). This holds when
        ``data``, ``batch_size`` and ``seed`` are those of the previous call (``lr`` may change);
        otherwise the call trains the same networks with a fresh Adam and data order. A model read
        with :meth:`load` starts a fresh Adam too. With ``resume`` the counts are the checkpointed
        run's instead: ``steps`` and ``epochs`` in all, so that the same call completes it.

        Ctrl-C and SIGTERM (a scheduler's preemption) let the step under way finish, write the
        checkpoint (when there is one) and raise ``KeyboardInterrupt`` or
        :class:`~pyro_mm.training.Terminated`; calling fit again then continues from there.

        :param data: a pyro_mm data set, a :class:`MultimodalBatch` or an iterable of batches (a
            resumed run repeats an uninterrupted one exactly for the first two; an iterable must
            itself yield the same batches again). Modalities the method does not model are left out.
        :param epochs: passes over the data (``None`` with ``steps``: no limit in epochs); epoch
            ends in this call.
        :param steps: stop after this many steps of this call (with ``resume``: in all).
        :param time_budget: stop after this many seconds of this call.
        :param callback: called after every step with a :class:`~pyro_mm.training.StepRecord`
            (step, epoch, batch, loss per sample, seconds since the call began).
        :param checkpoint: path of a training checkpoint, written every ``checkpoint_every`` steps
            and at the end; ``resume=True`` continues from it (a path: from that file) exactly. A
            failed write (a full disk) raises an ``OSError`` naming the file, the previous
            checkpoint left whole; a warning says beforehand when the disk has room for fewer
            than two checkpoints.
        :param config: further settings a resumed run must repeat.
        :param lr_schedule: ``"constant"`` or ``"cosine"`` (a half cosine to zero over ``steps``,
            after ``warmup_steps`` of linear rise).
        :param matmul_precision: ``"highest"`` (float32 arithmetic), ``"high"`` or ``"medium"``:
            the precision of float32 matrix products and convolutions during this training only
            (:mod:`pyro_mm.precision`: bfloat16 units for ``medium`` on CPUs with AMX-BF16, TF32
            on CUDA for both); the queries, evaluation and data run at the process's setting
            after it. Recorded in the checkpoint: a resumed run must use the same one.

        The content hash of the training data (a pyro_mm data set's ``content_hash``) is kept in
        :attr:`data_sha256`, saved with the model; a resume on data of another content is refused.
        """
        trainer = Trainer(epochs=epochs, steps=steps, batch_size=batch_size, lr=lr, time_budget=time_budget,
                          seed=seed, progress=progress, callbacks=[callback] if callback else (),
                          checkpoint=checkpoint, checkpoint_every=checkpoint_every, lr_schedule=lr_schedule,
                          warmup_steps=warmup_steps, matmul_precision=matmul_precision)
        return trainer.fit(self, data, resume=resume, config=config)

    # --- what a file must agree on ------------------------------------------------------------------
    def description(self) -> Dict:
        """Class, modalities, latent size and options: what a file and an object must agree on."""
        for param in self.parameters():  # Pyro's param store tags parameters with a weak reference
            param.__dict__.pop("unconstrained", None)
        return {"class": type(self).__name__, "method": self.method, "modalities": self.modalities,
                "z_dim": self.z_dim, "options": dict(self.option_values)}

    def check_compatible(self, payload: Dict, path) -> None:
        """``ValueError`` naming the first difference between a file and this object; an option the
        file does not name counts at its declared default (files written before it existed)."""
        saved, mine = _signature(payload), _signature(self.description())
        defaults = {o.name: o.default for o in self.options}
        saved["options"] = {**{k: defaults[k] for k in mine["options"] if k in defaults}, **saved["options"]}
        for key in ("class", "z_dim", "options", "modalities"):
            if saved[key] != mine[key]:
                raise ValueError(f"{path} is incompatible with this {mine['class']}: its {key} is {saved[key]!r}, "
                                 f"this object's is {mine[key]!r}")

    # --- queries ------------------------------------------------------------------------------------
    def _input(self, batch):
        """A query's batch: checked to be one, restricted to the modelled modalities, on the
        model's device and in its precision."""
        if not isinstance(batch, MultimodalBatch):
            raise TypeError(f"{type(self).__name__} queries take a pyro_mm.MultimodalBatch, got {type(batch).__name__}")
        return self.to_model(self.training_data(batch))

    def encode(self, batch: MultimodalBatch) -> Dict[str, torch.Tensor]:
        """Posterior means ``[B, D]``: ``"joint"`` given everything observed and, with more than
        one modality, each modality's name: given that modality alone (NaN where it is missing);
        :func:`pyro_mm.queries.embed`."""
        return embed(self.guide, self._input(batch))

    def predict(self, batch: MultimodalBatch, given: Sequence[str], generate: Sequence[str],
                z: str = "sample", likelihood: str = "mean") -> Dict[str, torch.Tensor]:
        """Condition on the modalities ``given`` and generate ``generate``
        (:func:`pyro_mm.queries.predict`: ``z`` drawn from the posterior or at its mean,
        ``likelihood`` sampled or at its point estimate)."""
        return predict(self.model, self.guide, self._input(batch), given, generate, z=z, likelihood=likelihood)

    def generate(self, num_samples: int, likelihood: str = "mean") -> Dict[str, torch.Tensor]:
        """Unconditional samples: z from the model's prior and every modality
        (:func:`pyro_mm.queries.sample_prior`)."""
        return sample_prior(self.model, num_samples, likelihood=likelihood)

    def to_arviz(self, batch: MultimodalBatch, num_samples: int = NUM_SAMPLES.default, step_losses=None, seed=None):
        """Posterior draws of z for ``batch`` and the training trace as an ArviZ DataTree
        (:func:`pyro_mm.export.to_datatree`; save it with :func:`pyro_mm.export.save_datatree`).
        ``step_losses`` defaults to the loss of every training step (``self.step_losses``)."""
        from .export import to_datatree

        if step_losses is None and self.step_losses:
            step_losses = self.step_losses
        return to_datatree(self, self._input(batch), num_samples, step_losses, seed)

    def log_likelihood(self, batch: MultimodalBatch, num_particles: int = 1000) -> Dict[str, torch.Tensor]:
        """Importance-sampled log p(X_o) per sample and its Pareto k̂."""
        from .metrics.likelihood import log_likelihood

        return log_likelihood(self.model, self.guide, self._input(batch), num_particles)

    # --- persistence --------------------------------------------------------------------------------
    def save(self, path) -> Path:
        """Write the modalities, options and state (weights, training state, histories) atomically,
        with a checksum (:mod:`pyro_mm.checkpoint`)."""
        return atomic_save({"format": MODEL_FORMAT, "version": VERSIONS[MODEL_FORMAT], **self.description(),
                            "state_dict": self.state_dict()}, path)

    @classmethod
    def load(cls, path, map_location="cpu") -> "MultimodalVAE":
        """Read an object written by :meth:`save`; clear errors for a missing, corrupt or foreign file."""
        payload = read_payload(path, MODEL_FORMAT, map_location)
        if payload.get("class") != cls.__name__:
            raise TypeError(f"{path} holds a {payload.get('class')}, not a {cls.__name__}")
        return cls._from_payload(payload, path)

    @classmethod
    def _from_payload(cls, payload: Dict, path) -> "MultimodalVAE":
        options = {o.name: payload["options"][o.name] for o in cls.options if o.name in payload["options"]}
        obj = cls(payload["modalities"], payload["z_dim"], **options)
        load_state(obj, payload["state_dict"], path)
        return obj


def _resolve(option: Option, value):
    """``value`` of a method's option, checked (:meth:`~pyro_mm.options.Option.check`); a
    ``ValueError`` ``option <name>: must be ...`` otherwise."""
    try:
        return option.check(value)
    except ValueError as error:
        raise ValueError(f"option {option.name}: {error}") from None


def _signature(description: dict) -> dict:
    mods = [(m.name, m.event_shape, type(m.likelihood).__name__, m.likelihood_scale,
             type(m.encoder).__name__, type(m.decoder).__name__) for m in description["modalities"]]
    return {"class": description["class"], "modalities": mods, "z_dim": description["z_dim"],
            "options": dict(description["options"])}
