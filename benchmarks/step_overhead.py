"""How much a pyro_mm SVI step costs beyond the networks it drives.

For every method and estimator the harness times, **interleaved in one process**, (a) one full
training step through pyro_mm — ``elbo(model, guide)`` as an ``ELBOModule``, forward, backward,
Adam — and (b) the same step of a plain-PyTorch implementation of the same loss with the *same*
network modules and data (the floor, written below). It reports samples per second, the ratio
(a)/(b) as the median and inter-quartile range over repeats, and the peak memory of a step.

Floors compute the same value as pyro_mm's objective, with the same random numbers drawn in the
same order; ``--check`` (and the test) asserts that the two losses agree. The DReG floor computes
the IWAE value and a doubly-reparameterised surrogate with the same operations (its decoder
gradient weights particles by w̃² rather than w̃; the cost is the same). MEME has no hand-written
floor here (its two directions, pseudo-sample prior and classifier samples would be a second
implementation of the objective); its step is timed and reported against the MMVAE K = 10 floor,
which runs the same encoders and K + 1 decoder passes per stratum.

    python benchmarks/step_overhead.py [--small] [--out benchmarks/results]
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import statistics
import time
from pathlib import Path
from typing import Callable, Dict

import pyro
import torch
from torch.nn import functional as F

from pyro_mm.api import MEME, MMVAE, MVAE, MoPoE, UnimodalVAE
from pyro_mm.batch import MultimodalBatch
from pyro_mm.modality import Modality
from pyro_mm.nets import MLPDecoder, MLPEncoder


def modalities(num: int, features: int, hidden: int, z_dim: int):
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


# --- the plain-PyTorch floors ---------------------------------------------------------------------
def _experts(vae, batch):
    locs, scales = zip(*(m.encoder(batch[m.name]) for m in vae.modalities))
    return torch.stack(locs), torch.stack(scales)  # [M, B, D]


def _normal_lp(z, loc, scale):
    return (-0.5 * ((z - loc) / scale) ** 2 - scale.log() - 0.5 * math.log(2 * math.pi)).sum(-1)


def _loglik(vae, batch, z, names):
    """Σ_n log p(x_n | z) over ``names``, masked by observation; z ``[..., B, D]``."""
    total = 0.0
    for m in vae.modalities:
        if m.name in names:
            logits = m.decoder(z.reshape(-1, z.shape[-1])).reshape(z.shape[:-1] + (-1,))
            lp = -F.binary_cross_entropy_with_logits(logits, batch[m.name].expand_as(logits), reduction="none").sum(-1)
            total = total + lp * batch.observed(m.name)
    return total


def _poe(loc, scale, use, prior: torch.Tensor):
    """Product of the experts ``use [M, B]`` (and the N(0, I) expert where ``prior [B]``)."""
    precision = scale.pow(-2) * use[..., None]
    total = precision.sum(0) + prior[:, None]
    return (loc * precision).sum(0) / total, total.rsqrt()


def floor_iwae(vae, batch, K: int, dreg: bool = False):
    """MMVAE's stratified IWAE (unimodal VAE: one stratum): mean over observed strata of LME_k."""
    loc, scale = _experts(vae, batch)
    observed = batch.mask.T.float()  # [M, B]
    z = loc + scale * torch.randn((K,) + loc.shape)  # [K, M, B, D]
    q_loc, q_scale = (loc.detach(), scale.detach()) if dreg else (loc, scale)
    log_q = _normal_lp(z[:, :, None], q_loc[None, None], q_scale[None, None])  # [K, M, M', B]
    log_q = (log_q + observed[None, None].log()).logsumexp(2) - observed.sum(0).log()
    lw = _loglik(vae, batch, z, vae.names) + _normal_lp(z, 0.0, torch.ones(())) - log_q
    bound = ((lw.logsumexp(0) - math.log(K)) * observed).sum(0) / observed.sum(0)
    if not dreg:
        return -bound.sum(), -bound.sum()
    w = (lw - lw.logsumexp(0)).exp().detach()
    surrogate = ((w ** 2 * lw).sum(0) * observed).sum(0) / observed.sum(0)
    return -bound.sum(), -surrogate.sum()


