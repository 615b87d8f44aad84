"""pyro_mm's user-facing API in one import.

* the methods, one user class per objective: every class of the registry :data:`METHODS`, under
  its class name (:mod:`pyro_mm.registry` lists them: ``UnimodalVAE``, ``MVAE``, ``MEME`` ...), and
  their base :class:`~pyro_mm.multimodal_vae.MultimodalVAE`;
* :func:`load_model` for any saved model, :func:`default_modalities` for a data set's networks;
* the data containers :class:`~pyro_mm.batch.MultimodalBatch` and :class:`~pyro_mm.modality.Modality`
  (whose docs list every likelihood: Bernoulli, Normal, Laplace, ``Categorical(K)`` for labels and
  tokens).

A data set of one's own is a :class:`pyro_mm.data.MultimodalDataset` (tensors, masks, labels; a
class label is a categorical modality of its own); ``Method.for_dataset(data, z_dim)`` gives each
of its modalities default networks (images, token sequences, labels). See ``docs/data.md``.

Each user class owns its Pyro model, guide and ELBO (``vae.model``, ``vae.guide``, ``vae.elbo``),
which stay usable on their own with ``pyro.infer.SVI``.
"""

from .batch import MultimodalBatch
from .defaults import default_modalities
from .multimodal_vae import METHODS, MultimodalVAE, method_class
from .registry import load_model
from .modality import Modality

#: every registered method's user class, under its class name (``from pyro_mm.api import MEME``)
globals().update({cls.__name__: cls for cls in METHODS.values()})

__all__ = ["METHODS", "MultimodalVAE", *(cls.__name__ for cls in METHODS.values()), "load_model", "method_class",
           "default_modalities", "MultimodalBatch", "Modality"]
