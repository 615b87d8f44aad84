"""The step losses of every registered method, to check that a refactoring changes no result.

A refactoring of the objectives or of the training loop must leave committed results valid: for a
fixed seed, every method's losses over a few training steps must be bit-identical before and after.
This script trains each case of the conformance tests (every registered method, its declared
variants and the further ELBO × guide pairings, on the tests' small modalities) for ``--steps``
Adam steps under plain ``pyro.infer.SVI``, and every registered method for the same number of
steps through :class:`pyro_mm.training.Trainer`, each on complete data and with a third of the
modality entries missing, and writes every loss as an exact hexadecimal float::

    python scripts/step_losses.py --out before.json          # on the old code
    python scripts/step_losses.py --compare before.json      # on the new: exits 1 on any difference

Bit-identity is a property of one machine and one torch build (CPU kernels differ between
machines), so the file is a local reference, not something to commit.
"""

import argparse
import json
import sys
from pathlib import Path

import pyro
import torch
from pyro.infer import SVI
from pyro.optim import Adam

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from mm_helpers import make_vae, method_cases, small_batch  # noqa: E402

from pyro_mm.registry import METHODS  # noqa: E402
from pyro_mm.training import Trainer  # noqa: E402

MISSING = {"complete": 0.0, "incomplete": 0.35}


def svi_losses(case, missing: float, steps: int):
    """``steps`` SVI steps of one conformance case on two modalities."""
    pyro.clear_param_store()
    torch.manual_seed(0)
    pyro.set_rng_seed(0)
    model, guide, make_elbo, mods = case.make(2)
    batch = small_batch(mods, missing=missing)
    svi = SVI(model, guide, Adam({"lr": 1e-2}), make_elbo())
    return [float(svi.step(batch)).hex() for _ in range(steps)]


def trainer_losses(cls, missing: float, steps: int):
    """``steps`` steps of :class:`Trainer` on a registered method."""
    torch.manual_seed(0)
    pyro.set_rng_seed(0)
    vae = make_vae(cls, 2)
    data = small_batch(vae.modalities, batch_size=24, missing=missing)
    losses = []
    Trainer(steps=steps, batch_size=8, lr=1e-2, progress=False,
            callbacks=[lambda record: losses.append(record.loss.hex())]).fit(vae, data)
    return losses


def fingerprint(steps: int):
    losses = {}
    for label, missing in MISSING.items():
        for case in method_cases():
            losses[f"svi/{case.id}/{label}"] = svi_losses(case, missing, steps)
        for name, cls in METHODS.items():
            losses[f"trainer/{name}/{label}"] = trainer_losses(cls, missing, steps)
    return losses


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--out", type=Path, help="write the losses to this JSON file")
    parser.add_argument("--compare", type=Path, help="compare with the losses in this JSON file")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    losses = fingerprint(args.steps)
    if args.out:
        args.out.write_text(json.dumps(losses, indent=1))
        print(f"{len(losses)} runs of {args.steps} steps written to {args.out}")
    if args.compare:
        reference = json.loads(args.compare.read_text())
        changed = [key for key in reference if key in losses and losses[key] != reference[key]]
        missing = [key for key in reference if key not in losses]
        for key in changed:
            first = next(i for i, (a, b) in enumerate(zip(losses[key], reference[key])) if a != b)
            print(f"CHANGED {key}: first at step {first}: {float.fromhex(reference[key][first])!r} -> "
                  f"{float.fromhex(losses[key][first])!r}")
        for key in missing:
            print(f"MISSING {key}")
        print(f"{len(reference) - len(changed) - len(missing)} of {len(reference)} runs bit-identical"
              f" ({len(set(losses) - set(reference))} new)")
        return 1 if changed or missing else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