def floor_subsets(vae, batch, subsets, weights, reconstruct_all: bool, prior_for):
    """Σ_S ω̃_S [log p(X | z_S) + log p(z_S) − log q_S(z_S)], z_S ~ q_S, one particle per subset."""
    loc, scale = _experts(vae, batch)
    observed = batch.mask.T  # [M, B]
    uses = [(s[:, None] & observed) for s in subsets]
    params = [_poe(loc, scale, u, prior_for(s, batch.batch_size)) for s, u in zip(subsets, uses)]
    s_loc, s_scale = torch.stack([p[0] for p in params]), torch.stack([p[1] for p in params])
    z = s_loc + s_scale * torch.randn((1,) + s_loc.shape)
    lw = _normal_lp(z, 0.0, torch.ones(())) - _normal_lp(z, s_loc, s_scale)
    for i, (s, u) in enumerate(zip(subsets, uses)):
        names = vae.names if reconstruct_all else [n for j, n in enumerate(vae.names) if s[j]]
        lw[:, i] = lw[:, i] + _loglik(vae, batch, z[:, i], names)
    avail = torch.stack([u.any(0) for u in uses]).float() * weights[:, None]
    if reconstruct_all:
        avail = avail / avail.sum(0)
    bound = (lw[0] * avail).sum(0)
    return -bound.sum(), -bound.sum()


def floor_mopoe(vae, batch):
    M = len(vae.names)
    subsets = [torch.tensor([(k >> j) & 1 == 1 for j in range(M)]) for k in range(1, 2 ** M)]
    full = torch.ones(M, dtype=torch.bool)
    prior = lambda s, B: torch.full((B,), float(bool((s == full).all())))  # noqa: E731
    return floor_subsets(vae, batch, subsets, torch.ones(len(subsets)), True, prior)


def floor_mvae(vae, batch):
    M = len(vae.names)
    subsets = [torch.ones(M, dtype=torch.bool)] + [torch.eye(M, dtype=torch.bool)[m] for m in range(M)]
    return floor_subsets(vae, batch, subsets, torch.ones(len(subsets)), False, lambda s, B: torch.ones(B))


# --- the cases --------------------------------------------------------------------------------------
def cases(features: int, hidden: int, z_dim: int) -> Dict[str, dict]:
    mods = lambda: modalities(2, features, hidden, z_dim)  # noqa: E731
    return {
        "unimodal": dict(build=lambda: UnimodalVAE(mods(), z_dim), floor=lambda v, b: floor_iwae(v, b, 1),
                         unimodal=True),
        "mvae": dict(build=lambda: MVAE(mods(), z_dim), floor=floor_mvae),
        "mmvae K=1": dict(build=lambda: MMVAE(mods(), z_dim, num_particles=1, estimator="iwae"),
                          floor=lambda v, b: floor_iwae(v, b, 1)),
        "mmvae K=10 dreg": dict(build=lambda: MMVAE(mods(), z_dim, num_particles=10, estimator="dreg"),
                                floor=lambda v, b: floor_iwae(v, b, 10, dreg=True)),
        "mopoe all subsets": dict(build=lambda: MoPoE(mods(), z_dim), floor=floor_mopoe),
        "mopoe num_subsets=1": dict(build=lambda: MoPoE(mods(), z_dim, num_subsets=1), floor=floor_mopoe,
                                    same_value=False),
        "meme K=10 mixed": dict(build=lambda: MEME(mods(), z_dim, num_particles=10, num_pseudo_samples=16),
                                floor=lambda v, b: floor_iwae(v, b, 11), mixed=True, same_value=False),
    }


def _stepper(loss_fn: Callable, params) -> Callable:
    optim = torch.optim.Adam(params, lr=1e-4)

    def step():
        optim.zero_grad()
        loss = loss_fn()
        loss.backward()
        optim.step()
    return step


def prepare(case: dict, features: int, batch_size: int):
    torch.manual_seed(0)
    vae = case["build"]()
    batch = make_batch(2, features, batch_size, case.get("mixed", False))
    if case.get("unimodal"):
        batch = batch.only(["m0"])
    vae.prepare(batch)
    module = vae.elbo(vae.model, vae.guide)
    ours = _stepper(lambda: module(batch), module.parameters())
    floor = _stepper(lambda: case["floor"](vae, batch)[1], vae.parameters())
    return vae, module, batch, ours, floor


