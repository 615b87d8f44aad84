"""Importance-sampled likelihoods with the Pareto k̂ diagnostic.

With the guide's posterior q(z | X_o) as proposal (a mixture is sampled as a mixture and scored by
its mixture density), K draws z_k give the importance log-weights

.. math:: \\log w_k = \\log p_\\theta(X_o, z_k) - \\log q(z_k \\mid X_o), \\qquad
          \\log \\hat p(X_o) = \\log \\tfrac1K \\textstyle\\sum_k w_k ,

a consistent estimate of log p_θ(X_o) whose expectation lies below it. Its reliability is judged
by the Pareto k̂ of the weights (Vehtari et al. 2024): below 0.7 the estimate is trustworthy.

The conditional log p(x_n | x_S) is estimated as MMVAE does, with q(z | x_S) standing in for the
posterior p(z | x_S): log (1/K) Σ_k p_θ(x_n | z_k), z_k ~ q(z | x_S).

Everything runs batched over samples and particles, in chunks that bound the memory: by
default a chunk is all K particles of a block of samples, at most :func:`chunk_rows` (particle,
sample) rows whatever the number of samples, so that one call on a whole test set takes bounded
memory and encodes every sample once (the chunk sizes' reasons: ``docs/performance.md``). The model
decodes and scores a modality only for the samples whose estimate reads its likelihood
(:class:`~pyro_mm.infer.SelectiveDecodeMessenger`): the joint estimate skips the modalities a
sample lacks, the conditional one decodes its target alone.

References: Burda et al., ICLR 2016; Shi et al., NeurIPS 2019; Vehtari, Simpson, Gelman, Yao,
Gabry, *Pareto Smoothed Importance Sampling*, JMLR 2024.
"""

from __future__ import annotations

import math
from typing import Callable, Dict, Optional, Sequence

import pyro
import torch
from pyro import poutine

from pyro_mm.batch import MultimodalBatch
from pyro_mm.infer.selective_decode_messenger import SelectiveDecodeMessenger, observed_rows
from pyro_mm.metrics.pareto import pareto_khat
from pyro_mm.options import NUM_PARTICLES, integer

__all__ = ["importance_log_weights", "log_likelihood", "conditional_log_likelihood", "chunk_rows",
           "MAX_CHUNK_ROWS", "CPU_CHUNK_BYTES", "CHUNK_SIZE"]

#: most (particle, sample) rows in one chunk on any device
MAX_CHUNK_ROWS = 2 ** 15
#: on a CPU, the most bytes a chunk's widest modality takes as float32 (``docs/performance.md``)
CPU_CHUNK_BYTES = 2 ** 23
#: the particles of one chunk (``None``: all K, up to :data:`MAX_CHUNK_ROWS`)
CHUNK_SIZE = integer("chunk_size", None, "particles per chunk (none: all of them, up to MAX_CHUNK_ROWS)", minimum=1)


