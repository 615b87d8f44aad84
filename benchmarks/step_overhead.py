"""How much a pyro_mm training step costs beyond the networks it drives.

For every method and estimator the harness times, **interleaved in one process**, (a) one full
training step through pyro_mm — the method object built through the registry
(:data:`pyro_mm.registry.METHODS`), whose ``forward(batch)`` is the training loss the
:class:`~pyro_mm.training.Trainer` calls, forward, backward, Adam — and (b) the same step
of a plain-PyTorch implementation of the same objective with the *same* network modules and data,
written below: the floor. Each repeat alternates single steps of (a) and (b) ``--steps`` times per
case, so that a slow spell of a shared machine hits both; the ratio (a)/(b) of every repeat gives
the median and inter-quartile range reported, beside samples per second and the peak memory of one
step of each (CPU: the rise of the resident set's high-water mark over its level before the step,
after returning freed memory to the system; CUDA: ``torch.cuda.max_memory_allocated``).

Every floor computes the value of pyro_mm's objective from the same random numbers drawn in the
same order (encoders → subset draws → ``randn``, or ``uniform_`` for Laplace draws);
:func:`check_values` measures the relative gap
between the two losses (the test asserts it is at float precision), so the ratio compares like
with like. Floors compute what a hand-written implementation needs and nothing more: the
products of experts in precision form, mixture densities by ``logsumexp``, MVAE's subset terms
decoding only their own modalities, MEME's own-modality likelihood only at its main sample and its
classifier only on the paired samples and no pseudo-sample prior on a fully paired batch, MMVAE+'s
prior and posterior densities of a private latent only in its own stratum, no decoder run on a
sample that lacks its modality. The DReG floors compute the IWAE value and a
doubly-reparameterised surrogate with the same operations as pyro_mm (gradients through w̃² for
the encoders by a hook on z — and on MMVAE+'s own-stratum w_m —, w̃ for the decoders).
Every registered method has at least one case (the tests check it). The floors above are written
here; a further method's floor and cases live in a file of their own, ``benchmarks/floors/<method>.py``,
which imports the shared helpers from this module (``from step_overhead import _experts, ...``) and
defines ``cases(case) -> {name: case(method, floor, **options)}`` with the helper of :func:`cases`.

**The contract checks** (:mod:`pyro_mm.infer.contract`) run on an objective's first evaluation of
a model, guide and batch layout — here inside the value check, before any timed step. Every
pyro_mm case also times, interleaved with the two above, (c) the same step with the checks turned
off (``elbo.contract.enabled = False``), (a) and (c) swapping places every other step; the ratio
(a)/(c) ("checked / unchecked") says what a step after the first pays for them: its median should
be 1 within the machine's noise. Below that
noise, the warm check alone — the key and its look-up, plus the mask read of a complete batch,
whose modalities are never seen missing — is timed over 1000 calls ("warm check", µs per step).
The one-off cost of the check itself (a plain run of the guide and the model, no gradient) is
timed on a cold check of its own ("check once").

Two more rows run the unimodal VAE's model and guide through Pyro's own ``Trace_ELBO`` and its
JIT variant ``JitTrace_ELBO`` (``torch.jit.trace`` of the whole loss, compiled on the first step),
against the same floor: what Pyro's tracing costs without pyro_mm's objective, and what JIT buys.
pyro_mm's own ELBOs have no JIT variant; these rows say whether one would pay.

    python benchmarks/step_overhead.py [--small] [--device cuda] [--no-validation] [--repeats R] [--steps N]
                                       [--only CASE ...] [--out DIR]
"""

from __future__ import annotations

import argparse
import ctypes
import importlib.util
import json
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Callable, Dict, Optional, Sequence

import pyro
import torch
from pyro.infer import JitTrace_ELBO, Trace_ELBO
from pyro.infer.util import is_validation_enabled
from torch.nn import functional as F

from pyro_mm.batch import MultimodalBatch
from pyro_mm.distributions import laplace_log_prob, normal_kl, normal_log_prob
from pyro_mm.infer.contract import ContractCheck
from pyro_mm.registry import METHODS
from pyro_mm.modality import Modality
from pyro_mm.nets import MLPDecoder, MLPEncoder
from pyro_mm.provenance import provenance, stamp
from pyro_mm.subsets import PowerSet


