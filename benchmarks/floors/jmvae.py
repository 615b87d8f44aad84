"""JMVAE-KL's step-overhead floor and cases (:mod:`pyro_mm.infer.trace_jmvae_elbo`), written out:
a complete row b uses the joint encoder, q_b = q(z | X), a row with a missing modality the product
of its observed unimodal experts without the prior expert; with z_1..K ~ q_b,

    L_b = LME_k [Σ_{m observed} log p(x_m | z_k) + β (log p(z_k) − log q_b(z_k))]
          − α [b complete] Σ_m KL(q(z | X) ‖ q(z | x_m)),

the KL of diagonal Gaussians in closed form, gradients to both sides (the IWAE bound's own
gradient for the first term)."""

from __future__ import annotations

import math

import torch

from pyro_mm.distributions import normal_kl, normal_log_prob
from step_overhead import _experts, _loglik, _poe


def floor_jmvae(vae, batch, K: int = 1, alpha: float = 0.1, beta: float = 1.0):
    loc, scale = _experts(vae, batch)  # [M, B, D]
    joint_loc, joint_scale = vae.guide.joint_encoder(batch)  # [B, D]
    complete = batch.mask.all(-1)  # [B]
    p_loc, p_scale = _poe(loc, scale, batch.mask[None], torch.zeros_like(complete)[None])  # [1, B, D]
    q_loc = torch.where(complete[:, None], joint_loc, p_loc[0])
    q_scale = torch.where(complete[:, None], joint_scale, p_scale[0])
    z = q_loc + q_scale * torch.randn((K, 1) + q_loc.shape, device=loc.device)  # [K, 1, B, D]: one stratum
    lw = sum(_loglik(vae, batch, n, z) for n in vae.names) \
        + beta * (normal_log_prob(z, 0.0, torch.ones(())) - normal_log_prob(z, q_loc, q_scale))
    kl = normal_kl(joint_loc, joint_scale, loc, scale).sum(0)  # [B]
    bound = lw[:, 0].logsumexp(0) - math.log(K) - alpha * torch.where(complete, kl, torch.zeros(()))
    return -bound.sum(), -bound.sum()


def cases(case):
    """JMVAE at its defaults (α = 0.1, β = 1, K = 1) on a complete batch, and on MEME's partly
    paired one (the products of the unimodal experts)."""
    return {
        "jmvae": case("jmvae", floor_jmvae),
        "jmvae mixed": case("jmvae", floor_jmvae, mixed=True),
    }
