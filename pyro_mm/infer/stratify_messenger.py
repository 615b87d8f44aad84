"""A Pyro effect handler that stratifies a guide's multimodal posterior and the sites that follow it.

Inside :class:`StratifyMessenger`, the first latent site whose distribution is a
:class:`~pyro_mm.protocols.StratifiablePosterior` (a product or a mixture of experts, or any
family that gives q(z | x_S) for a subset S: the *shared* posterior) is replaced by its stratified
draws (``fn.stratify(subsets, weights)``, e.g. a
:class:`~pyro_mm.distributions.StratifiedPosterior`) for the strata of the plan an objective
makes (:class:`~pyro_mm.infer.StrataPlan`), and gains a ``"strata"`` plate frame at ``dim``. Every
later latent site whose distribution follows the strata (a
:class:`~pyro_mm.protocols.StratumFollower`, e.g. a modality-private
:class:`~pyro_mm.distributions.PrivatePosterior`) is stratified with the *same* subsets, so that
stratum s draws every latent consistently given x_{S_s} (MMVAE+: z and w_m from q(· | x_m), every
other w_n from its auxiliary prior). Like :func:`pyro.poutine.enum` for enumeration, this lets a
plain guide be drawn from every mixture component at once without the guide knowing about
strata; the objective then runs the model under a matching ``pyro.plate("strata", S, dim=dim)``.
"""

from __future__ import annotations

from typing import Callable, List, Optional

from pyro.poutine.indep_messenger import CondIndepStackFrame
from pyro.poutine.messenger import Messenger

from ..protocols import StratifiablePosterior, StratumFollower, conforms
from .strata_plan import StrataPlan

__all__ = ["StratifyMessenger"]

Planner = Callable[[StratifiablePosterior], Optional[StrataPlan]]


class StratifyMessenger(Messenger):
    """Stratify the guide's shared multimodal posterior and the sites that follow it.

    :param planner: maps the shared posterior to a :class:`~pyro_mm.infer.StrataPlan`, or to
        ``None`` to leave every site as it is.
    :param int dim: the plate dimension of the strata (left of the data plate).

    After the guide ran, :attr:`site` is the name of the shared site (or ``None``), :attr:`plan`
    the plan made for it (``None``: not stratified), :attr:`num_strata` its number of strata (0:
    not stratified) and :attr:`followers` the names of the sites stratified with it.
    """

    def __init__(self, planner: Planner, dim: int = -2):
        super().__init__()
        self.planner = planner
        self.dim = dim
        self.site: Optional[str] = None
        self.plan: Optional[StrataPlan] = None
        self.followers: List[str] = []

    @property
    def num_strata(self) -> int:
        return self.plan.num_strata if self.plan is not None else 0

    def _pyro_sample(self, msg) -> None:
        fn = msg["fn"]
        if msg["is_observed"]:
            return
        if conforms(fn, StratifiablePosterior):
            self._shared(msg, fn)
        elif not conforms(fn, StratumFollower):
            return
        elif self.site is None:
            raise ValueError(
                f"guide site {msg['name']!r} follows the strata of the shared multimodal posterior, which must be "
                "sampled before it"
            )
        elif self.plan is not None:
            msg["fn"] = fn.stratify(self.plan.subsets, self.plan.weights)
            self._add_frame(msg)
            self.followers.append(msg["name"])

    def _shared(self, msg, fn: StratifiablePosterior) -> None:
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
        self.plan = self.planner(fn)
        if self.plan is None:
            return
        msg["fn"] = fn.stratify(self.plan.subsets, self.plan.weights)
        self._add_frame(msg)

    def _add_frame(self, msg) -> None:
        frame = CondIndepStackFrame(name="strata", dim=self.dim, size=self.num_strata, counter=0)
        msg["cond_indep_stack"] = (frame,) + tuple(msg["cond_indep_stack"])
