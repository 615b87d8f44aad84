"""MNIST digits and their labels as two modalities: the data of semi-supervised learning.

* ``"image"``: the MNIST image, ``1x28x28`` grey levels in ``[0, 1]`` (Bernoulli likelihood);
* ``"label"``: its digit class, one ``int64`` id in ``0..9`` per sample (event shape ``()``,
  ``Categorical(10)`` likelihood; ``num_categories["label"] == 10``).

The label is a modality like the image: a model generates it from the latent, an encoder reads it,
and an observation mask may hide it. Hiding it for all but a few samples is semi-supervised
learning — :class:`~pyro_mm.data.observation.PairedCount` keeps the label of exactly ``count``
samples (``count / 10`` of each class, as the labelled subsets of Pyro's semi-supervised VAE
tutorial) and shows only the image of the others::

    from pyro_mm.data import MNISTLabel, PairedCount

    train = MNISTLabel("train", observation=PairedCount(600, scheme="s", balanced=True, seed=0))

The data set's ``labels`` (what the metrics judge against) are the same digits. A ``size`` below
the split's picks that many images at random (``seed``), in their MNIST order.
"""

from __future__ import annotations

from typing import Dict, Optional

import numpy as np

from pyro_mm.data.base import MultimodalDataset, check_size, make_rng, to_tensors
from pyro_mm.data.cache import cache_file, cached_arrays
from pyro_mm.data.checksums import recorded_sha256
from pyro_mm.data.mnist import mnist_split

__all__ = ["MNISTLabel", "NUM_CLASSES", "build_mnist_label"]

VERSION = 1
#: the digit classes, the label modality's categories
NUM_CLASSES = 10


def build_mnist_label(images: np.ndarray, labels: np.ndarray, size: int,
                      rng: np.random.Generator) -> Dict[str, np.ndarray]:
    """``size`` images of one MNIST split, drawn without replacement (kept in MNIST order), with
    their labels and their index in the split."""
    chosen = np.sort(rng.permutation(len(labels))[:size])
    return {"image": np.ascontiguousarray(images[chosen][:, None]), "labels": labels[chosen].astype(np.int64),
            "mnist_index": chosen.astype(np.int64)}


class MNISTLabel(MultimodalDataset):
    """MNIST images and their digit labels: ``"image"`` ``1x28x28`` (Bernoulli) and ``"label"``
    (one of 10 classes, categorical; see the module docstring).

    :param str split: ``"train"`` (60 000 images by default) or ``"test"`` (10 000).
    :param int size: number of images (default: the whole split).
    :param int seed: which images a smaller ``size`` picks (the whole split is the same for any seed).
    :param root: cache directory. :param source_dir: the user's own MNIST IDX files.
    :param observation: see :class:`~pyro_mm.data.base.MultimodalDataset`; e.g.
        :class:`~pyro_mm.data.observation.PairedCount` to keep the label of a few samples only.

    Attributes besides the base ones: ``mnist_index`` (each sample's index in the MNIST split),
    ``num_classes`` (10).
    """

    num_classes = NUM_CLASSES

    def __init__(self, split: str = "train", size: Optional[int] = None, seed: int = 0, root=None,
                 source_dir=None, observation=None):
        images, labels = mnist_split(split, root, source_dir)
        size = check_size(size, len(labels), "MNISTLabel")
        params = dict(set="mnist_label", version=VERSION, split=split, size=size, seed=seed)
        default = size == len(labels) and seed == 0

        def build():
            return build_mnist_label(images, labels, size, make_rng(seed, split, "mnist_label"))

        self.cache_path = cache_file(f"mnist_label-{split}", params, root)
        arrays = cached_arrays(self.cache_path, build, recorded_sha256("mnist-label", split) if default else None,
                               f"MNISTLabel {split}")
        tensors = to_tensors(arrays)
        super().__init__({"image": tensors["image"], "label": tensors["labels"]},
                         {"image": "bernoulli", "label": "categorical"}, tensors["labels"], observation=observation,
                         num_categories={"label": NUM_CLASSES})
        self.split, self.seed = split, seed
        self.mnist_index = tensors["mnist_index"]
