"""Parameters set from the training data before the first step: the one call a plain
:class:`pyro.infer.SVI` user makes before training (pyro_mm's :class:`~pyro_mm.training.Trainer`
makes the same call).

Some modules hold parameters that start from real data rather than at random: MEME's
pseudo-samples u_1..u_N (:class:`~pyro_mm.models.MutualSupervisionModel`), the data-space inputs
of the priors of unpaired samples, are set to N observed entries of each modality. Every such
module is a :class:`~pyro_mm.protocols.DataInitialised` (``initialise(batch)``, an
``initialised`` flag saved in its state, an optional ``initialisation_size``), and
:func:`initialise` sets every one of them in a model and a guide, once.

**Registration.** The parameters of pyro_mm's models and guides — the pseudo-samples and
MMVAE+'s auxiliary priors r_m (:class:`~pyro_mm.guides.PrivateLatentGuide`, which start at the
prior, unit scales, and need no data) included — belong to :class:`pyro.nn.PyroModule` s: each
is registered with Pyro's param store when it is read, inside :class:`~pyro.infer.SVI`'s step
(the guides' at every call, the pseudo-samples whenever the objective evaluates the prior of an
unpaired sample), so SVI's optimiser trains them with no ``pyro.module`` statement. A
data-initialised parameter is set *in place*: the tensor keeps its identity, so a registration or
an optimiser state made before :func:`initialise` stays valid. Call it for any objective — where
nothing needs data it does nothing.

Example::

    svi = SVI(model, guide, pyro.optim.Adam({"lr": 1e-3}), loss=TraceMEME_ELBO())
    initialise(model, guide, train_set)   # a MultimodalBatch, a pyro_mm data set or batches
    for batch in batches:
        svi.step(batch)
"""

from __future__ import annotations

import itertools
from typing import List

import torch
from torch import nn

from ..batch import MultimodalBatch
from ..protocols import DataInitialised

__all__ = ["initialise", "initialisation_batch"]


def initialisation_batch(data, size: int, seed: int = 0) -> MultimodalBatch:
    """The first ``size`` samples of a shuffle drawn with ``seed`` of a :class:`MultimodalBatch`
    or a pyro_mm data set (anything with ``batch(indices)`` and ``masks``); the first batch of
    any other iterable of batches."""
    if isinstance(data, MultimodalBatch) or (hasattr(data, "batch") and hasattr(data, "masks")):
        order = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))[:size]
        return data.select(order) if isinstance(data, MultimodalBatch) else data.batch(order)
    return next(iter(data))


def _like(module: nn.Module, batch: MultimodalBatch) -> MultimodalBatch:
    """``batch`` on the module's device, its floating-point data in the module's precision."""
    tensors = itertools.chain(module.parameters(), module.buffers())
    first = next(tensors, None)
    device = first.device if first is not None else torch.device("cpu")
    dtype = next((t.dtype for t in itertools.chain(module.parameters(), module.buffers()) if t.is_floating_point()),
                 torch.get_default_dtype())
    if batch.device == device and all(not t.is_floating_point() or t.dtype == dtype for t in batch.data.values()):
        return batch
    return batch.to(device=device, dtype=dtype)


def initialise(model, guide, data, seed: int = 0) -> List[str]:
    """Set every :class:`~pyro_mm.protocols.DataInitialised` module of ``model`` and ``guide`` that
    is not yet initialised (MEME's pseudo-samples) from the training data, once, in place.

    :param model: the model (an ``nn.Module``; a plain function holds no such module).
    :param guide: the guide (likewise).
    :param data: the training data: a :class:`~pyro_mm.batch.MultimodalBatch`, a pyro_mm data set
        or an iterable of batches. Each module reads the first ``initialisation_size`` samples (512
        if it does not say) of a shuffle drawn with ``seed`` (:func:`initialisation_batch`), on its
        device and in its precision.
    :returns: the names of the modules it initialised (``"model"``, ``"model.<submodule>"``,
        ``"guide.<...>"``); empty when nothing needed data or all was done before.
    """
    done, seen = [], set()
    for prefix, root in (("model", model), ("guide", guide)):
        if not isinstance(root, nn.Module):
            continue
        for name, module in root.named_modules():
            if id(module) in seen:
                continue
            seen.add(id(module))
            if isinstance(module, DataInitialised) and not module.initialised:
                size = getattr(module, "initialisation_size", 512)
                module.initialise(_like(module, initialisation_batch(data, size, seed)))
                done.append(f"{prefix}.{name}" if name else prefix)
    return done
