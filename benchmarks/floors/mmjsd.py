"""mmJSD's step-overhead floor and cases (:mod:`pyro_mm.infer.trace_mmjsd_elbo`), written out:
with o the observed modalities of a row, z_{m,1..K} ~ q(z | x_m) for every m ∈ o (one stratum per
expert), q_0 = p(z), and the dynamic prior f = N(μ, (|o| + 1) σ²) from the product of experts
N(μ, σ²) of the prior and the observed experts,

    L = (1/|o|) Σ_{m∈o} mean_k Σ_{n∈o} log p(x_n | z_{m,k})
        − β/(|o| + 1) [KL(p ‖ f) + Σ_{m∈o} KL(q_m ‖ f)],

the KLs of diagonal Gaussians in closed form, gradients through f into every expert. A missing
modality's stratum draws from its expert (on zeros) and has weight zero."""

from __future__ import annotations

import torch

from pyro_mm.distributions import normal_kl
from step_overhead import _experts, _loglik, _poe


def floor_mmjsd(vae, batch, K: int = 1, beta: float = 1.0):
    loc, scale = _experts(vae, batch)  # [M, B, D]
    observed = batch.mask.T.to(loc.dtype)  # [M, B]
    count = observed.sum(0)  # |o|, [B]
    z = loc + scale * torch.randn((K,) + loc.shape, device=loc.device)  # [K, M, B, D]
    reconstruction = sum(_loglik(vae, batch, n, z) for n in vae.names).mean(0)  # [M, B]
    f_loc, f_scale = _poe(loc, scale, batch.mask[None], torch.ones_like(count, dtype=torch.bool)[None])
    f_loc, f_scale = f_loc[0], f_scale[0] * (count + 1.0).sqrt()[:, None]  # [B, D]
    to_f = (normal_kl(loc, scale, f_loc, f_scale) * observed).sum(0) + normal_kl(torch.zeros(()), torch.ones(()),
                                                                                   f_loc, f_scale)
    bound = (reconstruction * observed).sum(0) / count - beta * to_f / (count + 1.0)
    return -bound.sum(), -bound.sum()


def cases(case):
    """mmJSD at its defaults (β = 1, K = 1) on a complete batch and on MEME's partly paired one."""
    return {
        "mmjsd": case("mmjsd", floor_mmjsd),
        "mmjsd mixed": case("mmjsd", floor_mmjsd, mixed=True),
    }
