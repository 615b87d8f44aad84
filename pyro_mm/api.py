"""pyro_mm's user-facing API in one import.

* the methods, one user class per objective (:mod:`pyro_mm.methods`): :class:`UnimodalVAE`,
  :class:`MVAE`, :class:`MMVAE`, :class:`MoPoE`, :class:`MEME`, :class:`MMVAEPlus`; their base
  :class:`~pyro_mm.method.MultimodalVAE` and the registry :data:`METHODS`;
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
from .method import METHODS, MultimodalVAE, method_class
from .methods import MEME, MMVAE, MVAE, MMVAEPlus, MoPoE, UnimodalVAE, load_model
from .modality import Modality

__all__ = ["METHODS", "MultimodalVAE", "UnimodalVAE", "MVAE", "MMVAE", "MoPoE", "MEME", "MMVAEPlus", "load_model",
           "method_class", "default_modalities", "MultimodalBatch", "Modality"]
