"""Objectives of pyro_mm, one per file, each a :class:`MultimodalELBO` (a :class:`pyro.infer.ELBO`):
the strata runner runs the guide and the model under particle and strata plates as the objective's
:class:`StrataPlan` says (:class:`StratifiedTraces`), and the objective computes its bound from the
traces — the stratified importance-weighted bound (:func:`importance_weighted_bound`) for MVAE, the
mixture bounds and MMVAE+, mutual supervision for MEME. Each checks the contract of the model and
guide it is given on its first step (:class:`ContractError`); under plain :class:`pyro.infer.SVI`,
:func:`initialise` sets the parameters that start from data (MEME's pseudo-samples) before the
first step, and every objective's module docstring shows an example."""

from .contract import ContractCheck, ContractError
from .importance_weighted import LogWeights, StratifiedELBO, importance_weighted_bound, log_weights
from .initialisation import initialise
from .multimodal_elbo import Estimate, MultimodalELBO
from .selective_decode_messenger import SelectiveDecodeMessenger, observed_rows
from .strata_plan import StrataPlan
from .stratified_traces import StratifiedTraces, run_strata
from .stratify_messenger import StratifyMessenger
from .trace_meme_elbo import TraceMEME_ELBO
from .trace_mixture_elbo import TraceMixture_ELBO
from .trace_mmvae_plus_elbo import TraceMMVAEPlus_ELBO
from .trace_mvae_elbo import TraceMVAE_ELBO

__all__ = [
    "ContractCheck",
    "ContractError",
    "Estimate",
    "LogWeights",
    "MultimodalELBO",
    "SelectiveDecodeMessenger",
    "StrataPlan",
    "StratifiedELBO",
    "StratifiedTraces",
    "StratifyMessenger",
    "TraceMEME_ELBO",
    "TraceMMVAEPlus_ELBO",
    "TraceMixture_ELBO",
    "TraceMVAE_ELBO",
    "importance_weighted_bound",
    "initialise",
    "log_weights",
    "observed_rows",
    "run_strata",
]
