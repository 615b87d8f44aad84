"""ArviZ export: posterior draws of the shared latent z and the training trace as a DataTree.

:func:`to_datatree` runs a trained guide under ``poutine.trace`` (as the queries of
:mod:`pyro_mm.queries` do) and draws ``num_samples`` values from the distribution at its latent
site, twice:

* ``z`` — the guide's posterior given every observed modality of each input, q(z | x_o) (a
  product of experts for MVAE, a subset mixture for MMVAE / MoPoE / MEME);
* ``z_given`` — for every input b and modality m, the guide's posterior when x_m is the only
  modality given, q(z | x_m): the posterior :func:`~pyro_mm.queries.predict` uses with
  ``given=[m]`` (for MVAE the expert times the prior expert, p(z) q̃(z | x_m) as in Wu & Goodman
  2018; for the mixture guides the unimodal expert itself). Every observed (b, m) pair is one row
  of a single guide call. **NaN where x_m is missing**: an input that does not observe m has no
  q(z | x_m), and NaN is what ArviZ and xarray skip in their summaries (``skipna``).

The result is an ArviZ ``DataTree`` (built with :func:`arviz_base.from_dict`):

=================  ============================================================================
group              variables
=================  ============================================================================
``posterior``      ``z`` (chain, draw, input, latent_dim); ``z_given`` (chain, draw, input,
                   modality, latent_dim); one chain
``constant_data``  ``observed`` (input, modality), the observation mask; ``label`` (input) when
                   the batch has labels
``training``       ``loss`` (epoch), the mean loss per sample of every epoch (``vae.history``);
                   ``step_loss`` (step) when per-step losses are given
=================  ============================================================================

(the dimension of the inputs is ``input``, not ``sample``, which ArviZ users read as a draw), so
the latent posterior of any pyro_mm model is in ArviZ's layout for its plots and statistics, and
xarray's reductions read it directly, e.g. ``tree["posterior"]["z_given"].mean(("chain", "draw"))``
(posterior means per modality, NaN where missing). :func:`save_datatree` writes netCDF-4 through
``h5netcdf`` and :func:`load_datatree` reads it back identically (values, dims, coords, attrs).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch
from pyro import poutine

from .batch import MultimodalBatch, check_batch
from .extras import require
from .options import NUM_SAMPLES

xr = require("xarray", "arviz", "the ArviZ export")
from_dict = require("arviz_base", "arviz", "the ArviZ export").from_dict

__all__ = ["to_datatree", "save_datatree", "load_datatree"]

ENGINE = "h5netcdf"


def _posterior_draws(guide, latent: str, batch: MultimodalBatch, num_samples: int) -> torch.Tensor:
    """``[num_samples, B, D]`` draws from the distribution the guide puts at its latent site."""
    trace = poutine.trace(guide).get_trace(batch)
    if latent not in trace.nodes:
        raise ValueError(f"the guide has no latent site {latent!r}")
    return trace.nodes[latent]["fn"].sample((num_samples,))


def to_datatree(vae, batch: MultimodalBatch, num_samples: int = NUM_SAMPLES.default,
                step_losses: Optional[Sequence[float]] = None, seed: Optional[int] = None):
    """Posterior draws of z for ``batch`` and the training trace of a pyro_mm user object.

    :param vae: a :class:`~pyro_mm.api.MultimodalVAE` (its ``model``, ``guide`` and ``history``).
    :param batch: the inputs (any observation mask; each sample must observe something).
    :param int num_samples: draws per input (≥ 1).
    :param step_losses: optional per-step losses (e.g. collected with ``fit(callback=...)``).
    :param seed: seed for the draws; the caller's random state is left untouched. Default: the
        global random state.
    :raises TypeError: ``batch`` is not a :class:`~pyro_mm.batch.MultimodalBatch`.
    :raises KeyError: its modalities are not the model's.
    :raises ValueError: ``num_samples`` is not a positive integer.
    """
    num_samples = NUM_SAMPLES.validate(num_samples)
    names = tuple(vae.names)
    check_batch(batch, names, "to_datatree")
    device = next(vae.parameters()).device
    batch = batch.to(device)
    latent = vae.model.latent
    rows, cols, alone = batch.each_alone()  # every observed (input, modality) pair, alone
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else [], enabled=seed is not None), \
            torch.no_grad():
        if seed is not None:
            torch.manual_seed(seed)
        joint = _posterior_draws(vae.guide, latent, batch, num_samples)  # [S, B, D]
        given = joint.new_full((num_samples, len(batch), len(names), joint.shape[-1]), float("nan"))
        given[:, rows, cols] = _posterior_draws(vae.guide, latent, alone, num_samples)
    posterior = {latent: joint.cpu().numpy()[None], f"{latent}_given": given.cpu().numpy()[None]}
    constant = {"observed": batch.mask.cpu().numpy()}
    if batch.labels is not None:
        constant["label"] = batch.labels.cpu().numpy()
    dims = {latent: ["input", "latent_dim"], f"{latent}_given": ["input", "modality", "latent_dim"],
            "observed": ["input", "modality"], "label": ["input"]}
    coords = {"modality": list(names), "input": np.arange(len(batch)), "latent_dim": np.arange(joint.shape[-1])}
    tree = from_dict({"posterior": posterior, "constant_data": constant}, dims=dims, coords=coords)
    training = {"loss": ("epoch", np.asarray(vae.history, dtype=float))}
    if step_losses is not None:
        training["step_loss"] = ("step", np.asarray(step_losses, dtype=float))
    tree["training"] = xr.DataTree(xr.Dataset(training))
    tree.attrs.update(pyro_mm_class=type(vae).__name__, modalities=list(names), num_samples=num_samples)
    return tree


def save_datatree(tree, path) -> Path:
    """Write ``tree`` as netCDF-4 (groups kept) through a temporary file renamed over ``path``, so
    an interrupted write leaves any previous file intact."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a directory")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        tree.to_netcdf(tmp, engine=ENGINE)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def load_datatree(path):
    """Read a file written by :func:`save_datatree` (loaded into memory, the file closed).

    :raises FileNotFoundError: no file at ``path``.
    :raises ValueError: the file is not netCDF-4 (corrupt, truncated) or not a pyro_mm export.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no pyro_mm ArviZ file at {path}")
    try:
        with xr.open_datatree(path, engine=ENGINE) as tree:
            tree = tree.load()
    except Exception as error:
        raise ValueError(f"{path} is corrupt or not a netCDF-4 DataTree ({type(error).__name__}: {error})") from None
    if "pyro_mm_class" not in tree.attrs or "posterior" not in tree.children:
        raise ValueError(f"{path} is a netCDF-4 file but not a pyro_mm export (no posterior group or pyro_mm attrs)")
    return tree
