"""ELBOs of pyro_mm: one objective per file, each a :class:`pyro.infer.Trace_ELBO`."""

from .selective_decode_messenger import SelectiveDecodeMessenger, observed_rows
from .stratified_elbo import StratifiedELBO
from .stratify_messenger import StratifyMessenger
from .trace_meme_elbo import TraceMEME_ELBO
from .trace_mixture_elbo import TraceMixture_ELBO
from .trace_mvae_elbo import TraceMVAE_ELBO

__all__ = [
    "SelectiveDecodeMessenger",
    "StratifiedELBO",
    "StratifyMessenger",
    "TraceMEME_ELBO",
    "TraceMixture_ELBO",
    "TraceMVAE_ELBO",
    "observed_rows",
]
