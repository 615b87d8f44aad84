"""Multimodal batches: per-modality tensors plus a per-sample observation mask.

A batch holds, for ``B`` samples and ``M`` modalities,

* ``data[name]``: a tensor of shape ``[B, *event_shape]`` for every modality,
* ``mask``: a boolean tensor ``o`` of shape ``[B, M]``; ``o[b, m]`` is true when modality ``m``
  of sample ``b`` is observed (columns follow :attr:`MultimodalBatch.names`),
* optionally ``labels``: a ``[B]`` integer tensor used only by evaluation.

Missing entries are replaced by zeros on construction, whatever the caller put there (NaN
included), so the value of a missing entry can never reach a loss or a gradient. Observed entries
are checked to be finite; every sample must observe at least one modality.
"""

from __future__ import annotations

from typing import Dict, Iterable, Mapping, Optional, Sequence, Tuple

import torch

__all__ = ["MultimodalBatch", "check_batch", "collate_multimodal"]


class MultimodalBatch:
    """A batch of multimodal samples with an observation mask.

    :param dict data: modality name -> tensor ``[B, *event_shape]``; the dict order fixes the
        column order of ``mask`` unless ``names`` is given.
    :param mask: boolean tensor ``[B, M]`` (or ``None``: everything observed).
    :param labels: optional ``[B]`` integer tensor (class labels for evaluation).
    :param names: optional explicit modality order for the mask columns.
    """

    def __init__(
        self,
        data: Mapping[str, torch.Tensor],
        mask: Optional[torch.Tensor] = None,
        labels: Optional[torch.Tensor] = None,
        names: Optional[Sequence[str]] = None,
    ):
        if not isinstance(data, Mapping) or not data:
            raise ValueError("MultimodalBatch needs a non-empty mapping of modality name -> tensor")
        names = tuple(data) if names is None else tuple(names)
        unknown = sorted(set(data) - set(names))
        absent = [n for n in names if n not in data]
        if unknown or absent:
            raise KeyError(
                f"modality keys do not match the batch's modalities {list(names)}: "
                f"unknown {unknown}, missing {absent}"
            )
        for n, t in data.items():
            if not torch.is_tensor(t):
                raise TypeError(f"modality {n!r}: expected a torch.Tensor, got {type(t).__name__}")
            if t.dim() == 0:
                raise ValueError(f"modality {n!r}: expected shape [batch, ...], got a scalar")
        sizes = {n: data[n].shape[0] for n in names}
        batch_size = sizes[names[0]]
        if any(s != batch_size for s in sizes.values()):
            raise ValueError(f"modalities disagree on the batch size: {sizes}")
        device = data[names[0]].device
        if mask is None:
            mask = torch.ones(batch_size, len(names), dtype=torch.bool, device=device)
        if not torch.is_tensor(mask) or mask.dtype != torch.bool:
            raise TypeError(
                f"mask must be a boolean tensor of shape [{batch_size}, {len(names)}], "
                f"got {getattr(mask, 'dtype', type(mask).__name__)}"
            )
        if tuple(mask.shape) != (batch_size, len(names)):
            raise ValueError(
                f"mask has shape {tuple(mask.shape)}, expected [batch, modalities] = "
                f"[{batch_size}, {len(names)}] for modalities {list(names)}"
            )
        empty = (~mask.any(-1)).nonzero().flatten()
        if empty.numel():
            raise ValueError(
                f"{empty.numel()} sample(s) observe no modality (first: index "
                f"{empty[:5].tolist()}); every sample needs at least one observed modality"
            )
        clean = {}
        for i, n in enumerate(names):
            t = data[n]
            observed = mask[:, i].reshape((-1,) + (1,) * (t.dim() - 1))
            if t.is_floating_point():
                bad = ~torch.isfinite(t) & observed
                if bad.any():
                    rows = bad.reshape(batch_size, -1).any(-1).nonzero().flatten()
                    raise ValueError(
                        f"modality {n!r}: NaN or inf in observed entries of "
                        f"{rows.numel()} sample(s) (first: {rows[:5].tolist()})"
                    )
            clean[n] = torch.where(observed, t, torch.zeros((), dtype=t.dtype, device=t.device))
        if labels is not None:
            if not torch.is_tensor(labels) or labels.shape != (batch_size,):
                raise ValueError(f"labels must be a tensor of shape [{batch_size}]")
        self.names: Tuple[str, ...] = names
        self.data: Dict[str, torch.Tensor] = clean
        self.mask: torch.Tensor = mask
        self.labels: Optional[torch.Tensor] = labels

    # --- access -------------------------------------------------------------------------------
    def __getitem__(self, name: str) -> torch.Tensor:
        try:
            return self.data[name]
        except KeyError:
            raise KeyError(f"unknown modality {name!r}; the batch has {list(self.names)}") from None

    def __len__(self) -> int:
        return self.mask.shape[0]

    @property
    def batch_size(self) -> int:
        return self.mask.shape[0]

    @property
    def device(self) -> torch.device:
        return self.mask.device

    def index(self, name: str) -> int:
        """Column of ``name`` in :attr:`mask`."""
        try:
            return self.names.index(name)
        except ValueError:
            raise KeyError(f"unknown modality {name!r}; the batch has {list(self.names)}") from None

    def observed(self, name: str) -> torch.Tensor:
        """Boolean ``[B]``: which samples observe modality ``name``."""
        return self.mask[:, self.index(name)]

    def select(self, rows: torch.Tensor) -> "MultimodalBatch":
        """The sub-batch of the given rows (index or boolean tensor)."""
        labels = None if self.labels is None else self.labels[rows]
        return MultimodalBatch(
            {n: t[rows] for n, t in self.data.items()}, self.mask[rows], labels, self.names
        )

    def only(self, names: Sequence[str]) -> "MultimodalBatch":
        """The batch restricted to the modalities ``names``, dropping the samples that observe none
        of them."""
        cols = [self.index(n) for n in names]
        keep = self.mask[:, cols].any(-1)
        labels = None if self.labels is None else self.labels[keep]
        return MultimodalBatch({n: self.data[n][keep] for n in names}, self.mask[keep][:, cols], labels, names)

    def require(self, names: Sequence[str], owner: str) -> None:
        """Raise a clear error unless the batch's modalities are exactly ``names``."""
        unknown = sorted(set(self.names) - set(names))
        missing = [n for n in names if n not in self.names]
        if unknown or missing:
            raise KeyError(
                f"{owner} has modalities {list(names)}; the batch has unknown {unknown} and lacks "
                f"{missing} (batch.only([...]) keeps some modalities)"
            )

    def each_alone(self) -> Tuple[torch.Tensor, torch.Tensor, "MultimodalBatch"]:
        """One row per observed (sample, modality) pair, that modality the only one observed:
        ``(rows, cols, batch)`` with ``rows``/``cols`` ``[N]`` the pairs (``mask.nonzero()``) and
        ``batch`` of ``N`` samples — what a guide conditions on for q(z | x_m) of every pair in
        one call."""
        rows, cols = self.mask.nonzero(as_tuple=True)
        alone = torch.zeros(len(rows), len(self.names), dtype=torch.bool, device=self.mask.device)
        alone[torch.arange(len(rows), device=rows.device), cols] = True
        return rows, cols, self.select(rows).with_mask(alone)

    def with_mask(self, mask: torch.Tensor) -> "MultimodalBatch":
        """The same data under another observation mask (entries it hides become zeros)."""
        return MultimodalBatch(self.data, mask, self.labels, self.names)

    @classmethod
    def _checked_already(cls, data: Dict[str, torch.Tensor], mask: torch.Tensor, labels, names) -> "MultimodalBatch":
        """A batch from the tensors of one that was checked (moved or converted): the checks are
        not repeated, so moving a batch to a device reads nothing back from it."""
        batch = cls.__new__(cls)
        batch.names, batch.data, batch.mask, batch.labels = tuple(names), dict(data), mask, labels
        return batch

    def to(self, *args, **kwargs) -> "MultimodalBatch":
        """Move every tensor (data, mask, labels) like :meth:`torch.Tensor.to`.

        A dtype argument converts only floating-point modalities; masks and integer data keep
        their dtype. The checks of the constructor are not repeated (no host synchronisation).
        """
        def move(t: torch.Tensor) -> torch.Tensor:
            if t.is_floating_point():
                return t.to(*args, **kwargs)
            moved = t.to(*args, **kwargs)
            return moved if moved.dtype == t.dtype else t.to(device=moved.device)

        labels = None if self.labels is None else move(self.labels)
        return self._checked_already({n: move(t) for n, t in self.data.items()}, move(self.mask), labels, self.names)

    def pin_memory(self) -> "MultimodalBatch":
        labels = None if self.labels is None else self.labels.pin_memory()
        return self._checked_already({n: t.pin_memory() for n, t in self.data.items()}, self.mask.pin_memory(),
                                     labels, self.names)

    def __repr__(self) -> str:
        shapes = ", ".join(f"{n}: {tuple(t.shape)}" for n, t in self.data.items())
        frac = self.mask.float().mean(0).tolist()
        observed = ", ".join(f"{n}: {f:.2f}" for n, f in zip(self.names, frac))
        return f"MultimodalBatch({shapes}; observed fraction {observed})"


