"""Captioned digits: every caption decodes to a string naming the digit; the vocabulary."""

import pytest
import torch

from pyro_mm.data.captions import DIGIT_WORDS, SEQ_LEN, VOCAB, CaptionedDigits, parse_digit
from pyro_mm.data.mnist import mnist_split


def test_every_caption_names_its_digit(make, mnist_dir):
    ds = make(CaptionedDigits, split="train", size=3000)
    text = ds.modality("text", slice(None))
    assert text.dtype == torch.int64 and text.shape == (3000, SEQ_LEN)
    assert ds.seq_len == SEQ_LEN and ds.vocab_size == len(VOCAB)
    assert int(text.max()) < ds.vocab_size
    for i in range(len(ds)):
        caption = ds.vocab.decode(text[i].tolist())
        assert parse_digit(caption) == int(ds.labels[i]), caption
    # the label is the MNIST label of the underlying image
    _, labels = mnist_split("train", source_dir=mnist_dir)
    assert (torch.from_numpy(labels).long()[ds.mnist_index] == ds.labels).all()
    # varied wording: many distinct captions per digit
    assert len({ds.caption(i) for i in range(len(ds))}) > 1000


def test_image_side_carries_attributes(make):
    ds = make(CaptionedDigits, split="test", size=200)
    x = ds.modality("image", slice(None))
    assert x.shape == (200, 3, 28, 28)
    assert ds.likelihoods == {"image": "bernoulli", "text": "categorical"}
    thick = x[ds.thickness == 2].std((1, 2, 3)).mean()
    assert thick > 0  # coloured images are not blank


def test_vocabulary_roundtrip_and_errors():
    ids = VOCAB.encode("a thick red seven .", length=10)
    assert len(ids) == 10 and ids[-1] == VOCAB.pad_id and VOCAB.eos_id in ids
    assert VOCAB.decode(ids) == "a thick red seven ."
    assert VOCAB.encode("zebra")[0] == VOCAB.unk_id
    assert VOCAB.decode(VOCAB.encode("zebra")) == "<unk>"
    assert all(w in VOCAB for w in DIGIT_WORDS) and "<pad>" == VOCAB.itos[0]
    with pytest.raises(ValueError, match="does not fit length 3"):
        VOCAB.encode("a thick red seven", length=3)
    with pytest.raises(ValueError, match="2 different digits"):
        parse_digit("a seven and a two")
    with pytest.raises(ValueError, match="0 different digits"):
        parse_digit("a red digit")