def modalities(num: int, features: int, hidden: int, z_dim: int):
    """``num`` modalities ``m0..`` of ``features`` Bernoulli pixels with MLP encoders/decoders."""
    return [Modality(f"m{i}", (features,), MLPEncoder((features,), z_dim, (hidden,)),
                     MLPDecoder(z_dim, (features,), (hidden,)), "bernoulli") for i in range(num)]


def make_batch(num: int, features: int, batch_size: int, mixed: bool, seed: int = 0) -> MultimodalBatch:
    """Random grey images; ``mixed``: a quarter observe only m0, a quarter only m1 (MEME's f=0.5)."""
    g = torch.Generator().manual_seed(seed)
    data = {f"m{i}": torch.rand(batch_size, features, generator=g) for i in range(num)}
    mask = torch.ones(batch_size, num, dtype=torch.bool)
    if mixed:
        q = batch_size // 4
        mask[:q, 1:] = False
        mask[q:2 * q, 0] = False
    return MultimodalBatch(data, mask)


# --- the plain-PyTorch floors -----------------------------------------------------------------------
def _experts(vae, batch):
    """Every encoder once: ``(loc, scale) [M, B, D]``."""
    locs, scales = zip(*(m.encoder(batch[m.name]) for m in vae.modalities))
    return torch.stack(locs), torch.stack(scales)


def _loglik(vae, batch, name: str, z: torch.Tensor, where: Optional[torch.Tensor] = None) -> torch.Tensor:
    """log p(x_name | z) on the samples ``where`` (default: those observing x_name), zero elsewhere
    (not decoded there); ``z [..., B, D]`` -> ``[..., B]``."""
    m = vae.modalities[vae.names.index(name)]
    observed, x = (batch.observed(name) if where is None else where), batch[name]
    rows = None if bool(observed.all()) else observed.nonzero().flatten()
    if rows is not None:
        z, x = z.index_select(-2, rows), x[rows]
    logits = m.decoder(z.reshape(-1, z.shape[-1])).reshape(z.shape[:-1] + (-1,))
    log_p = (logits * x).sum(-1) - F.softplus(logits).sum(-1)
    if rows is None:
        return log_p
    return log_p.new_zeros(log_p.shape[:-1] + observed.shape).index_copy(-1, rows, log_p)


def _poe(loc, scale, use, prior):
    """Product of the experts ``use [S, B, M]`` of ``loc, scale [M, B, D]`` and of N(0, I)
    where ``prior [S, B]``: precision-weighted mean and total precision."""
    precision = scale[:, None].pow(-2) * use.permute(2, 0, 1)[..., None]  # [M, S, B, D]
    total = precision.sum(0) + prior[..., None]
    return (loc[:, None] * precision).sum(0) / total, total.rsqrt()


def floor_iwae(vae, batch, K: int, dreg: bool = False):
    """MMVAE's stratified IWAE (the unimodal VAE: one stratum): the mean over observed strata m of
    LME_k [log p(X_o | z) + log p(z) − log (1/|o|) Σ_{m' observed} q_{m'}(z)], z ~ q_m."""
    loc, scale = _experts(vae, batch)
    observed = batch.mask.T.to(loc.dtype)  # [M, B]
    z = loc + scale * torch.randn((K,) + loc.shape, device=loc.device)  # [K, M, B, D]
    q_loc, q_scale = (loc.detach(), scale.detach()) if dreg else (loc, scale)
    log_q = normal_log_prob(z[:, :, None], q_loc, q_scale)  # [K, M, M', B]
    log_q = (log_q + observed.log()).logsumexp(2) - observed.sum(0).log()
    lw = sum(_loglik(vae, batch, n, z) for n in vae.names) + normal_log_prob(z, 0.0, torch.ones(())) - log_q
    bound = ((lw.logsumexp(0) - math.log(K)) * observed).sum(0) / observed.sum(0)
    if not dreg:
        return -bound.sum(), -bound.sum()
    w = lw.softmax(0).detach()
    z.register_hook(lambda g: g * w[..., None])  # the encoders' gradient: w̃ (here) times w̃ (below)
    surrogate = ((w * lw).sum(0) * observed).sum(0) / observed.sum(0)
    return -bound.sum(), -surrogate.sum()


