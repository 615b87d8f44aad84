"""Pyro models of pyro_mm (installed as ``pyro_mm.models``), one generative structure per file."""

from .mutual_supervision import MutualSupervisionModel
from .shared_latent import SharedLatentModel

__all__ = ["MutualSupervisionModel", "SharedLatentModel"]
