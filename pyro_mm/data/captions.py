"""Captioned digits: an image-caption pair per MNIST digit (an offline stand-in for CUB).

Each sample draws four attributes uniformly: stroke ``thickness`` (thin / regular / thick:
a raised threshold, the original, or a ``3x3`` dilation of the MNIST strokes), ``slant`` (left /
upright / right: a horizontal shear of +-0.35), digit ``colour`` and ``background`` colour
(from :data:`COLOURS` and :data:`BACKGROUNDS`, pairs too close in luminance are excluded).

* ``"image"``: ``3x28x28`` in ``[0, 1]`` - the MNIST digit with those attributes; its private
  variation is the handwriting.
* ``"text"``: a caption of at most :data:`SEQ_LEN` tokens (``int64`` ids, ``<eos>`` then
  ``<pad>`` = 0 padding) over :data:`VOCAB`. It always names the digit with its number word;
  each attribute is mentioned with probability 0.75, with randomly chosen synonyms, clause
  forms and clause order - its private variation is the wording.

:func:`parse_digit` recovers the digit from any decoded caption.
"""

from __future__ import annotations

from typing import Dict, Iterable, List, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from pyro_mm.data.base import MultimodalDataset, check_size, make_rng, quantise, show_progress, to_tensors
from pyro_mm.data.cache import cache_file, cached_arrays
from pyro_mm.data.checksums import recorded_sha256
from pyro_mm.data.mnist import mnist_split

__all__ = [
    "DIGIT_WORDS",
    "COLOURS",
    "BACKGROUNDS",
    "PAIRS",
    "THICKNESS",
    "SLANT",
    "SEQ_LEN",
    "Vocabulary",
    "VOCAB",
    "parse_digit",
    "make_caption",
    "CaptionedDigits",
]

VERSION = 2
SEQ_LEN = 26  # the longest caption make_caption can build, with <eos>
DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
#: Digit colour name -> RGB in [0, 1].
COLOURS = {
    "red": (0.9, 0.1, 0.1),
    "green": (0.1, 0.8, 0.2),
    "blue": (0.2, 0.3, 1.0),
    "yellow": (1.0, 0.9, 0.1),
    "cyan": (0.1, 0.9, 0.9),
    "magenta": (0.9, 0.1, 0.9),
    "orange": (1.0, 0.55, 0.0),
    "white": (1.0, 1.0, 1.0),
}
#: Background colour name -> RGB in [0, 1].
BACKGROUNDS = {
    "black": (0.0, 0.0, 0.0),
    "gray": (0.5, 0.5, 0.5),
    "navy": (0.0, 0.0, 0.45),
    "brown": (0.45, 0.25, 0.1),
    "beige": (0.95, 0.9, 0.75),
}
THICKNESS = ("thin", "regular", "thick")
SLANT = ("left", "upright", "right")
_SHEAR = {"left": -0.35, "upright": 0.0, "right": 0.35}

_THICK_ADJ = {
    "thin": ("thin", "light", "fine"),
    "regular": ("regular", "medium", "normal"),
    "thick": ("thick", "bold", "heavy"),
}
_THICK_CLAUSE = ("with {} strokes", "drawn with a {} pen", "in a {} hand")
_SLANT_CLAUSE = {
    "left": ("leaning left", "slanted to the left", "tilted to the left"),
    "upright": ("standing upright", "written straight", "with no slant"),
    "right": ("leaning right", "slanted to the right", "tilted to the right"),
}
_BG_CLAUSE = ("on a {} background", "over {}", "against a {} backdrop", "with {} behind it")
_OPENING = ("", "the digit", "here is", "this shows", "an image of", "a picture of")
_JOIN = (",", "and", ",")


def _luminance(rgb) -> float:
    return 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]


#: The (colour, background) pairs used: distinct enough in luminance to read the digit.
PAIRS = tuple(
    (c, b)
    for c in COLOURS
    for b in BACKGROUNDS
    if abs(_luminance(COLOURS[c]) - _luminance(BACKGROUNDS[b])) >= 0.2
)


