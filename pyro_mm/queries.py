"""Queries on a trained model and guide, built from Pyro's effect handlers.

* :func:`predict` — condition on a subset of modalities and generate the others: run the guide on
  the batch with every other modality hidden, replay the model against the guide's trace, and
  read the likelihood sites' distributions;
* :func:`sample_prior` — z ~ p(z), then every modality's likelihood at z (``poutine.trace`` of the
  model);
* :func:`embed` — posterior means given every observed modality and given each modality alone.

Nothing here re-implements sampling: the model and the guide do it.
"""

from __future__ import annotations

from typing import Dict, Sequence

import pyro.distributions as dist
import torch
from pyro import poutine

from .batch import MultimodalBatch

__all__ = ["point_estimate", "predict", "sample_prior", "embed"]


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
            mean: bool = True) -> Dict[str, torch.Tensor]:
    """Generate modalities ``generate`` from z ~ q(z | x_given).

    :param mean: return point estimates (default) or samples of the likelihoods.
    :returns: name -> ``[B, *event_shape]``.
    """
    cols = [batch.index(n) for n in given]
    if not cols:
        raise ValueError("predict needs at least one given modality")
    keep = torch.zeros_like(batch.mask)
    keep[:, cols] = batch.mask[:, cols]
    if not keep.any(-1).all():
        raise ValueError(f"some samples observe none of the given modalities {list(given)}")
    conditioned = batch.with_mask(keep)
    with torch.no_grad():
        guide_trace = poutine.trace(guide).get_trace(conditioned)
        model_trace = poutine.trace(poutine.replay(model, trace=guide_trace)).get_trace(conditioned)
    out = {}
    for name in generate:
        fn = model_trace.nodes[name]["fn"]
        out[name] = point_estimate(fn) if mean else fn.sample()
    return out


def sample_prior(model, num_samples: int, mean: bool = True) -> Dict[str, torch.Tensor]:
    """``num_samples`` draws z ~ p(z) and every modality generated from them."""
    device = model.prior_loc.device
    data = {}
    for m in model.modalities:
        dtype = torch.long if m.likelihood.data_kind == "long" else model.prior_loc.dtype
        data[m.name] = torch.zeros((num_samples,) + m.event_shape, dtype=dtype, device=device)
    dummy = MultimodalBatch(data)
    with torch.no_grad():
        trace = poutine.trace(model).get_trace(dummy)
    out = {m.name: point_estimate(trace.nodes[m.name]["fn"]) if mean else trace.nodes[m.name]["fn"].sample()
           for m in model.modalities}
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
