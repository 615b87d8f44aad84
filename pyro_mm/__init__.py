"""pyro_mm: multimodal variational autoencoders as Pyro models, guides and ELBOs."""

__version__ = "0.2.0"
