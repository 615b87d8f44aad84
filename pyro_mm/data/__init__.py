"""Offline multimodal data sets built from real digits, photographs and fonts.

* :class:`MNIST` - the 70 000 original MNIST images, from verified IDX files;
* :class:`MNISTLabel` - MNIST images and their digit labels as two modalities (semi-supervised
  learning: the label observed for a few samples only, :class:`PairedCount`);
* :class:`PolyMNIST`, :class:`TranslatedPolyMNIST` - M coloured-background digit modalities;
* :class:`MNISTSynDigits` - MNIST paired by class with rendered printed digits (SVHN stand-in);
* :class:`CaptionedDigits` - coloured digits with captions over a small :data:`VOCAB`;
* :class:`PairedFraction`, :class:`PairedCount`, :class:`MissingAtRandom` - partial-observation masks;
* :func:`preview` - a PNG contact sheet of any of them.

Every set yields items that :func:`pyro_mm.batch.collate_multimodal` batches; see
:class:`~pyro_mm.data.base.MultimodalDataset` and ``docs/data.md``.
"""

from pyro_mm.data.base import MultimodalDataset
from pyro_mm.data.captions import VOCAB, CaptionedDigits, Vocabulary, parse_digit
from pyro_mm.data.mnist import MNIST, load_mnist
from pyro_mm.data.mnist_label import MNISTLabel
from pyro_mm.data.observation import MissingAtRandom, PairedCount, PairedFraction
from pyro_mm.data.polymnist import PolyMNIST, TranslatedPolyMNIST
from pyro_mm.data.preview import preview
from pyro_mm.data.syndigits import MNISTSynDigits

__all__ = [
    "MultimodalDataset",
    "MNIST",
    "MNISTLabel",
    "load_mnist",
    "PolyMNIST",
    "TranslatedPolyMNIST",
    "MNISTSynDigits",
    "CaptionedDigits",
    "Vocabulary",
    "VOCAB",
    "parse_digit",
    "PairedFraction",
    "PairedCount",
    "MissingAtRandom",
    "preview",
]
