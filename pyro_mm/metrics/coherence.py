"""Cross and joint coherence, judged by per-modality classifiers trained on real data.

Following Shi et al. (2019, "Variational Mixture-of-Experts Autoencoders for Multi-Modal Deep
Generative Models") and, for subsets of inputs, Sutter et al. (2021, "Generalized Multimodal
ELBO"):

* **cross coherence** of a subset ``S`` of the modalities and a target ``t`` not in ``S`` is
  ``P[f_t(x̂_t) = y]``, where ``x̂_t ~ p(x_t | x_S)`` is generated from the observed ``x_S`` of a
  test sample with label ``y`` and ``f_t`` is the classifier of modality ``t``. For ``M``
  modalities it is reported per ``(S, t)`` and, as in the PolyMNIST literature, averaged over
  all pairs with ``|S| = k`` for ``k = 1 .. M - 1``;
* **joint coherence** is ``P[f_1(x̂_1) = ... = f_M(x̂_M)]`` for ``(x̂_1, ..., x̂_M)`` decoded from
  one ``z ~ p(z)``: the fraction of prior samples on whose class all classifiers agree.

Both take callables, so they work with any model: ``generate(batch, given, target)`` returns the
target modality generated from the modalities ``given`` of ``batch``; ``sample(n)`` returns a
dict ``name -> [n, *event_shape]`` of unconditional samples. Generated images are expected in
the data format (``[0, 1]`` floats), text as token ids.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from typing import Callable, Dict, Iterable, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn

from pyro_mm.options import BATCH_SIZE, NUM_SAMPLES

__all__ = ["CoherenceResult", "proper_subsets", "predict", "cross_coherence", "joint_coherence"]

Pair = Tuple[Tuple[str, ...], str]

#: the prior samples :func:`joint_coherence` draws per call of ``sample``
JOINT_BATCH_SIZE = BATCH_SIZE.with_default(1000, "prior samples drawn per call of sample")


@dataclass
class CoherenceResult:
    """Cross coherence per ``(subset, target)`` pair and its aggregates.

    :ivar dict pairs: ``(subset, target) -> accuracy``.
    :ivar dict per_class: ``(subset, target) -> [num_classes]`` accuracy per true class (NaN for
        a class with no sample).
    :ivar dict counts: ``(subset, target) -> number of samples evaluated``.
    :ivar dict by_size: ``k -> mean accuracy over the pairs with |subset| = k``.
    """

    pairs: Dict[Pair, float]
    per_class: Dict[Pair, np.ndarray]
    counts: Dict[Pair, int]
    by_size: Dict[int, float]

    @property
    def mean(self) -> float:
        """Mean accuracy over all evaluated pairs."""
        return float(np.mean(list(self.pairs.values())))


def proper_subsets(names: Sequence[str]) -> list:
    """Every non-empty proper subset of ``names``, smallest first, in the order of ``names``."""
    return [s for k in range(1, len(names)) for s in combinations(names, k)]


@torch.no_grad()
def predict(classifier: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Predicted classes ``[N]`` of ``x`` (moved to the classifier's device)."""
    device = next(classifier.parameters()).device
    return classifier(x.to(device)).argmax(-1)


def _check_names(names: Sequence[str], classifiers: Mapping[str, nn.Module]) -> Tuple[str, ...]:
    names = tuple(names)
    if len(names) < 2:
        raise ValueError(f"coherence needs at least two modalities, got {list(names)}")
    missing = [n for n in names if n not in classifiers]
    if missing:
        raise KeyError(f"no classifier for modalities {missing}; have {sorted(classifiers)}")
    return names


