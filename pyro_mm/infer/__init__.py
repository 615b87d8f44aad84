"""Objectives of pyro_mm, one per file, each a :class:`pyro.infer.Trace_ELBO`: the traces of a step
under particle and strata plates (:class:`StratifiedObjective`), the importance-weighted bounds
built from their log-weights (:class:`StratifiedELBO` and its subclasses) and MEME. Each checks the
contract of the model and guide it is given on its first step (:class:`ContractError`); under plain
:class:`pyro.infer.SVI`, :func:`initialise` sets the parameters that start from data (MEME's
pseudo-samples) before the first step, and every objective's module docstring shows an example."""

from .contract import ContractCheck, ContractError
from .initialisation import initialise
from .selective_decode_messenger import SelectiveDecodeMessenger, observed_rows
from .stratified_elbo import LogWeights, StratifiedELBO
from .stratified_objective import StratifiedObjective, StratifiedTraces
from .stratify_messenger import StratifyMessenger
from .trace_meme_elbo import TraceMEME_ELBO
from .trace_mixture_elbo import TraceMixture_ELBO
from .trace_mmvae_plus_elbo import TraceMMVAEPlus_ELBO
from .trace_mvae_elbo import TraceMVAE_ELBO

__all__ = [
    "ContractCheck",
    "ContractError",
    "LogWeights",
    "SelectiveDecodeMessenger",
    "StratifiedELBO",
    "StratifiedObjective",
    "StratifiedTraces",
    "StratifyMessenger",
    "TraceMEME_ELBO",
    "TraceMMVAEPlus_ELBO",
    "TraceMixture_ELBO",
    "TraceMVAE_ELBO",
    "initialise",
    "observed_rows",
]