def floor_subsets(vae, batch, subsets, weights, prior, reconstruct_all: bool):
    """Σ_S w_S [log p(X | z_S) + log p(z_S) − log q_S(z_S)], one draw z_S ~ q(z | x_S) per stratum.

    :param subsets: boolean ``[S, B, M]``; ``weights [S, B]``; ``prior [S, B]``: prior expert.
    :param reconstruct_all: decode every observed modality (mixture bound) or only S's (MVAE)."""
    loc, scale = _experts(vae, batch)
    use = subsets & batch.mask
    s_loc, s_scale = _poe(loc, scale, use, prior.to(loc.dtype))  # [S, B, D]
    z = s_loc + s_scale * torch.randn((1,) + s_loc.shape, device=loc.device)
    lw = normal_log_prob(z, 0.0, torch.ones(())) - normal_log_prob(z, s_loc, s_scale)  # [1, S, B]
    for j, name in enumerate(vae.names):
        if reconstruct_all:
            lw = lw + _loglik(vae, batch, name, z)
        else:  # only the strata whose subset holds m: the joint term and {m}
            rows = [s for s in range(subsets.shape[0]) if s == 0 or s == 1 + j]
            lw = lw.index_add(1, torch.tensor(rows, device=z.device), _loglik(vae, batch, name, z[:, rows]))
    bound = (lw[0] * weights).sum(0)
    return -bound.sum(), -bound.sum()


def floor_mopoe(vae, batch, num_subsets=None):
    """MoPoE: every non-empty subset available to a sample, weighted uniformly (or ``num_subsets``
    drawn by pyro_mm's :class:`~pyro_mm.subsets.PowerSet`, the same draws as pyro_mm)."""
    B, M = batch.mask.shape
    if num_subsets is None:
        members = torch.tensor([[(c >> j) & 1 == 1 for j in range(M)] for c in range(1, 2 ** M)],
                               device=batch.device)
        subsets = members[:, None, :].expand(-1, B, M)
        avail = (subsets <= batch.mask).all(-1).float()
        weights = avail / avail.sum(0)
    else:
        subsets, weights = PowerSet(M).sample(batch.mask, num_subsets)
    return floor_subsets(vae, batch, subsets, weights, subsets.all(-1), reconstruct_all=True)


def floor_mvae(vae, batch):
    """MVAE: the joint term and every unimodal term, each with the prior expert, each
    reconstructing its own modalities; a term with nothing observed is dropped."""
    B, M = batch.mask.shape
    eye = torch.eye(M, dtype=torch.bool, device=batch.device)
    subsets = torch.cat([torch.ones(1, M, dtype=torch.bool, device=batch.device), eye])[:, None].expand(-1, B, M)
    weights = (subsets & batch.mask).any(-1).float()
    return floor_subsets(vae, batch, subsets, weights, torch.ones_like(weights, dtype=torch.bool), False)


