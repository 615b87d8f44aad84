"""MVTCAE's step-overhead floor and cases (:mod:`pyro_mm.infer.trace_mvtcae_elbo`), written out:
q = N(μ, σ²) the product of the observed experts without the prior expert, z_1..K ~ q, M the
model's number of modalities,

    L = (M − α)/M · mean_k Σ_{m observed} log p(x_m | z_k)
        − β [α/M Σ_{m observed} KL(q ‖ q_m) + (1 − α) KL(q ‖ p)],

the KLs of diagonal Gaussians in closed form, gradients to both sides."""

from __future__ import annotations

import torch

from pyro_mm.distributions import normal_kl
from step_overhead import _experts, _loglik, _poe


def floor_mvtcae(vae, batch, K: int = 1, alpha: float = 5 / 6, beta: float = 1.0):
    loc, scale = _experts(vae, batch)  # [M, B, D]
    M = loc.shape[0]
    q_loc, q_scale = _poe(loc, scale, batch.mask[None], torch.zeros_like(batch.mask[:, 0])[None])  # [1, B, D]
    z = q_loc + q_scale * torch.randn((K,) + q_loc.shape, device=loc.device)  # [K, 1, B, D]: one stratum
    reconstruction = sum(_loglik(vae, batch, n, z) for n in vae.names).mean(0)[0]  # [B]
    to_experts = (normal_kl(q_loc, q_scale, loc, scale) * batch.mask.T).sum(0)
    to_prior = normal_kl(q_loc[0], q_scale[0], torch.zeros(()), torch.ones(()))
    bound = (M - alpha) / M * reconstruction - beta * (alpha / M * to_experts + (1 - alpha) * to_prior)
    return -bound.sum(), -bound.sum()


def cases(case):
    """MVTCAE at its defaults (α = 5/6, β = 1, K = 1) on a complete batch and on MEME's partly
    paired one."""
    return {
        "mvtcae": case("mvtcae", floor_mvtcae),
        "mvtcae mixed": case("mvtcae", floor_mvtcae, mixed=True),
    }
