"""Pyro models of pyro_mm (installed as ``pyro_mm.models``), one generative structure per file."""

from .mutual_supervision import MutualSupervisionModel
from .private_latent import PrivateLatentModel
from .shared_latent import SharedLatentModel

__all__ = ["MutualSupervisionModel", "PrivateLatentModel", "SharedLatentModel"]