def floor_meme(vae, batch, K: int, lam: float = 1.0):
    """MEME on two modalities (paper preset: λ, directions averaged), written out: for a paired
    sample, direction s → t with z_0..K ~ q(z | s),

        sg(w) [log p(s | z_0) − log p(t | z_0) − KL(q(z|s) ‖ q(z|t))] + λ log q̂(t | s),
        q̂ = mean_k p(t | z_k),  w = p(t | z_0) / q̂;

    for a sample observing only s: log p(s | z_0) − log q(z_0 | s) + log mean_i q(z_0 | u_i) over
    t's pseudo-samples u_i (not evaluated at all when every sample is paired). A missing
    modality's stratum draws from N(0, I) (unused)."""
    loc, scale = _experts(vae, batch)  # [2, B, D]
    obs = batch.mask.T  # [2, B]
    s_loc = torch.where(obs[..., None], loc, torch.zeros(()))
    s_scale = torch.where(obs[..., None], scale, torch.ones(()))
    z = s_loc + s_scale * torch.randn((K + 1,) + loc.shape, device=loc.device)  # [K+1, 2, B, D]
    names = vae.names
    own = torch.stack([_loglik(vae, batch, n, z[0, i]) for i, n in enumerate(names)])  # [2, B]
    both = batch.mask.all(-1)  # the classifier serves the paired samples only
    log_c = torch.stack([_loglik(vae, batch, names[1 - i], z[:, i], both) for i in range(2)], 1)  # [K+1, 2, B]
    log_qhat = log_c.logsumexp(0) - math.log(K + 1)
    w = (log_c[0] - log_qhat).exp().detach()
    p_loc, p_scale = s_loc.flip(0), s_scale.flip(0)  # the partner's expert, N(0, I) if missing
    paired = w * (own - log_c[0] - normal_kl(loc, scale, p_loc, p_scale)) + lam * log_qhat
    count = obs.sum(0)
    zero = torch.zeros((), device=loc.device)
    if not bool((count == 1).any()):  # every sample paired: no pseudo-sample prior at all
        bound = torch.where(obs & (count == 2), paired, zero).sum(0) / count
        return -bound.sum(), -bound.sum()
    prior = []
    for i in range(2):  # direction s: log mean_i q_t(z_0 | u_i) over t's pseudo-samples
        t = vae.modalities[1 - i]
        u_loc, u_scale = t.encoder(torch.sigmoid(vae.model.pseudo(t.name)))  # [N, D]
        log_q = normal_log_prob(z[0, i, None], u_loc[:, None], u_scale[:, None])  # [N, B]
        prior.append(log_q.logsumexp(0) - math.log(u_loc.shape[0]))
    unpaired = own + torch.stack(prior) - normal_log_prob(z[0], loc, scale)
    bound = torch.where(obs & (count == 2), paired, torch.where(obs & (count == 1), unpaired, zero)).sum(0)
    bound = bound / count
    return -bound.sum(), -bound.sum()


def _laplace_noise(shape, like: torch.Tensor) -> torch.Tensor:
    """Standard Laplace draws by the inverse CDF from ``uniform_`` (as pyro_mm's Laplace family)."""
    u = torch.empty(shape, dtype=like.dtype, device=like.device).uniform_(torch.finfo(like.dtype).eps - 1, 1)
    return -u.sign() * torch.log1p(-u.abs())


def _softmax_scale(scale: torch.Tensor) -> torch.Tensor:
    """The reference's Laplace scales: D · s / Σ s + 10⁻⁶ over the last dimension D."""
    return scale.shape[-1] * scale / scale.sum(-1, keepdim=True) + 1e-6


def floor_mmvae_plus(vae, batch, K: int, beta: float = 1.0):
    """MMVAE+ (Laplace family, DReG) on a fully observed batch, written out: every encoder outputs
    ``[z | w]`` experts with softmax scales; stratum m draws z_k ~ q(z | x_m), w_{m,k} ~ q(w_m | x_m)
    and every other w̃_{n,k} ~ r_n (all strata's noise of a site in one draw, z first, then w in
    modality order), and

        lw_{m,k} = Σ_n log p(x_n | z_k, w_{n,k}) + β[log p(z_k) + log p(w_{m,k})
                   − log (1/M) Σ_{m'} q_{m'}(z_k) − log q(w_{m,k} | x_m)],

    bound = (1/M) Σ_m LME_k lw_{m,k}. Only the stratum's own w_m gets a density (no prior or
    posterior density of the w̃_n at all). DReG: q's densities from detached parameters, the
    gradients of z and of each own w_m scaled by w̃ (hooks), the w̃_n keep their path gradient."""
    if not bool(batch.mask.all()):
        raise ValueError("floor_mmvae_plus is written for a fully observed batch")
    names, z_dim = vae.names, vae.z_dim
    M, B = len(names), batch.batch_size
    loc, raw = _experts(vae, batch)  # [M, B, z_dim + private_dim]
    w_dim = loc.shape[-1] - z_dim
    z_loc, w_loc = loc.split([z_dim, w_dim], -1)
    z_scale, w_scale = (_softmax_scale(part) for part in raw.split([z_dim, w_dim], -1))
    z = z_loc + z_scale * _laplace_noise((K, M, B, z_dim), loc)  # [K, M, B, z_dim]: stratum m from expert m
    own, lw = [], 0.0
    for n, name in enumerate(names):
        noise = _laplace_noise((K, M, B, w_dim), loc)
        aux_scale = _softmax_scale(vae.guide.aux_logits[name].exp())
        own.append(w_loc[n] + w_scale[n] * noise[:, n])  # [K, B, w_dim], from q(w_n | x_n) in stratum n
        w = torch.stack([own[n] if s == n else aux_scale * noise[:, s] for s in range(M)], 1)  # w̃_n ~ r_n elsewhere
        lw = lw + _loglik(vae, batch, name, torch.cat([z, w], -1))
    log_q = laplace_log_prob(z[:, :, None], z_loc.detach(), z_scale.detach())  # [K, M, M', B]
    log_q = log_q.logsumexp(2) - math.log(M)
    w_own = torch.stack(own, 1)  # [K, M, B, w_dim]
    latent = -z.abs().sum(-1) - w_own.abs().sum(-1) - (z_dim + w_dim) * math.log(2.0) - log_q \
        - laplace_log_prob(w_own, w_loc.detach(), w_scale.detach())
    lw = lw + beta * latent  # [K, M, B]
    bound = (lw.logsumexp(0) - math.log(K)).mean(0)
    w_tilde = lw.softmax(0).detach()
    factor = w_tilde[..., None]
    z.register_hook(lambda g: g * factor)
    for n in range(M):
        own[n].register_hook(lambda g, n=n: g * factor[:, n])
    surrogate = (w_tilde * lw).sum(0).mean(0)
    return -bound.sum(), -surrogate.sum()