class Vocabulary:
    """A fixed word list with ``<pad>`` (id 0), ``<unk>`` (1) and ``<eos>`` (2).

    :meth:`encode` splits a string on whitespace, maps unknown words to ``<unk>``, appends
    ``<eos>`` and pads with ``<pad>`` to ``length``; :meth:`decode` reverses it (stopping at
    ``<eos>``, dropping padding).
    """

    PAD, UNK, EOS = "<pad>", "<unk>", "<eos>"

    def __init__(self, words: Iterable[str]):
        specials = (self.PAD, self.UNK, self.EOS)
        self.itos: List[str] = list(specials) + sorted(set(words) - set(specials))
        self.stoi: Dict[str, int] = {w: i for i, w in enumerate(self.itos)}
        self.pad_id, self.unk_id, self.eos_id = 0, 1, 2

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, word: str) -> bool:
        return word in self.stoi

    def encode(self, text: str, length: Optional[int] = None) -> List[int]:
        ids = [self.stoi.get(w, self.unk_id) for w in text.split()] + [self.eos_id]
        if length is not None:
            if len(ids) > length:
                raise ValueError(
                    f"text of {len(ids)} tokens (with <eos>) does not fit length {length}: {text!r}"
                )
            ids += [self.pad_id] * (length - len(ids))
        return ids

    def decode(self, ids: Sequence[int]) -> str:
        words = []
        for i in ids:
            i = int(i)
            if i == self.eos_id:
                break
            if i != self.pad_id:
                words.append(self.itos[i] if 0 <= i < len(self.itos) else self.UNK)
        return " ".join(words)

    def __repr__(self) -> str:
        return f"Vocabulary({len(self)} tokens)"


def _all_words() -> set:
    phrases = list(DIGIT_WORDS) + list(COLOURS) + list(BACKGROUNDS) + ["a", "an"]
    phrases += [w for ws in _THICK_ADJ.values() for w in ws] + list(_THICK_CLAUSE)
    phrases += [w for ws in _SLANT_CLAUSE.values() for w in ws] + list(_BG_CLAUSE)
    phrases += list(_OPENING) + list(_JOIN) + ["in", "ink", "."]
    return {w for p in phrases for w in p.replace("{}", " ").split()}


#: The captions' vocabulary.
VOCAB = Vocabulary(_all_words())


def parse_digit(text: str) -> int:
    """The digit named in a caption: its single number word (a clear error otherwise)."""
    found = {DIGIT_WORDS.index(w) for w in text.split() if w in DIGIT_WORDS}
    if len(found) != 1:
        raise ValueError(f"caption names {len(found)} different digits, expected one: {text!r}")
    return found.pop()


def make_caption(
    digit: int, thickness: str, slant: str, colour: str, background: str, rng: np.random.Generator
) -> str:
    """One random wording describing the digit and (each with prob. 0.75) its attributes."""
    say = rng.random(4) < 0.75  # thickness, slant, colour, background
    pick = lambda options: options[rng.integers(len(options))]  # noqa: E731
    noun = [DIGIT_WORDS[digit]]
    clauses = []
    if say[2]:
        if rng.random() < 0.5:
            noun.insert(0, colour)
        else:
            clauses.append(f"in {colour} ink")
    if say[0]:
        word = pick(_THICK_ADJ[thickness])
        if rng.random() < 0.5:
            noun.insert(0, word)
        else:
            clauses.append(pick(_THICK_CLAUSE).format(word))
    if say[1]:
        clauses.append(pick(_SLANT_CLAUSE[slant]))
    if say[3]:
        clauses.append(pick(_BG_CLAUSE).format(background))
    order = rng.permutation(len(clauses))
    opening = pick(_OPENING)
    if opening == "the digit" and len(noun) > 1:  # "the digit" only before the bare number word
        opening = ""
    article = "an" if noun[0][0] in "aeiou" else "a"
    head = " ".join(noun) if opening == "the digit" else f"{article} {' '.join(noun)}"
    words = [opening, head] if opening else [head]
    for k, i in enumerate(order):
        if k:
            words.append(pick(_JOIN))
        words.append(clauses[i])
    return " ".join(words) + " ."