def cross_coherence(
    generate: Callable,
    batches: Iterable,
    classifiers: Mapping[str, nn.Module],
    names: Sequence[str],
    subsets: Optional[Sequence[Sequence[str]]] = None,
    num_classes: int = 10,
) -> CoherenceResult:
    """Cross coherence of ``generate`` on labelled ``batches``.

    :param generate: ``generate(batch, given, target) -> tensor [B', *event_shape]``, the target
        modality generated from the modalities ``given`` (a tuple) of ``batch``, a
        :class:`~pyro_mm.batch.MultimodalBatch` restricted to the samples observing all of
        ``given`` (``B'`` rows).
    :param batches: iterable of :class:`~pyro_mm.batch.MultimodalBatch` with ``labels``,
        iterated once (a ``DataLoader`` of a test set).
    :param classifiers: modality name -> classifier (``forward(x) -> logits``).
    :param names: the model's modalities.
    :param subsets: the conditioning subsets (default: every non-empty proper subset of
        ``names``); each is scored against every modality of ``names`` not in it.
    :returns: a :class:`CoherenceResult`.
    """
    names = _check_names(names, classifiers)
    subsets = proper_subsets(names) if subsets is None else [tuple(s) for s in subsets]
    pairs = []
    for s in subsets:
        unknown = [n for n in s if n not in names]
        if not s or unknown or len(set(s)) != len(s) or len(s) == len(names):
            raise ValueError(
                f"subset {list(s)} must be a non-empty proper subset of {list(names)} without "
                "repeats"
            )
        pairs += [(s, t) for t in names if t not in s]
    correct = {p: torch.zeros(num_classes, dtype=torch.long) for p in pairs}
    seen = {p: torch.zeros(num_classes, dtype=torch.long) for p in pairs}
    for batch in batches:
        if batch.labels is None:
            raise ValueError("cross coherence needs batches with labels")
        for subset, target in pairs:
            rows = batch.mask[:, [batch.index(n) for n in subset]].all(-1)
            if not rows.any():
                continue
            part = batch.select(rows)
            x = generate(part, subset, target)
            if not torch.is_tensor(x) or x.shape[0] != len(part):
                raise ValueError(
                    f"generate(batch, {subset}, {target!r}) must return a tensor with "
                    f"{len(part)} rows, got {getattr(x, 'shape', type(x).__name__)}"
                )
            labels = part.labels.cpu()
            hit = (predict(classifiers[target], x).cpu() == labels).long()
            seen[subset, target] += torch.bincount(labels, minlength=num_classes)
            correct[subset, target] += torch.bincount(labels, weights=hit, minlength=num_classes).long()
    empty = [p for p in pairs if seen[p].sum() == 0]
    if empty:
        raise ValueError(f"no sample observes the inputs of {empty[:3]}: nothing to evaluate")
    acc = {p: correct[p].sum().item() / seen[p].sum().item() for p in pairs}
    per_class = {
        p: np.where(seen[p] > 0, correct[p].numpy() / np.maximum(seen[p].numpy(), 1), np.nan)
        for p in pairs
    }
    sizes = sorted({len(s) for s, _ in pairs})
    by_size = {k: float(np.mean([a for (s, _), a in acc.items() if len(s) == k])) for k in sizes}
    counts = {p: int(seen[p].sum()) for p in pairs}
    return CoherenceResult(acc, per_class, counts, by_size)


def joint_coherence(
    sample: Callable[[int], Mapping[str, torch.Tensor]],
    classifiers: Mapping[str, nn.Module],
    num_samples: int,
    batch_size: int = JOINT_BATCH_SIZE.default,
    names: Optional[Sequence[str]] = None,
) -> float:
    """Fraction of ``num_samples`` unconditional samples on whose class all classifiers agree.

    :param sample: ``sample(n) -> {name: [n, *event_shape]}``, all modalities decoded from the
        same ``n`` prior draws ``z ~ p(z)``.
    :param names: the modalities judged (default: every modality in ``classifiers``).
    """
    names = _check_names(classifiers if names is None else names, classifiers)
    num_samples, batch_size = NUM_SAMPLES.validate(num_samples), JOINT_BATCH_SIZE.validate(batch_size)
    agree = 0
    for start in range(0, num_samples, batch_size):
        n = min(batch_size, num_samples - start)
        xs = sample(n)
        preds = []
        for name in names:
            if name not in xs or xs[name].shape[0] != n:
                raise ValueError(f"sample({n}) must return {n} rows for every modality of {list(names)}; "
                                 f"modality {name!r} has {getattr(xs.get(name), 'shape', None)}")
            preds.append(predict(classifiers[name], xs[name]).cpu())
        preds = torch.stack(preds)
        agree += int((preds == preds[0]).all(0).sum())
    return agree / num_samples
