"""Two processes (gloo) against one: the gradients of a data-parallel step of every registered
method equal one process's on both shards together. Run by tests/test_lightning.py as a script
(the processes are spawned, which a pytest module cannot be); prints a JSON report.

    python tests/ddp_gradients.py OUT_DIR
"""

import faulthandler
import json
import os
import sys
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))

from mm_helpers import make_vae, small_batch  # noqa: E402

from pyro_mm.lightning import LightningModelGuideELBO  # noqa: E402
from pyro_mm.registry import METHODS  # noqa: E402

WORLD, SEED = 2, 7
#: seconds after which a worker prints every thread's stack (the test gives the run 120 s; alone it takes ~15 s)
HANG_REPORT_SECONDS = 90
CASES = [(name, missing) for name in METHODS for missing in (0.0, 0.4)]


class _Step(nn.Module):
    """What Lightning's DDP wrapper does: forward is the LightningModule's training_step."""

    def __init__(self, module):
        super().__init__()
        self.module = module

    def forward(self, batch):
        return self.module.training_step(batch, 0)


def build(name, missing):
    torch.manual_seed(0)
    vae = make_vae(METHODS[name], 2)
    batch = small_batch(vae.modalities if name != "unimodal" else make_vae(METHODS["mvae"], 2).modalities,
                        batch_size=16, missing=missing, seed=3)
    vae.initialise(vae.training_data(batch))
    return vae, vae.training_data(batch)


def shard(batch, rank):
    return batch.select(torch.arange(rank, len(batch), WORLD))


def worker(rank, out):
    faulthandler.dump_traceback_later(HANG_REPORT_SECONDS)  # a rank that hangs prints where, before the test's timeout
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=os.environ["DDP_TEST_PORT"])
    dist.init_process_group("gloo", rank=rank, world_size=WORLD)
    torch.set_num_threads(1)
    for name, missing in CASES:
        vae, batch = build(name, missing)
        start = {k: v.clone() for k, v in vae.state_dict().items() if torch.is_tensor(v)}
        step = nn.parallel.DistributedDataParallel(_Step(LightningModelGuideELBO(vae)), find_unused_parameters=True)
        torch.manual_seed(SEED + 1 + rank)  # as LightningModelGuideELBO.on_fit_start seeds every process
        step(shard(batch, rank)).backward()
        grads = {n: (p.grad if p.grad is not None else torch.zeros_like(p)) for n, p in vae.named_parameters()}
        torch.manual_seed(SEED + 1 + rank)
        draws = vae.guide.posterior(batch).rsample() if hasattr(vae.guide, "posterior") else None
        torch.save({"grads": grads, "start": start, "draws": draws}, Path(out) / f"{name}-{missing}-rank{rank}.pt")
    dist.destroy_process_group()
    faulthandler.cancel_dump_traceback_later()


def main(out):
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    mp.spawn(worker, args=(str(out),), nprocs=WORLD, join=True)
    report = {}
    for name, missing in CASES:
        ranks = [torch.load(out / f"{name}-{missing}-rank{r}.pt", weights_only=False) for r in range(WORLD)]
        vae, batch = build(name, missing)
        vae.zero_grad()
        for rank in range(WORLD):  # one process, both shards, the same random numbers
            torch.manual_seed(SEED + 1 + rank)
            vae(vae.to_model(shard(batch, rank))).backward()
        reference = {n: (p.grad if p.grad is not None else torch.zeros_like(p)) for n, p in vae.named_parameters()}
        gaps = {n: float((ranks[0]["grads"][n] - g).abs().max() / g.abs().max().clamp_min(1e-12))
                for n, g in reference.items()}
        moved = [n for n, g in reference.items() if g.abs().max() > 0]
        report[f"{name}-{missing}"] = {
            "max_relative_gap": max(gaps.values()),
            "ranks_agree_on_gradients": all(torch.equal(ranks[0]["grads"][n], ranks[1]["grads"][n]) for n in gaps),
            "ranks_start_equal": all(torch.equal(ranks[0]["start"][k], ranks[1]["start"][k]) for k in ranks[0]["start"]),
            "ranks_draw_differently": bool(ranks[0]["draws"] is None or not torch.equal(ranks[0]["draws"], ranks[1]["draws"])),
            "parameters": len(gaps), "with_gradient": len(moved),
            "pseudo_or_scales": sorted(n for n in gaps if "pseudo" in n or "aux" in n or "log_scale" in n),
        }
    print(json.dumps(report))


if __name__ == "__main__":
    main(sys.argv[1])