def check_values(case: dict, vae, module, batch, seed: int = 3) -> float:
    """|pyro_mm loss − floor loss| / |loss| with the same random numbers."""
    with torch.no_grad():
        torch.manual_seed(seed)
        ours = module(batch)
        torch.manual_seed(seed)
        floor = case["floor"](vae, batch)[0]
    return float((ours - floor).abs() / ours.abs())


def _time(step: Callable, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        step()
    return (time.perf_counter() - start) / n


def run(features=784, hidden=512, z_dim=20, batch_size=128, repeats=7, steps=5, only=None, progress=True) -> Dict:
    results = {}
    prepared = {}
    for name, case in cases(features, hidden, z_dim).items():
        if only and name not in only:
            continue
        vae, module, batch, ours, floor = prepare(case, features, batch_size)
        ours(), floor()  # warm-up
        prepared[name] = (ours, floor)
        results[name] = {"value_gap": check_values(case, vae, module, batch) if case.get("same_value", True) else None,
                         "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "ours": [],
                         "floor": []}
    for r in range(repeats):  # interleaved: every case, ours then floor, in each repeat
        for name, (ours, floor) in prepared.items():
            results[name]["ours"].append(_time(ours, steps))
            results[name]["floor"].append(_time(floor, steps))
        if progress:
            print(f"repeat {r + 1}/{repeats} done", flush=True)
    for name, res in results.items():
        ratios = sorted(o / f for o, f in zip(res["ours"], res["floor"]))
        q = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else [ratios[0]] * 3
        res.update(ratio_median=statistics.median(ratios), ratio_q1=q[0], ratio_q3=q[2],
                   samples_per_s=batch_size / statistics.median(res["ours"]),
                   floor_samples_per_s=batch_size / statistics.median(res["floor"]))
    return {"config": dict(features=features, hidden=hidden, z_dim=z_dim, batch_size=batch_size, repeats=repeats,
                           steps=steps, threads=torch.get_num_threads()), "cases": results}


def markdown(report: Dict) -> str:
    c = report["config"]
    lines = [f"Two modalities of {c['features']} features, MLP {c['hidden']} hidden, latent {c['z_dim']}, batch "
             f"{c['batch_size']}, {c['threads']} threads, Pyro validation {'on' if c.get('validation', True) else 'off'}; "
             f"{c['repeats']} interleaved repeats of {c['steps']} steps.", "",
             "| case | pyro_mm samples/s | floor samples/s | ratio (median) | IQR | value gap | peak RSS MiB |",
             "|---|---:|---:|---:|---|---:|---:|"]
    for name, r in report["cases"].items():
        gap = "—" if r["value_gap"] is None else f"{r['value_gap']:.1e}"
        lines.append(f"| {name} | {r['samples_per_s']:.0f} | {r['floor_samples_per_s']:.0f} | {r['ratio_median']:.2f} | "
                     f"{r['ratio_q1']:.2f}–{r['ratio_q3']:.2f} | {gap} | {r['peak_rss_mib']:.0f} |")
    return "\n".join(lines) + "\n"


def write_results(out: Path, stem: str, report: Dict, table: str) -> None:
    """``out/stem.json`` (the report) and ``out/stem.md`` (the table), and print the table."""
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.json").write_text(json.dumps(report, indent=2))
    (out / f"{stem}.md").write_text(table)
    print(table)


def main(args):
    sizes = dict(features=64, hidden=32, z_dim=4, batch_size=16, repeats=3, steps=2) if args.small else {}
    pyro.enable_validation(not args.no_validation)
    report = run(progress=not args.small, **sizes)
    report["config"]["validation"] = not args.no_validation
    write_results(args.out, "step_overhead", report, markdown(report))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", action="store_true", help="seconds: tiny networks (run by the tests)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--no-validation", action="store_true",
                        help="pyro.enable_validation(False): no argument and support checks (Pyro's default is on)")
    main(parser.parse_args())
