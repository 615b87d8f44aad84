"""Queries on a trained model and guide, built from Pyro's effect handlers.

* :func:`predict` — condition on a subset of modalities and generate the others: run the guide on
  the batch with every other modality hidden (z drawn from the posterior, or at its mean), replay
  the model against the guide's trace, and read the likelihood sites' distributions (sampled, or
  at their point estimates);
* :func:`sample_prior` — z from the model's prior, then every modality's likelihood at z
  (``poutine.trace`` of the model);
* :func:`embed` — posterior means given every observed modality and given each modality alone.

Nothing here re-implements sampling: the model and the guide do it. The model and the guide are
any :class:`~pyro_mm.protocols.MultimodalModel` and :class:`~pyro_mm.protocols.MultimodalGuide`.
"""

from __future__ import annotations

from typing import Dict, Sequence

import pyro.distributions as dist
import torch
from pyro import poutine
from pyro.poutine.util import site_is_subsample

from .batch import MultimodalBatch
from .options import NUM_SAMPLES

__all__ = ["point_estimate", "predict", "sample_prior", "embed", "Z_CHOICES", "LIKELIHOOD_CHOICES"]

#: how :func:`predict` takes z: a draw from the posterior or the posterior's mean
Z_CHOICES = ("sample", "mean")
#: how a generated modality is read off its likelihood: its point estimate or a draw
LIKELIHOOD_CHOICES = ("mean", "sample")


def _check(name: str, value: str, choices) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}")


def _read(fn: dist.Distribution, likelihood: str) -> torch.Tensor:
    return point_estimate(fn) if likelihood == "mean" else fn.sample()


def point_estimate(fn: dist.Distribution) -> torch.Tensor:
    """The data-space summary of a likelihood: Bernoulli probabilities, Normal/Laplace locations,
    the most probable token of a Categorical."""
    while isinstance(fn, dist.Independent):
        fn = fn.base_dist
    if isinstance(fn, dist.Bernoulli):
        return fn.probs
    if isinstance(fn, (dist.Normal, dist.Laplace)):
        return fn.loc
    if isinstance(fn, dist.Categorical):
        return fn.logits.argmax(-1)
    raise TypeError(f"no point estimate for a {type(fn).__name__} likelihood")


def predict(model, guide, batch: MultimodalBatch, given: Sequence[str], generate: Sequence[str],
            z: str = "sample", likelihood: str = "mean") -> Dict[str, torch.Tensor]:
    """Generate modalities ``generate`` from the guide's posterior given ``x_given``.

    :param z: ``"sample"``: z ~ q(z | x_given) (default); ``"mean"``: z at the posterior's mean
        (every latent site of the guide at its distribution's mean).
    :param likelihood: ``"mean"``: each likelihood's point estimate (Bernoulli probabilities,
        Normal/Laplace locations, the most probable tokens; default); ``"sample"``: a draw.
    :returns: name -> ``[B, *event_shape]``.
    """
    _check("z", z, Z_CHOICES)
    _check("likelihood", likelihood, LIKELIHOOD_CHOICES)
    if not given:
        raise ValueError("predict needs at least one given modality")
    unknown = [n for n in list(given) + list(generate) if n not in batch.names]
    if unknown:
        raise KeyError(f"predict: unknown modalities {unknown}; the batch has {list(batch.names)}")
    cols = [batch.index(n) for n in given]
    keep = torch.zeros_like(batch.mask)
    keep[:, cols] = batch.mask[:, cols]
    if not keep.any(-1).all():
        raise ValueError(f"some samples observe none of the given modalities {list(given)}")
    conditioned = batch.with_mask(keep)
    with torch.no_grad():
        guide_trace = poutine.trace(guide).get_trace(conditioned)
        if z == "mean":
            for site in guide_trace.nodes.values():
                if site["type"] == "sample" and not site["is_observed"] and not site_is_subsample(site):
                    site["value"] = site["fn"].mean
        model_trace = poutine.trace(poutine.replay(model, trace=guide_trace)).get_trace(conditioned)
    return {name: _read(model_trace.nodes[name]["fn"], likelihood) for name in generate}


def sample_prior(model, num_samples: int, likelihood: str = "mean") -> Dict[str, torch.Tensor]:
    """``num_samples`` draws from the model's prior and every modality generated from them
    (``likelihood`` as in :func:`predict`); the latent draws under the latent site's name. A model
    with a ``generative_prior()`` (MEME's learned pseudo-sample priors) draws z from it instead of
    its latent site's prior."""
    _check("likelihood", likelihood, LIKELIHOOD_CHOICES)
    num_samples = NUM_SAMPLES.validate(num_samples)
    like = model.prior().mean
    data = {}
    for m in model.modalities:
        dtype = torch.long if m.likelihood.data_kind == "long" else like.dtype
        data[m.name] = torch.zeros((num_samples,) + m.event_shape, dtype=dtype, device=like.device)
    dummy = MultimodalBatch(data)
    run = model
    with torch.no_grad():
        if hasattr(model, "generative_prior"):
            run = poutine.condition(model, data={model.latent: model.generative_prior().sample((num_samples,))})
        trace = poutine.trace(run).get_trace(dummy)
    out = {m.name: _read(trace.nodes[m.name]["fn"], likelihood) for m in model.modalities}
    out[model.latent] = trace.nodes[model.latent]["value"]
    return out


def embed(guide, batch: MultimodalBatch) -> Dict[str, torch.Tensor]:
    """Posterior means, each ``[B, D]``: ``"joint"``, the guide's posterior given every observed
    modality, q(z | x_o); and, with more than one modality, one entry per modality m: the guide's
    posterior given x_m alone, q(z | x_m) (the posterior :func:`predict` uses with ``given=[m]``:
    for MVAE the expert times the prior expert, for the mixture guides the unimodal expert),
    **NaN where x_m is missing**. All pairs go through one guide call
    (:meth:`MultimodalBatch.each_alone`)."""
    with torch.no_grad():
        joint = guide.posterior(batch).mean
        out = {"joint": joint}
        if len(batch.names) > 1:
            rows, cols, alone = batch.each_alone()
            means = guide.posterior(alone).mean
            for i, name in enumerate(batch.names):
                pick = cols == i
                out[name] = joint.new_full(joint.shape, float("nan")).index_copy(0, rows[pick], means[pick])
    return out
