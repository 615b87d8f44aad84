"""A Pyro effect handler that stratifies a guide's multimodal posterior site.

Inside :class:`StratifyMessenger`, the first latent site whose distribution is an
:class:`~pyro_mm.distributions.ExpertPosterior` (a product or a mixture of experts) is replaced by
a :class:`~pyro_mm.distributions.StratifiedPosterior` chosen by a policy (the ELBO's), and gains a
``"strata"`` plate frame at ``dim``. Like :func:`pyro.poutine.enum` for enumeration, this lets a
plain guide (``pyro.sample("z", SubsetMixture(...))``) be drawn from every mixture component at
once without the guide knowing about strata; the ELBO then runs the model under a matching
``pyro.plate("strata", S, dim=dim)``.
"""

from __future__ import annotations

from typing import Callable, Optional, Tuple

import torch
from pyro.poutine.indep_messenger import CondIndepStackFrame
from pyro.poutine.messenger import Messenger

from ..distributions import ExpertPosterior, StratifiedPosterior

__all__ = ["StratifyMessenger"]

StrataPolicy = Callable[[ExpertPosterior], Optional[Tuple[torch.Tensor, torch.Tensor]]]


class StratifyMessenger(Messenger):
    """Stratify the guide's multimodal posterior site.

    :param policy: maps the site's posterior to ``(subsets [S, B, M], weights [S, B])``, or to
        ``None`` to leave the site as it is.
    :param int dim: the plate dimension of the strata (left of the data plate).

    After the guide ran, :attr:`site` is the name of the stratified site (or ``None``) and
    :attr:`num_strata` its number of strata.
    """

    def __init__(self, policy: StrataPolicy, dim: int = -2):
        super().__init__()
        self.policy = policy
        self.dim = dim
        self.site: Optional[str] = None
        self.num_strata: int = 0

    def _pyro_sample(self, msg) -> None:
        fn = msg["fn"]
        if msg["is_observed"] or not isinstance(fn, ExpertPosterior):
            return
        if self.site is not None:
            raise ValueError(
                f"guide has two multimodal posterior sites ({self.site!r} and {msg['name']!r}); "
                "pyro_mm's stratified ELBOs support one"
            )
        if tuple(fn.batch_shape) != tuple(fn.observed.shape[:-1]):
            raise ValueError(
                f"site {msg['name']!r}: a multimodal posterior must be sampled inside the data plate "
                f"only (batch shape {tuple(fn.observed.shape[:-1])}), got {tuple(fn.batch_shape)}"
            )
        strata = self.policy(fn)
        self.site = msg["name"]
        if strata is None:
            return
        subsets, weights = strata
        msg["fn"] = StratifiedPosterior(fn, subsets, weights)
        frame = CondIndepStackFrame(name="strata", dim=self.dim, size=weights.shape[0], counter=0)
        msg["cond_indep_stack"] = (frame,) + tuple(msg["cond_indep_stack"])
        self.num_strata = weights.shape[0]
