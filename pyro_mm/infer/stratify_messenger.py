"""A Pyro effect handler that stratifies a guide's multimodal posterior and the sites that follow it.

Inside :class:`StratifyMessenger`, the first latent site whose distribution is an
:class:`~pyro_mm.distributions.ExpertPosterior` (a product or a mixture of experts: the *shared*
posterior) is replaced by its stratified draws (``fn.stratify(subsets, weights)``, a
:class:`~pyro_mm.distributions.StratifiedPosterior`) for the strata a policy (the ELBO's) chooses,
and gains a ``"strata"`` plate frame at ``dim``. Every later latent site whose distribution can be
stratified too (it has a ``stratify`` method, e.g. a modality-private
:class:`~pyro_mm.distributions.PrivatePosterior`) is stratified with the *same* subsets, so that
stratum s draws every latent consistently given x_{S_s} (MMVAE+: z and w_m from q(· | x_m), every
other w_n from its auxiliary prior). Like :func:`pyro.poutine.enum` for enumeration, this lets a
plain guide be drawn from every mixture component at once without the guide knowing about
strata; the ELBO then runs the model under a matching ``pyro.plate("strata", S, dim=dim)``.
"""

from __future__ import annotations

from typing import Callable, List, Optional, Tuple

import torch
from pyro.poutine.indep_messenger import CondIndepStackFrame
from pyro.poutine.messenger import Messenger

from ..distributions import ExpertPosterior

__all__ = ["StratifyMessenger"]

StrataPolicy = Callable[[ExpertPosterior], Optional[Tuple[torch.Tensor, torch.Tensor]]]


class StratifyMessenger(Messenger):
    """Stratify the guide's shared multimodal posterior and the sites that follow it.

    :param policy: maps the shared posterior to ``(subsets [S, B, M], weights [S, B])``, or to
        ``None`` to leave every site as it is.
    :param int dim: the plate dimension of the strata (left of the data plate).

    After the guide ran, :attr:`site` is the name of the shared site (or ``None``),
    :attr:`num_strata` its number of strata (0: not stratified) and :attr:`followers` the names of
    the sites stratified with it.
    """

    def __init__(self, policy: StrataPolicy, dim: int = -2):
        super().__init__()
        self.policy = policy
        self.dim = dim
        self.site: Optional[str] = None
        self.num_strata: int = 0
        self.followers: List[str] = []
        self._strata: Optional[Tuple[torch.Tensor, torch.Tensor]] = None

    def _pyro_sample(self, msg) -> None:
        fn = msg["fn"]
        if msg["is_observed"] or not hasattr(fn, "stratify"):
            return
        if isinstance(fn, ExpertPosterior):
            self._shared(msg, fn)
        elif self.site is None:
            raise ValueError(
                f"guide site {msg['name']!r} follows the strata of the shared multimodal posterior, which must be "
                "sampled before it"
            )
        elif self._strata is not None:
            msg["fn"] = fn.stratify(*self._strata)
            self._add_frame(msg)
            self.followers.append(msg["name"])

    def _shared(self, msg, fn: ExpertPosterior) -> None:
        if self.site is not None:
            raise ValueError(
                f"guide has two multimodal posterior sites ({self.site!r} and {msg['name']!r}); "
                "pyro_mm's stratified ELBOs support one shared posterior (and private sites that follow it)"
            )
        if tuple(fn.batch_shape) != tuple(fn.observed.shape[:-1]):
            raise ValueError(
                f"site {msg['name']!r}: a multimodal posterior must be sampled inside the data plate "
                f"only (batch shape {tuple(fn.observed.shape[:-1])}), got {tuple(fn.batch_shape)}"
            )
        self.site = msg["name"]
        self._strata = self.policy(fn)
        if self._strata is None:
            return
        msg["fn"] = fn.stratify(*self._strata)
        self.num_strata = self._strata[1].shape[0]
        self._add_frame(msg)

    def _add_frame(self, msg) -> None:
        frame = CondIndepStackFrame(name="strata", dim=self.dim, size=self._strata[1].shape[0], counter=0)
        msg["cond_indep_stack"] = (frame,) + tuple(msg["cond_indep_stack"])
