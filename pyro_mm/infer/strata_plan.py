"""What an objective asks of the strata runner: the strata of the guide's shared posterior and where
the model decodes.

An objective (a :class:`~pyro_mm.infer.MultimodalELBO`) answers one question about the guide's
shared posterior, :meth:`~pyro_mm.infer.MultimodalELBO.plan`: a :class:`StrataPlan`, or ``None``
to leave the posterior as it is (one stratum of weight one: an ordinary importance-weighted
bound). The plan is asked for while the guide runs, at the shared site, before anything is drawn
from it; the runner then draws K particles from each of its S strata and runs the model decoding
each modality only at the cells the plan names (:class:`~pyro_mm.infer.SelectiveDecodeMessenger`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional

import torch

__all__ = ["StrataPlan"]


@dataclass(frozen=True)
class StrataPlan:
    """The strata of the shared posterior and the model's decoding for one step.

    :ivar subsets: boolean ``[S, B, M]``, the subset S_{s,b} of stratum s for sample b (only its
        observed members count).
    :ivar weights: ``[S, B]``, ω_{s,b}, the weight of each stratum in the bound (zero: padding).
    :ivar decoded: modality name -> boolean ``[K, S]`` (CPU), or ``[K, S, B]`` per sample: the
        (particle, stratum) cells whose likelihood the bound uses, for the model to decode only
        there; ``None``: every cell uses every modality.
    :ivar zero_gradient: modality name -> boolean ``[K, S, B]`` (CPU), a subset of its per-sample
        ``decoded`` cells: the entries whose likelihood enters the bound with a net gradient of
        exactly zero, decoded outside autograd; ``None``: none.
    :ivar rows: modality name -> boolean ``[B]`` (CPU) of the samples that observe it (the model
        masks a missing modality's likelihood out: its decoder need not run there); ``None``:
        decode every sample (:meth:`~pyro_mm.infer.MultimodalELBO.decoded_rows` gives them).
    """

    subsets: torch.Tensor
    weights: torch.Tensor
    decoded: Optional[Dict[str, torch.Tensor]] = None
    zero_gradient: Optional[Dict[str, torch.Tensor]] = None
    rows: Optional[Dict[str, torch.Tensor]] = None

    @property
    def num_strata(self) -> int:
        """S."""
        return self.weights.shape[0]

