"""The data sets by name, and the observation schemes, as the command line and the experiments
spell them.

* :data:`DATASETS`: ``"mnist-syndigits"``, ``"polymnist"``, ``"translated-polymnist"``,
  ``"captioned-digits"``, ``"mnist-label"`` (an MNIST image and its digit label);
  :func:`load_dataset` builds (or reads from the cache) a split of one.
* :data:`SCHEMES` and :func:`observation_scheme`: which modalities each sample observes —
  ``"paired"`` (all), the two-modality paired-fraction schemes ``"alternate"`` (the unpaired samples
  observe one side or the other), ``"s"`` / ``"t"`` (they observe only the first / only the
  second), and ``"random"`` (each entry missing at random, any number of modalities). The
  paired-fraction schemes take a fraction f or an exact number of paired samples (``count``:
  on ``mnist-label`` with scheme ``"s"``, the labelled samples). :func:`default_scheme` is the
  scheme a data set gets when none is named.
"""

from __future__ import annotations

from typing import Optional

from pyro_mm.data.captions import CaptionedDigits
from pyro_mm.data.mnist_label import MNISTLabel
from pyro_mm.data.observation import MissingAtRandom, PairedCount, PairedFraction
from pyro_mm.data.polymnist import PolyMNIST, TranslatedPolyMNIST
from pyro_mm.data.syndigits import MNISTSynDigits

__all__ = ["DATASETS", "SCHEMES", "PAIRED_FRACTION_SCHEMES", "load_dataset", "observation_scheme",
           "num_modalities_of", "default_scheme"]

DATASETS = {"mnist-syndigits": MNISTSynDigits, "polymnist": PolyMNIST, "translated-polymnist": TranslatedPolyMNIST,
            "captioned-digits": CaptionedDigits, "mnist-label": MNISTLabel}
#: the schemes of a paired fraction f: defined for two modalities
PAIRED_FRACTION_SCHEMES = ("alternate", "s", "t")
SCHEMES = ("paired",) + PAIRED_FRACTION_SCHEMES + ("random",)
#: the data sets whose number of modalities is a choice, and their largest
_VARIABLE = {"polymnist": 5, "translated-polymnist": 5}
#: the scheme of a data set whose samples, unpaired, should observe one side only: an image + label
#: set hides labels, never images (semi-supervised learning)
_DEFAULT_SCHEMES = {"mnist-label": "s"}


def default_scheme(name: str, num_modalities: int) -> str:
    """The observation scheme data set ``name`` gets when none is named: ``"s"`` for
    ``mnist-label`` (the unlabelled samples observe their image), else ``"alternate"`` for two
    modalities and ``"random"`` for more."""
    if name in _DEFAULT_SCHEMES:
        return _DEFAULT_SCHEMES[name]
    return "alternate" if num_modalities == 2 else "random"


def num_modalities_of(name: str, num_modalities: Optional[int] = None) -> int:
    """The modalities data set ``name`` has (with ``num_modalities`` for the PolyMNIST family)."""
    if name not in DATASETS:
        raise ValueError(f"unknown data set {name!r}; choose one of {list(DATASETS)}")
    if name in _VARIABLE:
        count = _VARIABLE[name] if num_modalities is None else num_modalities
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= _VARIABLE[name]:
            raise ValueError(f"{name} has 1 to {_VARIABLE[name]} modalities, got {num_modalities!r}")
        return count
    if num_modalities not in (None, 2):
        raise ValueError(f"{name} has two modalities; the number of modalities is a choice for "
                         f"{sorted(_VARIABLE)} only")
    return 2


def observation_scheme(scheme: str, fraction: float, num_modalities: int, count: Optional[int] = None,
                       seed: int = 0, balanced: bool = True):
    """The observation masks' generator for ``scheme`` (``None``: every modality observed).

    :param fraction: the paired fraction f (paired-fraction schemes) or the probability that an
        entry is observed (``"random"``).
    :param count: in place of ``fraction``, exactly this many paired samples (paired-fraction
        schemes only; :class:`~pyro_mm.data.observation.PairedCount`), ``count / C`` of each of
        the C classes when ``balanced``.
    :param seed: seed of the random choice of the observed entries.
    """
    if scheme not in SCHEMES:
        raise ValueError(f"unknown observation scheme {scheme!r}; choose one of {list(SCHEMES)}")
    if count is not None and scheme not in PAIRED_FRACTION_SCHEMES:
        raise ValueError(f"a number of paired samples is given for the schemes {list(PAIRED_FRACTION_SCHEMES)} "
                         f"(a paired part and one observed side), not for {scheme!r}")
    if scheme == "paired":
        return None
    if scheme == "random":
        return MissingAtRandom(1.0 - fraction, seed=seed)
    if num_modalities != 2:
        raise ValueError(f"the observation scheme {scheme!r} (a paired fraction with one side observed by the "
                         f"unpaired samples) is defined for two modalities, the data set has {num_modalities}; "
                         "use the scheme 'random' (each entry missing at random) or 'paired'")
    if count is not None:
        return PairedCount(count, scheme, seed=seed, balanced=balanced)
    return PairedFraction(fraction, scheme, seed=seed)


def load_dataset(name: str, split: str, size: Optional[int] = None, observation=None,
                 num_modalities: Optional[int] = None, **params):
    """Split ``split`` of data set ``name``, built offline and cached on first use; for the
    PolyMNIST family, the first ``num_modalities`` of its five modalities (the same images).
    ``params``: the data set's own generation parameters where they are not its defaults (e.g.
    Translated-PolyMNIST's digit ``scale``)."""
    count = num_modalities_of(name, num_modalities)
    if name in _VARIABLE:
        full = DATASETS[name](split, num_modalities=_VARIABLE[name], size=size, **params)
        names = full.names[:count]
        data = full if count == len(full.names) else full.only(names)
        return data if observation is None else data.with_observation(observation)
    return DATASETS[name](split, size=size, observation=observation, **params)
