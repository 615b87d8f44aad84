"""The arguments pyro_mm checks, each declared once: its name, default, help and the values it takes.

An :class:`Option` is made by one of the kinds — :func:`integer`, :func:`real`, :func:`choice`,
:func:`flag`, :func:`weights` — and checks a value with :meth:`Option.validate` (a ``ValueError``
such as ``batch_size must be a positive integer, got 0``). An option whose default is ``None``
also takes ``None`` (the method decides; no limit). A number may be a NumPy scalar too (any
:class:`numbers.Integral` for an integer, :class:`numbers.Real` for a real number, never a
``bool``); :meth:`Option.validate` returns it as an ``int`` or a ``float``.

The options that several places take are the constants below: the objectives' (the registry,
:mod:`pyro_mm.registry`, declares each method's options from them, with :meth:`Option.with_default`
where its default differs, and the estimators' constructors check their arguments with them) and
the training's (:class:`~pyro_mm.training.Trainer`, its callers and ``pyro-mm train``); and
:data:`NUM_SAMPLES`, the draws of the queries, the metrics and the export. An option that one
module alone takes is declared in that module, from these kinds.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, replace
from typing import Any, Callable, Mapping, Optional, Sequence

__all__ = ["Option", "integer", "real", "choice", "flag", "weights", "BETA", "NUM_PARTICLES", "ESTIMATORS",
           "ESTIMATOR", "NUM_SUBSETS", "NUM_RANDOM_SUBSETS", "ANNEALING_STEPS", "CLASSIFIER_WEIGHT", "COMBINE",
           "Z_DIM", "EPOCHS", "STEPS", "BATCH_SIZE", "LR", "TIME_BUDGET", "SEED", "CHECKPOINT_EVERY",
           "LR_SCHEDULES", "LR_SCHEDULE", "WARMUP_STEPS", "NUM_SAMPLES"]


@dataclass(frozen=True)
class Option:
    """One argument and the values it takes.

    :param str name: the keyword argument (``pyro-mm train`` spells it ``--name-with-dashes``).
    :param default: its default; ``None``: ``None`` is a value too (spelled ``none`` on the
        command line).
    :param str help: what it does.
    :param str requirement: what a value must be, as an error says it (``"a positive integer"``).
    :param convert: ``value -> value`` in its normal form (a real number becomes a ``float``),
        raising ``TypeError`` or ``ValueError`` for a value that does not meet the requirement.
    :param parse: ``text -> value`` for the command line.
    :param str metavar: how the command line shows the value.
    """

    name: str
    default: Any
    help: str
    requirement: str
    convert: Callable[[Any], Any]
    parse: Callable[[str], Any]
    metavar: str = "VALUE"

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def optional(self) -> bool:
        """Whether ``None`` is a value: the default is ``None``."""
        return self.default is None

    def check(self, value):
        """``value`` in its normal form, or a ``ValueError`` saying what it must be, without the
        option's name (``must be a positive integer, got 0``), for a caller that names it."""
        if value is None and self.optional:
            return None
        try:
            return self.convert(value)
        except (TypeError, ValueError):
            raise ValueError(f"must be {self.requirement}, got {value!r}") from None

    def validate(self, value):
        """:meth:`check` naming the option: ``batch_size must be a positive integer, got 0``."""
        try:
            return self.check(value)
        except ValueError as error:
            raise ValueError(f"{self.name} {error}") from None

    def read(self, text: str):
        """The value a command-line argument spells: :attr:`parse` of ``text`` (``none``: ``None``,
        when the option takes it); not checked."""
        return None if self.optional and text.lower() == "none" else self.parse(text)

    def with_default(self, default, help: Optional[str] = None) -> "Option":
        """The option with another default (and help), as a method that differs declares it."""
        return replace(self, default=default, help=self.help if help is None else help)


# --- the kinds ------------------------------------------------------------------------------------
def _integral(value) -> bool:
    """An integer, a NumPy one included; not a ``bool``."""
    return not isinstance(value, bool) and isinstance(value, numbers.Integral)


def _number(value) -> bool:
    """A finite real number, a NumPy one included; not a ``bool``."""
    return not isinstance(value, bool) and isinstance(value, numbers.Real) and math.isfinite(value)


def _bound(value: int) -> str:
    """``value`` as the requirement writes it: a large power of two as ``2^k``."""
    return f"2^{value.bit_length() - 1}" if value > 2 ** 16 and value & (value - 1) == 0 else str(value)


def integer(name: str, default: Optional[int], help: str, minimum: int = 0, below: Optional[int] = None) -> Option:
    """An integer ``n`` with ``minimum ≤ n`` (and ``n < below``), as an ``int``."""
    def convert(value):
        if not _integral(value) or value < minimum or (below is not None and value >= below):
            raise ValueError(value)
        return int(value)

    if below is not None:
        requirement = f"an integer in [{minimum}, {_bound(below)})"
    else:
        requirement = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
    return Option(name, default, help, requirement, convert, int, "N")


