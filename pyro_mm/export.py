"""ArviZ export: posterior draws of the shared latent z and the training trace as a DataTree.

:func:`to_datatree` runs the guide once under ``poutine.trace`` on the chosen inputs and draws
``num_samples`` values from the distribution at its latent site — the guide's own posterior
q(z | x_o) given every observed modality (a product of experts, a subset mixture, ...). For guides
made of per-modality experts it also draws from every unimodal expert q(z | x_m), NaN where x_m is
missing. The result is an ArviZ ``DataTree`` (built with :func:`arviz_base.from_dict`):

================  ===========================================================================
group             variables
================  ===========================================================================
``posterior``     ``z`` and ``z_<modality>`` with dims (chain, draw, input, latent_dim)
``constant_data`` ``observed`` (input, modality) mask; ``label`` (input) when the batch has labels
``training``      ``loss`` (epoch) — the mean loss per sample of every epoch; ``step_loss`` (step)
================  ===========================================================================

so ArviZ's summaries and plots (``arviz_stats.summary``, ``arviz_plots``) work on the latent
posterior of any pyro_mm model. :func:`save_datatree` writes netCDF-4 (``h5netcdf``) and
:func:`load_datatree` reads it back identically.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch
import xarray as xr
from arviz_base import from_dict
from pyro import poutine

from .batch import MultimodalBatch, check_batch

__all__ = ["to_datatree", "save_datatree", "load_datatree"]

ENGINE = "h5netcdf"


def _latent_site(guide, batch: MultimodalBatch):
    with torch.no_grad():
        trace = poutine.trace(guide).get_trace(batch)
    latent = getattr(guide, "latent", "z")
    if latent not in trace.nodes:
        raise ValueError(f"the guide has no latent site {latent!r}")
    return trace.nodes[latent]["fn"]


def to_datatree(vae, batch: MultimodalBatch, num_samples: int = 100,
                step_losses: Optional[Sequence[float]] = None, seed: Optional[int] = None):
    """Posterior draws of z for ``batch`` and the training trace of a pyro_mm user object.

    :param vae: a :class:`~pyro_mm.api.MultimodalVAE` (its ``guide``, ``names`` and ``history``).
    :param batch: the inputs (any observation mask; each sample must observe something).
    :param num_samples: draws per input.
    :param step_losses: optional per-step losses (e.g. collected with ``fit(callback=...)``).
    :param seed: seed for the draws (default: the global random state).
    """
    if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 1:
        raise ValueError(f"num_samples must be a positive integer, got {num_samples!r}")
    names = tuple(vae.names)
    check_batch(batch, names, "to_datatree")
    device = next(vae.parameters()).device
    batch = batch.to(device)
    if seed is not None:
        torch.manual_seed(seed)
    guide = vae.guide
    with torch.no_grad():
        joint = _latent_site(guide, batch).sample((num_samples,))  # [S, B, D]
        posterior = {"z": joint.cpu().numpy()[None]}
        if hasattr(guide, "experts"):
            loc, scale, mask = guide.experts(batch)  # [B, M, D]
            draws = loc + scale * torch.randn((num_samples,) + loc.shape, dtype=loc.dtype, device=loc.device)
            draws = draws.masked_fill(~mask[None, :, :, None], float("nan"))
            for i, n in enumerate(names):
                posterior[f"z_{n}"] = draws[:, :, i].cpu().numpy()[None]
    constant = {"observed": batch.mask.cpu().numpy()}
    if batch.labels is not None:
        constant["label"] = batch.labels.cpu().numpy()
    dims = {k: ["input", "latent_dim"] for k in posterior}
    dims.update(observed=["input", "modality"], label=["input"])
    coords = {"modality": list(names), "input": np.arange(len(batch)), "latent_dim": np.arange(joint.shape[-1])}
    tree = from_dict({"posterior": posterior, "constant_data": constant}, dims=dims, coords=coords)
    training = {"loss": ("epoch", np.asarray(vae.history, dtype=float))}
    if step_losses is not None:
        training["step_loss"] = ("step", np.asarray(step_losses, dtype=float))
    tree["training"] = xr.DataTree(xr.Dataset(training))
    tree.attrs.update(pyro_mm_class=type(vae).__name__, modalities=list(names), num_samples=num_samples)
    return tree


def save_datatree(tree, path) -> Path:
    """Write ``tree`` as netCDF-4 (groups kept) through a temporary file renamed over ``path``."""
    path = Path(path)
    if path.exists() and path.is_dir():
        raise IsADirectoryError(f"{path} is a directory")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tree.to_netcdf(tmp, engine=ENGINE)
    tmp.replace(path)
    return path


def load_datatree(path):
    """Read a file written by :func:`save_datatree` (loaded into memory, the file closed)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no pyro_mm ArviZ file at {path}")
    try:
        with xr.open_datatree(path, engine=ENGINE) as tree:
            return tree.load()
    except Exception as error:
        raise ValueError(f"{path} is corrupt or not a netCDF-4 DataTree ({type(error).__name__}: {error})") from None