def _style_images(digits: np.ndarray, thick: np.ndarray, slant: np.ndarray, fg, bg) -> np.ndarray:
    """Colour ``[n, 28, 28]`` MNIST digits: stroke thickness, shear slant, colours -> uint8."""
    x = torch.from_numpy(digits).double().div(255)[:, None]
    dilated = F.max_pool2d(x, 3, stride=1, padding=1)
    thinned = ((x - 0.6) / 0.4).clamp(0, 1)
    t = torch.from_numpy(thick)[:, None, None, None]
    x = torch.where(t == 0, thinned, torch.where(t == 2, dilated, x))
    shear = torch.tensor([_SHEAR[s] for s in SLANT], dtype=x.dtype)[torch.from_numpy(slant)]
    theta = torch.zeros(len(x), 2, 3, dtype=x.dtype)
    theta[:, 0, 0] = theta[:, 1, 1] = 1
    theta[:, 0, 1] = shear
    grid = F.affine_grid(theta, tuple(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, align_corners=False)
    fg = torch.from_numpy(fg).to(x.dtype)[:, :, None, None]
    bg = torch.from_numpy(bg).to(x.dtype)[:, :, None, None]
    return quantise(bg * (1 - x) + fg * x)


def build_captioned(
    images: np.ndarray, labels: np.ndarray, size: int, rng: np.random.Generator, desc: str
) -> Dict[str, np.ndarray]:
    """Generate ``size`` image-caption pairs from one MNIST split (see the module docstring)."""
    chosen = np.sort(rng.permutation(len(labels))[:size])
    thick = rng.integers(0, len(THICKNESS), size)
    slant = rng.integers(0, len(SLANT), size)
    pair = rng.integers(0, len(PAIRS), size)
    fg = np.array([COLOURS[PAIRS[p][0]] for p in pair], dtype=np.float64)
    bg = np.array([BACKGROUNDS[PAIRS[p][1]] for p in pair], dtype=np.float64)
    text = np.zeros((size, SEQ_LEN), dtype=np.uint8)
    digits = labels[chosen].astype(np.int64)
    for i in tqdm(range(size), desc=desc, unit="caption", leave=False, disable=not show_progress()):
        caption = make_caption(
            int(digits[i]), THICKNESS[thick[i]], SLANT[slant[i]], *PAIRS[pair[i]], rng
        )
        text[i] = VOCAB.encode(caption, SEQ_LEN)
    return {
        "image": _style_images(images[chosen], thick, slant, fg, bg),
        "text": text,
        "labels": digits,
        "mnist_index": chosen,
        "thickness": thick,
        "slant": slant,
        "colour_pair": pair,
    }


class CaptionedDigits(MultimodalDataset):
    """Captioned digits: ``"image"`` ``3x28x28`` (Bernoulli) and ``"text"`` ``[SEQ_LEN]`` ids.

    :param str split: ``"train"`` (60 000 pairs by default) or ``"test"`` (10 000).
    :param int size: number of pairs (default: the whole MNIST split).
    :param int seed: generation seed (same seed -> identical bytes).
    :param root: cache directory. :param source_dir: the user's own MNIST IDX files.
    :param observation: see :class:`~pyro_mm.data.base.MultimodalDataset`.

    Attributes besides the base ones: ``vocab`` (:data:`VOCAB`), ``seq_len``, ``vocab_size``,
    ``mnist_index``, and the drawn attributes ``thickness``, ``slant`` (indices into
    :data:`THICKNESS`, :data:`SLANT`) and ``colour_pair`` (index into :data:`PAIRS`).
    """

    vocab = VOCAB
    seq_len = SEQ_LEN
    vocab_size = len(VOCAB)

    def __init__(
        self,
        split: str = "train",
        size: Optional[int] = None,
        seed: int = 0,
        root=None,
        source_dir=None,
        observation=None,
    ):
        images, labels = mnist_split(split, root, source_dir)
        size = check_size(size, len(labels), "CaptionedDigits")
        params = dict(set="captioned_digits", version=VERSION, split=split, size=size, seed=seed)

        def build():
            rng = make_rng(seed, split, "captioned_digits")
            return build_captioned(images, labels, size, rng, f"CaptionedDigits {split}")

        default = size == len(labels) and seed == 0
        self.cache_path = cache_file(f"captioned_digits-{split}", params, root)
        arrays = cached_arrays(self.cache_path, build,
                               recorded_sha256("captioned-digits", split) if default else None,
                               f"CaptionedDigits {split}")
        tensors = to_tensors(arrays)
        super().__init__(
            {"image": tensors["image"], "text": tensors["text"]},
            {"image": "bernoulli", "text": "categorical"},
            tensors["labels"],
            observation=observation,
            num_categories={"text": len(VOCAB)},
        )
        self.split, self.seed = split, seed
        self.mnist_index = tensors["mnist_index"]
        self.thickness = tensors["thickness"]
        self.slant = tensors["slant"]
        self.colour_pair = tensors["colour_pair"]

    def caption(self, i: int) -> str:
        """The decoded caption of sample ``i``."""
        return self.vocab.decode(self._stores["text"][i].tolist())