# --- the cases --------------------------------------------------------------------------------------
def cases(features: int, hidden: int, z_dim: int) -> Dict[str, dict]:
    """name -> ``method`` (its name in :data:`pyro_mm.registry.METHODS`), ``build`` (the pyro_mm
    object, built through the registry), ``floor`` (vae, batch -> (loss, surrogate)), ``mixed``
    (MEME's partly paired batch), ``unimodal`` (the batch's first modality only); the cases
    written here, then those of every ``floors/<method>.py`` (:func:`_floor_files`)."""
    def case(method: str, floor: Callable, **options) -> dict:
        extra = {k: options.pop(k) for k in ("mixed", "unimodal", "pyro_elbo") if k in options}
        cls = METHODS[method]
        size = cls.latent_size(z_dim, **cls.resolve_options(options))  # what encoders output, decoders read
        build = lambda: cls(modalities(2, features, hidden, size), z_dim, **options)  # noqa: E731
        return dict(method=method, build=build, floor=floor, **extra)

    iwae1 = lambda v, b: floor_iwae(v, b, 1)  # noqa: E731
    meme10 = lambda v, b: floor_meme(v, b, 10)  # noqa: E731
    return {
        "unimodal": case("unimodal", iwae1, unimodal=True),
        "mvae": case("mvae", floor_mvae),
        "mmvae K=1": case("mmvae", iwae1, num_particles=1, estimator="iwae"),
        "mmvae K=10 dreg": case("mmvae", lambda v, b: floor_iwae(v, b, 10, dreg=True), num_particles=10,
                                estimator="dreg"),
        "mopoe all subsets": case("mopoe", floor_mopoe),
        "mopoe num_subsets=1": case("mopoe", lambda v, b: floor_mopoe(v, b, 1), num_subsets=1),
        "meme K=10 mixed": case("meme", meme10, preset="paper", num_particles=10, num_pseudo_samples=16, mixed=True),
        "meme K=10 paired": case("meme", meme10, preset="paper", num_particles=10, num_pseudo_samples=16),
        "mmvae+ K=10 dreg": case("mmvae+", lambda v, b: floor_mmvae_plus(v, b, 10), private_dim=4, family="laplace",
                                 num_particles=10, estimator="dreg"),
        # the unimodal VAE through Pyro's own Trace_ELBO and its JIT variant (what JIT buys)
        "unimodal, Pyro Trace_ELBO": case("unimodal", iwae1, unimodal=True, pyro_elbo=Trace_ELBO),
        "unimodal, Pyro JitTrace_ELBO": case("unimodal", iwae1, unimodal=True,
                                             pyro_elbo=lambda: JitTrace_ELBO(ignore_jit_warnings=True)),
        **{name: c for floors in _floor_files() for name, c in floors.cases(case).items()},
    }