def check_batch(batch, names: Sequence[str], owner: str) -> None:
    """Raise a clear error unless ``batch`` is a :class:`MultimodalBatch` over exactly ``names``."""
    if not isinstance(batch, MultimodalBatch):
        raise TypeError(f"{owner} expects a pyro_mm.MultimodalBatch, got {type(batch).__name__}")
    batch.require(names, owner)


def collate_multimodal(items: Iterable[Mapping]) -> MultimodalBatch:
    """Collate dataset items into a :class:`MultimodalBatch` (a ``DataLoader`` ``collate_fn``).

    Each item is a mapping with ``"data"`` (modality name -> tensor without batch dimension),
    ``"mask"`` (boolean ``[M]`` in the order of ``"data"``) and optionally ``"label"``.
    """
    items = list(items)
    if not items:
        raise ValueError("cannot collate an empty list of samples")
    names = tuple(items[0]["data"])
    data = {n: torch.stack([torch.as_tensor(it["data"][n]) for it in items]) for n in names}
    mask = torch.stack([torch.as_tensor(it["mask"], dtype=torch.bool) for it in items])
    labels = None
    if "label" in items[0] and items[0]["label"] is not None:
        labels = torch.as_tensor([int(it["label"]) for it in items], dtype=torch.long)
    return MultimodalBatch(data, mask, labels, names)
