"""The generative discrepancy of sub-sampled mixture bounds, in closed form (Daunhawer et al. 2022).

For a model whose decoders are linear with Normal likelihoods (a linear-Gaussian model, e.g. one
trained on the synthetic data of ``pyro-mm demo``), this reports, at the *learned* parameters θ,

* the exact log-likelihood E log p_θ(X_o) of the data under the learned model, and
* Σ_S ω_S Δ_S(θ): how far below log p_θ(X) the best sub-sampled mixture bound over the subset
  family must stay (:meth:`~pyro_mm.linear_gaussian.LinearGaussianModel.subsampling_gap`),

to be read beside the method's trained bound: the sub-sampling cap, numerically.
"""

from __future__ import annotations

from typing import Dict, Optional, Sequence

from pyro_mm.batch import MultimodalBatch
from pyro_mm.linear_gaussian import LinearGaussianModel

__all__ = ["generative_discrepancy"]


def generative_discrepancy(modalities, batch: MultimodalBatch, subsets: Optional[Sequence[Sequence[int]]] = None,
                           weights: Optional[Sequence[float]] = None,
                           z_dim: Optional[int] = None) -> Dict[str, Optional[float]]:
    """``{"learned_log_likelihood", "subsampling_gap"}`` of linear-Gaussian ``modalities`` on
    ``batch`` (the gap is ``None`` when no subset family is given, e.g. for a non-mixture bound).
    With ``z_dim`` below the decoders' input size, the rest is each modality's private latent: the
    gap is then that of the shared latent's posteriors with the private latents integrated out."""
    learned = LinearGaussianModel.from_modalities(modalities, z_dim)
    x = {n: batch[n] for n in batch.names}
    log_lik = learned.log_likelihood_masked(x, batch.mask).mean().item()
    gap = learned.subsampling_gap(subsets, weights) if subsets is not None else None
    return {"learned_log_likelihood": log_lik, "subsampling_gap": gap}
