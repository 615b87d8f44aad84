"""Multimodal linear-Gaussian models: every likelihood, posterior and bound gap in closed form.

The model (float64 throughout), optionally with a private latent w_m per modality (MMVAE+),

.. math:: z \\sim N(0, I_D),\\ w_m \\sim N(0, I_{D_w}), \\qquad
          x_m = A_m z + B_m w_m + b_m + \\sigma_m \\varepsilon_m, \\quad \\varepsilon_m \\sim N(0, I_{d_m}),

has Gaussian marginals and posteriors whose covariances do not depend on the data values. With
C_m = B_m B_mᵀ + σ_m² I the noise of x_m given z (σ_m² I without private latents):

* log p(x_S) = log N(x_S; b_S, A_S A_Sᵀ + blockdiag C_S) for any subset S (missing modalities
  integrate out);
* p(z | x_S) = N(Σ_{z|x_S} Σ_{m∈S} A_mᵀC_m⁻¹(x_m − b_m), Σ_{z|x_S}),
  Σ_{z|x_S} = (I + Σ_{m∈S} Λ_m)⁻¹, Λ_m = A_mᵀ C_m⁻¹ A_m;
* the *likelihood expert* of modality m, p(x_m | z) ∝ N(z; μ_m(x_m), Λ_m⁻¹), so that the product
  of the prior and the observed experts is the exact posterior. When every Λ_m is diagonal
  (orthogonal columns of A_m, see :meth:`LinearGaussianModel.random`) these experts are diagonal
  Gaussians, i.e. exactly representable by pyro_mm's encoders.

The generative discrepancy of sub-sampled mixture bounds (Daunhawer et al. 2022; ``docs/objectives.md``):
by the ELBO identity L_S(X) = log p(X) − KL(q(z|x_S) ‖ p(z|X)); the best encoder of x_S is
q*(z|x_S) = N(E[z|x_S], Σ_{z|X}), and averaging the remaining KL over the data gives

.. math:: \\Delta_S = \\tfrac12\\big[\\operatorname{tr}(\\Sigma_{z|X}^{-1}\\Sigma_{z|x_S}) - D\\big],
          \\qquad \\max_\\phi \\mathbb{E}[\\mathcal{L}_{\\mathcal S}] = \\mathbb{E}\\log p_\\theta(X)
          - \\sum_S \\omega_S \\Delta_S .

:class:`OptimalSubsetMixture` is that optimal mixture posterior (for diagonal Λ_m).
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import torch

from .distributions import SubsetMixture, product_of_experts
from .likelihoods import Normal
from .modality import Modality
from .nets import LinearDecoder, LinearEncoder

__all__ = ["LinearGaussianModel", "OptimalSubsetMixture"]


class LinearGaussianModel:
    """x_m = A_m z + B_m w_m + b_m + σ_m ε.

    :param A: list of ``[d_m, D]`` loadings of the shared latent.
    :param b: list of ``[d_m]`` offsets.
    :param sigma: list of noise standard deviations σ_m (scalars).
    :param names: modality names (default ``x0, x1, ...``).
    :param B: optional list of ``[d_m, D_w]`` loadings of the private latents (default: none).
    """

    def __init__(self, A: Sequence[torch.Tensor], b: Sequence[torch.Tensor], sigma: Sequence[float],
                 names: Optional[Sequence[str]] = None, B: Optional[Sequence[torch.Tensor]] = None):
        if not (len(A) == len(b) == len(sigma)) or not A:
            raise ValueError("A, b and sigma need one entry per modality")
        self.A = [torch.as_tensor(a, dtype=torch.float64) for a in A]
        self.b = [torch.as_tensor(v, dtype=torch.float64) for v in b]
        self.sigma = torch.as_tensor([float(s) for s in sigma], dtype=torch.float64)
        self.names = tuple(names) if names is not None else tuple(f"x{m}" for m in range(len(A)))
        self.z_dim = self.A[0].shape[1]
        if B is None:
            B = [torch.zeros(a.shape[0], 0, dtype=torch.float64) for a in self.A]
        if len(B) != len(self.A) or any(torch.as_tensor(m).shape[0] != a.shape[0] for m, a in zip(B, self.A)):
            raise ValueError("B needs one [d_m, D_w] loading per modality")
        self.B = [torch.as_tensor(m, dtype=torch.float64) for m in B]
        self.private_dim = self.B[0].shape[1]

    @property
    def num_modalities(self) -> int:
        return len(self.A)

    @classmethod
    def random(cls, dims: Sequence[int], z_dim: int, seed: int = 0, noise=(0.5, 1.0),
               loading=(0.5, 2.0), names=None, private_dim: int = 0) -> "LinearGaussianModel":
        """A random model whose Λ_m are diagonal: [A_m, B_m] = Q_m diag(s_m) with orthonormal
        columns Q_m (needs d_m ≥ D + D_w; A_mᵀB_m = 0, so that the posterior of (z, w_m) given x_m
        alone factorises), loadings s_m and noise σ_m uniform in the given ranges."""
        g = torch.Generator().manual_seed(seed)
        A, B, b, sigma = [], [], [], []
        width = z_dim + private_dim
        for d in dims:
            if d < width:
                raise ValueError(f"each modality needs at least z_dim + private_dim = {width} dimensions, got {d}")
            q, _ = torch.linalg.qr(torch.randn(d, width, generator=g, dtype=torch.float64))
            s = loading[0] + (loading[1] - loading[0]) * torch.rand(width, generator=g, dtype=torch.float64)
            A.append((q * s)[:, :z_dim])
            B.append((q * s)[:, z_dim:])
            b.append(torch.randn(d, generator=g, dtype=torch.float64))
            sigma.append(noise[0] + (noise[1] - noise[0]) * torch.rand((), generator=g).item())
        return cls(A, b, sigma, names, B)

    # --- sampling and exact densities ---------------------------------------------------------
    def sample(self, n: int, generator: Optional[torch.Generator] = None) -> Dict[str, torch.Tensor]:
        """``n`` samples: a dict modality name -> ``[n, d_m]`` (and ``"z"`` -> ``[n, D]``)."""
        z = torch.randn(n, self.z_dim, generator=generator, dtype=torch.float64)
        out = {"z": z}
        for name, A, B, b, s in zip(self.names, self.A, self.B, self.b, self.sigma):
            noise = torch.randn(n, A.shape[0], generator=generator, dtype=torch.float64)
            out[name] = z @ A.T + b + s * noise
            if self.private_dim:
                w = torch.randn(n, self.private_dim, generator=generator, dtype=torch.float64)
                out[name] = out[name] + w @ B.T
                out[f"w_{name}"] = w
        return out

    def noise_cov(self, m: int) -> torch.Tensor:
        """C_m = B_m B_mᵀ + σ_m² I, the covariance of x_m given z."""
        d = self.A[m].shape[0]
        return self.B[m] @ self.B[m].T + self.sigma[m] ** 2 * torch.eye(d, dtype=torch.float64)

    def _precision(self, m: int) -> torch.Tensor:
        return self.A[m].T @ torch.linalg.solve(self.noise_cov(m), self.A[m])

    def posterior_cov(self, subset: Sequence[int]) -> torch.Tensor:
        """Σ_{z|x_S} = (I + Σ_{m∈S} Λ_m)⁻¹."""
        T = torch.eye(self.z_dim, dtype=torch.float64)
        for m in subset:
            T = T + self._precision(m)
        return torch.linalg.inv(T)

    def posterior_mean(self, x: Dict[str, torch.Tensor], subset: Sequence[int]) -> torch.Tensor:
        """E[z | x_S], ``[n, D]``."""
        eta = 0.0
        for m in subset:
            eta = eta + (x[self.names[m]] - self.b[m]) @ torch.linalg.solve(self.noise_cov(m), self.A[m])
        return eta @ self.posterior_cov(subset)

    def log_likelihood(self, x: Dict[str, torch.Tensor], subset: Optional[Sequence[int]] = None) -> torch.Tensor:
        """Exact log p(x_S) per sample, ``[n]`` (S = all modalities by default)."""
        subset = range(self.num_modalities) if subset is None else subset
        A = torch.cat([self.A[m] for m in subset])
        mean = torch.cat([self.b[m] for m in subset])
        cov = A @ A.T + torch.block_diag(*[self.noise_cov(m) for m in subset])
        value = torch.cat([x[self.names[m]] for m in subset], -1)
        return torch.distributions.MultivariateNormal(mean, cov).log_prob(value)

    def log_likelihood_masked(self, x: Dict[str, torch.Tensor], observed: torch.Tensor) -> torch.Tensor:
        """Exact log p(x_o) of every sample under its own observation mask ``[n, M]``."""
        out = torch.empty(observed.shape[0], dtype=torch.float64)
        for pattern in torch.unique(observed, dim=0):
            rows = (observed == pattern).all(-1)
            subset = pattern.nonzero().flatten().tolist()
            out[rows] = self.log_likelihood({k: v[rows] for k, v in x.items()}, subset)
        return out

    def subset_gap(self, subset: Sequence[int], given: Optional[Sequence[int]] = None) -> float:
        """Δ_S = ½ [tr(Σ_{z|X}⁻¹ Σ_{z|x_S}) − D], with X the modalities ``given`` (default all)."""
        given = range(self.num_modalities) if given is None else given
        full_inv = torch.linalg.inv(self.posterior_cov(given))
        return 0.5 * (torch.trace(full_inv @ self.posterior_cov(subset)).item() - self.z_dim)

    def subsampling_gap(self, subsets: Sequence[Sequence[int]], weights: Optional[Sequence[float]] = None,
                        given: Optional[Sequence[int]] = None) -> float:
        """Σ_S ω_S Δ_S over the subsets of ``given`` (weights renormalised over them)."""
        given = list(range(self.num_modalities)) if given is None else list(given)
        weights = [1.0] * len(subsets) if weights is None else list(weights)
        pairs = [(s, w) for s, w in zip(subsets, weights) if set(s) <= set(given)]
        total = sum(w for _, w in pairs)
        return sum(w / total * self.subset_gap(s, given) for s, w in pairs)

    # --- as pyro_mm modalities ----------------------------------------------------------------
    def modalities(self, learn_scale: bool = False) -> List[Modality]:
        """One :class:`~pyro_mm.modality.Modality` per modality with the true decoders
        (``LinearDecoder`` = A_m z + b_m, Normal(σ_m)) and the exact likelihood experts as
        encoders (``LinearEncoder``); requires diagonal Λ_m. All parameters are float64."""
        mods = []
        for m, name in enumerate(self.names):
            lam = self._precision(m)
            if not torch.allclose(lam, torch.diag(torch.diagonal(lam)), atol=1e-10):
                raise ValueError(f"modality {name!r}: A_mᵀA_m is not diagonal; the exact expert is not diagonal")
            lam = torch.diagonal(lam)
            d = self.A[m].shape[0]
            enc = LinearEncoder(d, self.z_dim).double()
            dec = LinearDecoder(self.z_dim, d).double()
            W = torch.linalg.solve(self.noise_cov(m), self.A[m]).T / lam[:, None]  # Λ⁻¹ Aᵀ C⁻¹
            with torch.no_grad():
                enc.linear.weight.copy_(W)
                enc.linear.bias.copy_(-W @ self.b[m])
                enc.log_scale.copy_(-0.5 * lam.log())
                dec.linear.weight.copy_(self.A[m])
                dec.linear.bias.copy_(self.b[m])
            lik = Normal(float(self.sigma[m]), learn_scale=learn_scale).double()
            mods.append(Modality(name, (d,), enc, dec, lik))
        return mods

    def posterior_modalities(self) -> List[Modality]:
        """Modalities for a model with private latents (decoders ``LinearDecoder`` = [A_m, B_m]
        applied to [z, w_m], Normal(σ_m)) whose encoders give the exact posterior of (z, w_m)
        given x_m alone, ``(loc, scale)`` of size D + D_w: the exact unimodal posteriors of a
        mixture-of-experts guide (no prior expert). Requires A_mᵀB_m = 0 and diagonal loadings
        (:meth:`random`), where that posterior factorises into diagonal Gaussians."""
        mods = []
        for m, name in enumerate(self.names):
            loading = torch.cat([self.A[m], self.B[m]], 1)  # [d, D + D_w]
            precision = torch.eye(loading.shape[1], dtype=torch.float64) + loading.T @ loading / self.sigma[m] ** 2
            if not torch.allclose(precision, torch.diag(torch.diagonal(precision)), atol=1e-10):
                raise ValueError(f"modality {name!r}: the posterior of (z, w) given x is not diagonal")
            variance = 1.0 / torch.diagonal(precision)
            d = loading.shape[0]
            enc = LinearEncoder(d, loading.shape[1]).double()
            dec = LinearDecoder(loading.shape[1], d).double()
            W = variance[:, None] * loading.T / self.sigma[m] ** 2
            with torch.no_grad():
                enc.linear.weight.copy_(W)
                enc.linear.bias.copy_(-W @ self.b[m])
                enc.log_scale.copy_(0.5 * variance.log())
                dec.linear.weight.copy_(loading)
                dec.linear.bias.copy_(self.b[m])
            mods.append(Modality(name, (d,), enc, dec, Normal(float(self.sigma[m])).double()))
        return mods

    @classmethod
    def from_modalities(cls, modalities: Sequence[Modality], z_dim: Optional[int] = None) -> "LinearGaussianModel":
        """The linear-Gaussian model that modalities with ``LinearDecoder`` s and Normal
        likelihoods define (to score a learned model exactly); with ``z_dim`` smaller than the
        decoders' input, the inputs past ``z_dim`` are the modality's private latent."""
        A, B, b, sigma = [], [], [], []
        for m in modalities:
            if not isinstance(m.decoder, LinearDecoder) or not isinstance(m.likelihood, Normal):
                raise TypeError(f"modality {m.name!r} is not linear-Gaussian")
            weight = m.decoder.linear.weight.detach().double()
            shared = weight.shape[1] if z_dim is None else z_dim
            A.append(weight[:, :shared])
            B.append(weight[:, shared:])
            b.append(m.decoder.linear.bias.detach().double())
            sigma.append(float(m.likelihood.scale.detach()))
        return cls(A, b, sigma, [m.name for m in modalities], B)


class OptimalSubsetMixture(SubsetMixture):
    """The mixture whose component for subset S is the optimal encoder of a linear-Gaussian model,
    q*(z | x_S) = N(E[z | x_S], Σ_{z|X_o}): the mean of the product of the prior and the exact
    likelihood experts of S, with the covariance of the posterior given every observed modality.
    Built from the exact experts of :meth:`LinearGaussianModel.modalities`."""

    def component_params(self, subsets, detach=False):
        loc, scale = self._experts(detach)
        mean, _ = product_of_experts(loc, scale, subsets & self.observed, True)
        _, full_scale = product_of_experts(loc, scale, self.observed, True)
        return mean, full_scale.expand_as(mean)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(OptimalSubsetMixture, _instance)
        return super().expand(batch_shape, _instance=new)