def chunk_rows(batch: MultimodalBatch) -> int:
    """Most (particle, sample) rows of one chunk for ``batch``: on a CPU as many as keep the widest
    modality within :data:`CPU_CHUNK_BYTES` (one float32 per data entry, a proxy for its decoder's
    output), on other devices :data:`MAX_CHUNK_ROWS`; never more than :data:`MAX_CHUNK_ROWS`."""
    if batch.device.type != "cpu":
        return MAX_CHUNK_ROWS
    widest = max(batch[name][0].numel() for name in batch.names) * 4
    return max(1, min(MAX_CHUNK_ROWS, CPU_CHUNK_BYTES // max(widest, 1)))


def _chunked(model, guide, batch: MultimodalBatch, num_particles: int, chunk_size: Optional[int],
             weigh: Callable, decoded_rows: Callable) -> torch.Tensor:
    """``[K, B]``: ``weigh(rows, model_trace, guide_trace)`` (``[k, b]``) over every chunk, the
    model decoding modality m only for the samples ``decoded_rows(block)[m]`` of a block (a
    modality not named: all of them).

    A chunk is ``chunk_size`` particles (default: all K, up to :data:`MAX_CHUNK_ROWS`), laid on a
    plate at dim −2, of a block of ``chunk_rows(batch) // chunk_size`` samples (at least one), so
    that a chunk never holds more than :func:`chunk_rows` rows unless one sample's particles do
    and, with the default, every sample is encoded once."""
    num_particles = NUM_PARTICLES.validate(num_particles)
    chunk_size = CHUNK_SIZE.validate(chunk_size)
    if len(batch) == 0:
        raise ValueError("the batch holds no sample: there is no likelihood to estimate")
    if chunk_size is None:
        chunk_size = min(num_particles, MAX_CHUNK_ROWS)
    block = max(1, chunk_rows(batch) // chunk_size)
    blocks = []
    for first in range(0, len(batch), block):
        rows = slice(first, min(first + block, len(batch)))
        part = batch.select(rows)
        decoding = SelectiveDecodeMessenger({}, decoded_rows(part))
        chunks = []
        for start in range(0, num_particles, chunk_size):
            size = min(chunk_size, num_particles - start)

            def particles(fn, size=size):
                def wrapped(*args, **kwargs):
                    with pyro.plate("particles", size, dim=-2):
                        return fn(*args, **kwargs)
                return wrapped

            guide_trace = poutine.trace(particles(guide)).get_trace(part)
            model_trace = poutine.trace(poutine.replay(decoding(particles(model)), trace=guide_trace)).get_trace(part)
            chunks.append(weigh(rows, model_trace, guide_trace).expand(size, len(part)))
        blocks.append(torch.cat(chunks, 0))
    return torch.cat(blocks, 1)


def _scaled_log_prob(site, value=None):
    """The site's scaled log-density at its own value, masked as the model masks it; or, given
    ``value``, unmasked at ``value`` (a conditional target, hidden from the guide, scored on the
    real data)."""
    if value is not None:
        return site["fn"].log_prob(value) * site["scale"]
    log_p = site["fn"].log_prob(site["value"]) * site["scale"]
    return log_p if site["mask"] is None else log_p * site["mask"]


def _sample_sites(trace):
    return [s for n, s in trace.nodes.items() if s["type"] == "sample" and n != "particles"]


def importance_log_weights(model, guide, batch: MultimodalBatch, num_particles: int = 1000,
                           chunk_size: Optional[int] = None) -> torch.Tensor:
    """Log-weights ``[K, B]``: log p(X_o, z_k) − log q(z_k | X_o), ``z_k`` from the guide."""
    def weigh(rows, model_trace, guide_trace):
        lw = sum(_scaled_log_prob(s) for s in _sample_sites(model_trace))
        return lw - sum(_scaled_log_prob(s) for s in _sample_sites(guide_trace) if not s["is_observed"])

    with torch.no_grad():
        return _chunked(model, guide, batch, num_particles, chunk_size, weigh,
                        lambda part: observed_rows(part.mask, part.names))


def _estimate(log_weights: torch.Tensor) -> Dict[str, torch.Tensor]:
    K = log_weights.shape[0]
    estimate = log_weights.logsumexp(0) - math.log(K)
    return {"log_likelihood": estimate, "khat": pareto_khat(log_weights.T)}


def log_likelihood(model, guide, batch: MultimodalBatch, num_particles: int = 1000,
                   chunk_size: Optional[int] = None) -> Dict[str, torch.Tensor]:
    """Importance-sampled log p(X_o) per sample and its Pareto k̂: ``{"log_likelihood": [B],
    "khat": [B]}``."""
    return _estimate(importance_log_weights(model, guide, batch, num_particles, chunk_size))


def conditional_log_likelihood(model, guide, batch: MultimodalBatch, target: str, given: Sequence[str],
                               num_particles: int = 1000, chunk_size: Optional[int] = None) -> Dict[str, torch.Tensor]:
    """log p(x_target | x_given) ≈ log (1/K) Σ_k p(x_target | z_k), z_k ~ q(z | x_given), for the
    samples that observe ``target`` and all of ``given`` (``"rows"`` says which)."""
    if target in given:
        raise ValueError(f"target {target!r} is also given")
    cols = [batch.index(n) for n in given]
    rows = batch.mask[:, cols].all(-1) & batch.observed(target)
    if not rows.any():
        raise ValueError(f"no sample observes {target!r} together with {list(given)}")
    sub = batch.select(rows)
    keep = torch.zeros_like(sub.mask)
    keep[:, cols] = True
    conditioned = sub.with_mask(keep)  # the guide sees only x_given
    with torch.no_grad():
        log_p = _chunked(model, guide, conditioned, num_particles, chunk_size,
                         lambda rows, model_trace, _: _scaled_log_prob(model_trace.nodes[target], sub[target][rows]),
                         lambda part: {n: torch.zeros(len(part), dtype=torch.bool) for n in part.names if n != target})
    out = _estimate(log_p)
    out["rows"] = rows
    return out