FLOORS = Path(__file__).resolve().parent / "floors"


def _load(name: str, path: Path):
    """The module ``name`` executed from the file ``path``."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _floor_files():
    """The modules ``floors/*.py`` in name order, each loaded from its file. Their ``from
    step_overhead import ...`` needs a module of that name: this file, loaded under it unless one
    is imported already (a script runs as ``__main__``, the tests load it under a name of their own)."""
    if "step_overhead" not in sys.modules:
        sys.modules["step_overhead"] = _load("step_overhead", Path(__file__))
    return [_load(f"step_overhead_floors_{path.stem}", path) for path in sorted(FLOORS.glob("*.py"))]


def pyro_loss(vae, elbo, batch: MultimodalBatch) -> Callable:
    """``elbo.differentiable_loss`` of ``vae``'s model and guide on a one-modality batch, through
    adapters taking the data tensor (Pyro's JIT traces functions of tensors only), in a param
    store of its own: the JIT reads its parameters from the store by name, and the other cases
    register modules of the same names.

    ``JitTrace_ELBO.differentiable_loss`` (Pyro 1.9.2) returns ``loss + (surrogate −
    surrogate.detach())`` with a ``loss`` that is not detached, so for reparameterised sites its
    gradient is twice the ELBO's (measured: exactly 2×); JIT rows step on the surrogate instead,
    as ``JitTrace_ELBO.loss_and_grads`` (what ``SVI`` calls) does."""
    name = batch.names[0]
    model = lambda x: vae.model(MultimodalBatch({name: x}))  # noqa: E731
    guide = lambda x: vae.guide(MultimodalBatch({name: x}))  # noqa: E731
    store = {"params": {}, "constraints": {}}
    jit = hasattr(elbo, "loss_and_surrogate_loss")

    def loss():
        with pyro.get_param_store().scope(store):
            if jit:
                return elbo.loss_and_surrogate_loss(model, guide, batch[name])[1]
            return elbo.differentiable_loss(model, guide, batch[name])
    return loss


def _stepper(loss_fn: Callable, params, device: torch.device) -> Callable:
    optim = torch.optim.Adam(params, lr=1e-4)

    def step():
        optim.zero_grad()
        loss_fn().backward()
        optim.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
    return step


def _unchecked(elbo, step: Callable) -> Callable:
    """``step`` with the objective's contract checks turned off (the same objects otherwise)."""
    def run():
        elbo.contract.enabled = False
        try:
            step()
        finally:
            elbo.contract.enabled = True
    return run


def check_seconds(vae, batch: MultimodalBatch, device: torch.device) -> float:
    """Seconds of one contract check of the method's model and guide on ``batch``, cold (a fresh
    memory of passed layouts): what the first step pays once."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    ContractCheck()(type(vae.elbo).__name__, vae.model, vae.guide, (batch,), {})
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def warm_check_seconds(vae, batch: MultimodalBatch, calls: int = 1000) -> float:
    """Seconds per call of the objective's contract check once its layout has passed (what every
    step after the first runs: the key and its look-up; with a modality never yet seen missing, as
    in a complete batch, also the read of the CPU mask)."""
    contract, name = vae.elbo.contract, type(vae.elbo).__name__
    contract(name, vae.model, vae.guide, (batch,), {})
    start = time.perf_counter()
    for _ in range(calls):
        contract(name, vae.model, vae.guide, (batch,), {})
    return (time.perf_counter() - start) / calls


def prepare(case: dict, features: int, batch_size: int, device="cpu"):
    """The pyro_mm object, its loss (a function of nothing: the object's training loss on the
    batch, or a Pyro ELBO's ``differentiable_loss``), the batch and the two step functions."""
    device = torch.device(device)
    torch.manual_seed(0)
    vae = case["build"]()
    batch = make_batch(2, features, batch_size, case.get("mixed", False))
    if case.get("unimodal"):
        batch = batch.only(["m0"])
    vae.initialise(batch)
    vae.to(device)
    batch = batch.to(device)
    if "pyro_elbo" in case:
        loss = pyro_loss(vae, case["pyro_elbo"](), batch)
    else:
        loss = lambda: vae(batch)  # noqa: E731  (the training step's loss, as the Trainer calls it)
    ours = _stepper(loss, vae.parameters(), device)
    floor = _stepper(lambda: case["floor"](vae, batch)[1], vae.parameters(), device)
    return vae, loss, batch, ours, floor


def check_values(case: dict, vae, loss, batch, seed: int = 3) -> Dict[str, float]:
    """With the same random numbers: ``value_gap`` = |pyro_mm loss − floor loss| / |pyro_mm loss|
    and ``grad_gap`` = ‖g_pyro_mm − g_floor‖ / ‖g_pyro_mm‖ over all parameters (the floor's
    gradient is its surrogate's: the same estimator)."""
    params = list(vae.parameters())
    loss()  # a JIT compiles on its first call, drawing random numbers of its own
    out = {}
    for side, both in (("ours", lambda: (loss(),) * 2), ("floor", lambda: case["floor"](vae, batch))):
        vae.zero_grad(set_to_none=False)
        torch.manual_seed(seed)
        value, surrogate = both()
        surrogate.backward()
        out[side] = value.detach(), torch.cat([(torch.zeros_like(p) if p.grad is None else p.grad).flatten()
                                               for p in params])  # e.g. unused pseudo-samples: none
    vae.zero_grad(set_to_none=True)
    (v_ours, g_ours), (v_floor, g_floor) = out["ours"], out["floor"]
    return {"value_gap": float((v_ours - v_floor).abs() / v_ours.abs()),
            "grad_gap": float((g_ours - g_floor).norm() / g_ours.norm())}


def _status_bytes(key: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1]) * 1024
    raise KeyError(key)


def peak_memory_mib(step: Callable, device: torch.device) -> float:
    """Memory one step needs beyond what is held before it, in MiB."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        base = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        step()
        return (torch.cuda.max_memory_allocated(device) - base) / 2 ** 20
    ctypes.CDLL("libc.so.6").malloc_trim(0)  # freed blocks back to the system: RSS ≈ live memory
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset the high-water mark VmHWM to the current RSS
    base = _status_bytes("VmRSS:")
    step()
    return (_status_bytes("VmHWM:") - base) / 2 ** 20


def quartiles(values: Sequence[float]):
    q = statistics.quantiles(values, n=4, method="inclusive") if len(values) > 1 else [values[0]] * 3
    return q[0], statistics.median(values), q[2]


def run(features=784, hidden=512, z_dim=20, batch_size=128, repeats=7, steps=5, only=None, device="cpu",
        progress=True) -> Dict:
    """The report: config and, per case, times, ratios, value gap and peak memory."""
    device = torch.device(device)
    results, prepared = {}, {}
    for name, case in cases(features, hidden, z_dim).items():
        if only and name not in only:
            continue
        vae, loss, batch, ours, floor = prepare(case, features, batch_size, device)
        gaps = check_values(case, vae, loss, batch)  # the first evaluation: the contract check runs here
        sides = {"ours": ours, "floor": floor}
        extra = {}
        if "pyro_elbo" not in case:  # pyro_mm's objective: its steps with the contract checks off too
            sides = {"ours": ours, "unchecked": _unchecked(vae.elbo, ours), "floor": floor}
            extra = {"unchecked": [], "check_ms": 1e3 * check_seconds(vae, batch, torch.device(device)),
                     "warm_check_us": 1e6 * warm_check_seconds(vae, batch)}
        for _ in range(2):  # warm-up
            for step in sides.values():
                step()
        prepared[name] = sides
        results[name] = {**gaps, "peak_mib": peak_memory_mib(ours, device),
                         "floor_peak_mib": peak_memory_mib(floor, device), "ours": [], "floor": [], **extra}
    for r in range(repeats):  # interleaved: every case in turn, alternating single steps
        for name, sides in prepared.items():
            spent = {side: 0.0 for side in sides}
            for i in range(steps):
                # the checked and unchecked steps swap places every other step (a step's time
                # depends a little on the step before it)
                order = ["unchecked", "ours", "floor"] if i % 2 and "unchecked" in sides else list(sides)
                for side in order:
                    start = time.perf_counter()
                    sides[side]()
                    spent[side] += time.perf_counter() - start
            for side in spent:
                results[name][side].append(spent[side] / steps)
        if progress:
            print(f"repeat {r + 1}/{repeats} done", flush=True)
    for res in results.values():
        q1, med, q3 = quartiles([o / f for o, f in zip(res["ours"], res["floor"])])
        res.update(ratio_median=med, ratio_q1=q1, ratio_q3=q3,
                   samples_per_s=batch_size / statistics.median(res["ours"]),
                   floor_samples_per_s=batch_size / statistics.median(res["floor"]))
        if "unchecked" in res:  # what a step after the first pays for the contract checks
            q1, med, q3 = quartiles([o / u for o, u in zip(res["ours"], res["unchecked"])])
            res.update(check_ratio_median=med, check_ratio_q1=q1, check_ratio_q3=q3)
    config = dict(features=features, hidden=hidden, z_dim=z_dim, batch_size=batch_size, repeats=repeats,
                  steps=steps, device=str(device), threads=torch.get_num_threads(),
                  validation=is_validation_enabled(), torch=torch.__version__, pyro=pyro.__version__)
    return {"config": config, "cases": results}


def markdown(report: Dict) -> str:
    c = report["config"]
    lines = [f"Two modalities of {c['features']} features, MLP {c['hidden']} hidden, latent {c['z_dim']}, batch "
             f"{c['batch_size']}, {c['device']} ({c['threads']} threads), Pyro validation "
             f"{'on' if c['validation'] else 'off'}; {c['repeats']} interleaved repeats of {c['steps']} "
             f"alternating steps.", "",
             "| case | pyro_mm samples/s | floor samples/s | ratio (median) | IQR | value gap | gradient gap | "
             "peak MiB (pyro_mm / floor) | checked / unchecked (median, IQR) | check once (ms) | "
             "warm check (µs / step) |",
             "|---|---:|---:|---:|---|---:|---:|---:|---|---:|---:|"]
    for name, r in report["cases"].items():
        checked = (f"{r['check_ratio_median']:.3f} ({r['check_ratio_q1']:.3f}–{r['check_ratio_q3']:.3f}) | "
                   f"{r['check_ms']:.1f} | {r['warm_check_us']:.1f}"
                   if "check_ratio_median" in r else "— | — | —")
        lines.append(f"| {name} | {r['samples_per_s']:.0f} | {r['floor_samples_per_s']:.0f} | {r['ratio_median']:.2f} | "
                     f"{r['ratio_q1']:.2f}–{r['ratio_q3']:.2f} | {r['value_gap']:.1e} | {r['grad_gap']:.1e} | "
                     f"{r['peak_mib']:.0f} / {r['floor_peak_mib']:.0f} | {checked} |")
    return "\n".join(lines) + "\n"


def write_results(out: Path, stem: str, report: Dict, table: str) -> None:
    """``out/stem.json`` (the report) and ``out/stem.md`` (the table), both stamped with the commit,
    machine and date, and print the table."""
    record = provenance()
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.json").write_text(json.dumps({"provenance": record, **report}, indent=2))
    (out / f"{stem}.md").write_text(f"{table}\n{stamp(record)}\n")
    print(table)


def main(args):
    sizes = (dict(features=64, hidden=32, z_dim=4, batch_size=16, repeats=3, steps=2) if args.small
             else dict(repeats=args.repeats, steps=args.steps))
    pyro.enable_validation(not args.no_validation)
    report = run(device=args.device, only=args.only, progress=not args.small, **sizes)
    write_results(args.out, "step_overhead", report, markdown(report))
    return report


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", action="store_true", help="seconds: tiny networks (run by the tests)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:i]")
    parser.add_argument("--only", nargs="+", help="run only these cases")
    parser.add_argument("--repeats", type=int, default=7, help="interleaved repeats (the ratio's spread is over these)")
    parser.add_argument("--steps", type=int, default=5, help="alternating steps of each side per repeat")
    parser.add_argument("--no-validation", action="store_true",
                        help="pyro.enable_validation(False): no argument and support checks (Pyro's default is on)")
    main(parser.parse_args())