def real(name: str, default: Optional[float], help: str, minimum: float = 0.0, strict: bool = False,
         maximum: float = math.inf) -> Option:
    """A finite number ``x`` with ``minimum ≤ x ≤ maximum`` (``strict``: ``minimum < x``), as a
    ``float``."""
    def convert(value):
        if not _number(value) or not minimum <= value <= maximum or (strict and value == minimum):
            raise ValueError(value)
        return float(value)

    if math.isfinite(maximum):
        requirement = f"a finite number in {'(' if strict else '['}{minimum:g}, {maximum:g}]"
    elif strict:
        requirement = "a finite positive number" if minimum == 0 else f"a finite number > {minimum}"
    else:
        requirement = f"a finite number >= {minimum}"
    return Option(name, default, help, requirement, convert, float, "X")


def choice(name: str, default: Optional[str], choices: Sequence[str], help: str) -> Option:
    """One of ``choices``."""
    def convert(value):
        if value not in choices:
            raise ValueError(value)
        return value
    return Option(name, default, help, f"one of {list(choices)}", convert, str, "{" + ",".join(choices) + "}")


def flag(name: str, default: Optional[bool], help: str) -> Option:
    """``True`` or ``False`` (``true``, ``yes``, ``on``, ``1`` ... on the command line)."""
    def convert(value):
        if not isinstance(value, bool):
            raise TypeError(value)
        return value

    def parse(text: str):
        if text.lower() in ("1", "true", "yes", "on"):
            return True
        if text.lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"expected true or false, got {text!r}")
    return Option(name, default, help, "True or False", convert, parse, "BOOL")


def weights(name: str, default, help: str) -> Option:
    """A finite number ≥ 0, or a mapping modality name -> such a number (``a=1,b=10`` on the
    command line), as ``float`` s."""
    def number(value) -> float:
        if not _number(value) or value < 0:
            raise ValueError(value)
        return float(value)

    def convert(value):
        if isinstance(value, Mapping):
            return {str(k): number(v) for k, v in value.items()}
        return number(value)

    def parse(text: str):
        if "=" not in text:
            return float(text)
        pairs = [part.split("=", 1) for part in text.split(",") if part]
        return {k.strip(): float(v) for k, v in pairs}
    return Option(name, default, help, "a finite number >= 0 or a mapping of modality names to them", convert, parse,
                  "X|NAME=X,...")


# --- the objectives' options ----------------------------------------------------------------------
#: β ≥ 0, the weight of every latent site's log p(z) − log q(z | X) in the bound's log-weights (β = 1: the bound)
BETA = real("beta", 1.0, "β, the weight of the latent terms (KL) in the objective; 1 is the bound itself")
#: K, the importance samples of every stratum
NUM_PARTICLES = integer("num_particles", 1, "K, importance samples per stratum", minimum=1)
#: the gradient estimators of the stratified bounds
ESTIMATORS = ("iwae", "dreg")
ESTIMATOR = choice("estimator", "iwae", ESTIMATORS,
                   "gradient estimator: 'iwae' (the bound's own) or 'dreg' (doubly reparameterised)")
#: the subsets of a mixture bound drawn per sample and step
NUM_SUBSETS = integer("num_subsets", None, "draw this many available subsets per sample per step (none: all of them)",
                      minimum=1)
#: MVAE's random subsets per sample and step, beside the joint and unimodal terms
NUM_RANDOM_SUBSETS = integer("num_random_subsets", 0, "k random subsets per sample per step, beside the joint and "
                             "unimodal terms")
#: MVAE's KL annealing
ANNEALING_STEPS = integer("annealing_steps", 0, "steps over which the KL weight rises from 0 to beta (0: no annealing)")
#: MEME's λ, the weight of log q̂(t | s)
CLASSIFIER_WEIGHT = weights("classifier_weight", None, "λ, the weight of log q̂(t | s): a number or one per "
                            "conditioning modality (default: the preset's)")
#: how MEME combines its directions
COMBINE = choice("combine", None, ("mean", "sum"), "'mean' or 'sum' of the directions (default: the preset's)")
#: the size of the shared latent
Z_DIM = integer("z_dim", 16, "size of the shared latent", minimum=1)

# --- the training's options -----------------------------------------------------------------------
EPOCHS = integer("epochs", 1, "passes over the data", minimum=1)
STEPS = integer("steps", None, "training steps", minimum=1)
BATCH_SIZE = integer("batch_size", 128, "samples per step", minimum=1)
LR = real("lr", 1e-3, "Adam's learning rate", strict=True)
TIME_BUDGET = real("time_budget", None, "stop after this many seconds of training", strict=True)
#: the seed of the data order (a torch.Generator's: below 2^63)
SEED = integer("seed", 0, "seed of the data order", below=2 ** 63)
CHECKPOINT_EVERY = integer("checkpoint_every", 0, "steps between checkpoints (0: only at the end)")
#: the learning-rate schedules of :class:`~pyro_mm.training.Trainer`
LR_SCHEDULES = ("constant", "cosine")
LR_SCHEDULE = choice("lr_schedule", "constant", LR_SCHEDULES, "the learning rate's schedule")
WARMUP_STEPS = integer("warmup_steps", 0, "steps of linear rise of the learning rate (cosine only)")

# --- the queries', the metrics' and the export's options ------------------------------------------
#: draws: from the prior (:func:`~pyro_mm.queries.sample_prior`,
#: :func:`~pyro_mm.metrics.coherence.joint_coherence`) or from each input's posterior
#: (:func:`~pyro_mm.export.to_datatree`, whose default this is)
NUM_SAMPLES = integer("num_samples", 100, "samples drawn", minimum=1)
