"""Per-modality digit classifiers: the judges of coherence and the feature maps of Fréchet distance.

Coherence (Shi et al., 2019, "Variational Mixture-of-Experts Autoencoders for Multi-Modal Deep
Generative Models") classifies generated samples with a classifier trained on *real* data of
the target modality (images also made faint and blurred, :mod:`.judge_augmentation`, so that its
verdict on generated images does not hinge on its seed); the Fréchet distance (Heusel et al., 2017) compares the penultimate-layer
features of real and generated samples. One small network per modality does both:

* :class:`ImageClassifier` for ``C x H x W`` images in ``[0, 1]`` (``1x28x28`` MNIST,
  ``3x28x28`` PolyMNIST and captioned digits, ``3x32x32`` SynDigits): three 3x3 convolution
  blocks ending in a global max-pool (so a translated digit is seen wherever it sits), then a
  fully connected feature layer;
* :class:`TextClassifier` for ``[L]`` ``int64`` token ids (pad id 0): an embedding, two 1-D
  convolutions and a max-pool over the non-pad positions, then a feature layer.

Both map ``x`` to logits ``[N, num_classes]`` with ``forward`` and to features ``[N, F]`` with
``features``. :func:`classifiers_for` trains one per modality of a data set on its training split
(or loads it from the checksum-verified cache of :mod:`pyro_mm.data.cache`) and reports its test
accuracy; :func:`classifiers_training_seconds` estimates how long that training takes where the
cache does not hold them yet, and :func:`judges_sha256` names a set of trained classifiers.

Training is deterministic and bit-identical whatever the process's thread count: it runs on one
torch thread (restored afterwards), from a fixed seed, so the same data, recipe, torch build and
CPU kernels give the same weights — the judges of a results store are the same in every process
that shares it.
"""

from __future__ import annotations

import hashlib
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Dict, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from tqdm.auto import tqdm

from pyro_mm.data.cache import PathLike, cache_file, data_dir, load_arrays, save_arrays
from pyro_mm.metrics.judge_augmentation import degrade
from pyro_mm.options import BATCH_SIZE, real

__all__ = [
    "ARCH_VERSION",
    "ImageClassifier",
    "TextClassifier",
    "make_classifier",
    "train_classifier",
    "classifier_accuracy",
    "dataset_params",
    "classifier_cache_file",
    "classifiers_for",
    "classifiers_training_seconds",
    "judges_sha256",
]

#: Bumped whenever the architectures or the training recipe change (it is part of the cache key;
#: 3: training on one thread; 4: image judges train on faint and blurred images too).
ARCH_VERSION = 4
# generation parameters a data set may expose as attributes (all go into the cache key)
_GENERATION_ATTRS = ("split", "seed", "scale", "backgrounds", "pairings", "fonts", "seq_len")
# rows of the training set whose content is hashed into the cache key
_FINGERPRINT_ROWS = 256
# the training's learning rate and number of classes (defaults of train_classifier)
_LR, _CLASSES = 2e-3, 10
#: a classifier's passes over its training set (fractional ones too; the default of train_classifier)
EPOCHS = real("epochs", 4.0, "passes over the training set, fractional ones too", strict=True)


def _conv_block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU())


class ImageClassifier(nn.Module):
    """CNN for ``C x H x W`` images (``H, W >= 8``): three conv blocks, global max-pool, MLP head.

    :param tuple event_shape: ``(C, H, W)``.
    :param int num_classes: number of classes. :param int width: channels of the first block
        (doubled in each of the next two). :param int feature_dim: size of :meth:`features`.
    """

    def __init__(self, event_shape: Sequence[int], num_classes: int = 10, width: int = 32,
                 feature_dim: int = 128):
        super().__init__()
        event_shape = tuple(int(s) for s in event_shape)
        if len(event_shape) != 3 or min(event_shape[1:]) < 8:
            raise ValueError(f"ImageClassifier needs a C x H x W shape with H, W >= 8, got {event_shape}")
        self.event_shape = event_shape
        c = event_shape[0]
        self.body = nn.Sequential(
            _conv_block(c, width), nn.MaxPool2d(2),
            _conv_block(width, 2 * width), nn.MaxPool2d(2),
            _conv_block(2 * width, 4 * width),
            nn.AdaptiveMaxPool2d(1), nn.Flatten(),
            nn.Linear(4 * width, feature_dim), nn.ReLU(),
        )
        self.head = nn.Linear(feature_dim, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate-layer features ``[N, feature_dim]`` of images ``x`` ``[N, C, H, W]``."""
        if x.dim() != 4 or tuple(x.shape[1:]) != self.event_shape:
            raise ValueError(
                f"expected images of shape [N, {', '.join(map(str, self.event_shape))}], "
                f"got {tuple(x.shape)}"
            )
        return self.body(x.float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``[N, num_classes]``."""
        return self.head(self.features(x))


class TextClassifier(nn.Module):
    """Token-sequence classifier: embedding, two 1-D convolutions, max over non-pad positions.

    :param int vocab_size: number of token ids (id 0 is padding and is ignored).
    :param int seq_len: sequence length ``L``. :param int num_classes: number of classes.
    :param int embed_dim: embedding size. :param int width: convolution channels.
    :param int feature_dim: size of :meth:`features`.
    """

    def __init__(self, vocab_size: int, seq_len: int, num_classes: int = 10, embed_dim: int = 32,
                 width: int = 64, feature_dim: int = 64):
        super().__init__()
        self.vocab_size, self.seq_len = int(vocab_size), int(seq_len)
        self.embed = nn.Embedding(self.vocab_size, embed_dim, padding_idx=0)
        self.conv1 = nn.Conv1d(embed_dim, width, 3, padding=1)
        self.conv2 = nn.Conv1d(width, width, 3, padding=1)
        self.fc = nn.Linear(width, feature_dim)
        self.head = nn.Linear(feature_dim, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate-layer features ``[N, feature_dim]`` of token ids ``x`` ``[N, L]``."""
        if x.dim() != 2 or x.shape[1] != self.seq_len or x.is_floating_point():
            raise ValueError(
                f"expected integer token ids of shape [N, {self.seq_len}], got "
                f"{x.dtype} {tuple(x.shape)}"
            )
        if x.numel() and (int(x.min()) < 0 or int(x.max()) >= self.vocab_size):
            raise ValueError(f"token ids must lie in [0, {self.vocab_size}), got "
                             f"[{int(x.min())}, {int(x.max())}]")
        h = self.embed(x).transpose(1, 2)  # [N, E, L]
        h = F.relu(self.conv2(F.relu(self.conv1(h))))
        pad = (x == 0).unsqueeze(1)  # [N, 1, L]
        h = h.masked_fill(pad, float("-inf")).amax(-1)
        h = torch.where(torch.isfinite(h), h, torch.zeros_like(h))  # all-pad rows
        return F.relu(self.fc(h))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``[N, num_classes]``."""
        return self.head(self.features(x))


def make_classifier(dataset, modality: str, num_classes: int = 10) -> nn.Module:
    """An untrained classifier suited to ``dataset``'s modality ``modality``.

    Image (``"bernoulli"``) modalities of shape ``C x H x W`` get an :class:`ImageClassifier`;
    token (``"categorical"``) modalities need the data set's ``vocab_size`` attribute and get a
    :class:`TextClassifier`.
    """
    if modality not in dataset.names:
        raise KeyError(f"unknown modality {modality!r}; the data set has {list(dataset.names)}")
    shape = dataset.event_shapes[modality]
    if dataset.likelihoods[modality] == "categorical":
        vocab_size = getattr(dataset, "vocab_size", None)
        if vocab_size is None or len(shape) != 1:
            raise ValueError(
                f"modality {modality!r}: a token modality needs shape [L] and a data set with a "
                f"vocab_size attribute, got shape {shape} and vocab_size {vocab_size}"
            )
        return TextClassifier(vocab_size, shape[0], num_classes)
    return ImageClassifier(shape, num_classes)


def _labels(dataset) -> torch.Tensor:
    labels = dataset.labels
    if len(labels) == 0:
        raise ValueError("the data set is empty")
    return labels


@contextmanager
def _one_thread():
    """Run the block on one torch thread (a reduction's order, hence its round-off, depends on the
    thread count), then restore the process's."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _prepare(dataset, modality: str, epochs: float, batch_size: int, lr: float, device, seed: int,
             num_classes: int):
    """The training of :func:`train_classifier` as ``(model, steps, step)``: ``step(i)`` takes
    training step ``i`` of ``steps`` and returns its loss (call it on one thread)."""
    labels = _labels(dataset)
    epochs, batch_size = EPOCHS.validate(epochs), BATCH_SIZE.validate(batch_size)
    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):  # seeded initialisation, caller's RNG untouched
        torch.manual_seed(seed)
        model = make_classifier(dataset, modality, num_classes).to(device)
    n = len(labels)
    total = max(1, round(epochs * n))
    order = torch.cat([torch.randperm(n, generator=generator) for _ in range(-(-total // n))])[:total]
    steps = -(-total // batch_size)
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=lr, total_steps=steps)
    model.train()
    images = isinstance(model, ImageClassifier)

    def step(i: int) -> torch.Tensor:
        rows = order[i * batch_size : (i + 1) * batch_size]
        x = dataset.modality(modality, rows).to(device)
        if images:  # read generated images as well as real ones (judge_augmentation's docstring)
            x = degrade(x, generator)
        loss = F.cross_entropy(model(x), labels[rows].to(device))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
        return loss

    return model, steps, step


def train_classifier(
    dataset,
    modality: str,
    epochs: float = 4.0,
    batch_size: int = 128,
    lr: float = _LR,
    device="cpu",
    seed: int = 0,
    progress: bool = True,
    num_classes: int = _CLASSES,
) -> nn.Module:
    """Train a classifier for ``modality`` on the real samples and labels of ``dataset``.

    Adam with a one-cycle learning-rate schedule minimises the cross entropy over
    ``round(epochs * len(dataset))`` samples drawn in shuffled passes, images made faint and
    blurred at random (:func:`~pyro_mm.metrics.judge_augmentation.degrade`) so that the judge
    reads a VAE's generations as reliably as real images (``epochs`` may be
    fractional, e.g. for MNIST-SynDigits whose ``pairings`` repeat every image). The observation
    mask is ignored: a classifier judges real data, whether or not a model saw it. Training runs
    on one torch thread from ``seed``: the weights do not depend on the process's thread count.

    :returns: the trained classifier, in evaluation mode, on ``device``.
    """
    with _one_thread():
        model, steps, step = _prepare(dataset, modality, epochs, batch_size, lr, device, seed, num_classes)
        with tqdm(total=steps, desc=f"classifier {type(dataset).__name__}/{modality}", unit="batch",
                  disable=not progress, leave=False) as bar:
            _run(steps, step, bar)
    return model.eval()


def _run(steps: int, step, bar, stop: Optional[threading.Event] = None) -> None:
    """Take the ``steps`` training steps of ``step``, advancing ``bar``, until ``stop`` is set."""
    for i in range(steps):
        if stop is not None and stop.is_set():
            return
        loss = step(i)
        bar.update()
        if i % 50 == 0:
            bar.set_postfix(loss=f"{loss.item():.3f}")


def _train_side_by_side(train_set, plan, device, progress: bool) -> Dict[str, nn.Module]:
    """Train the classifiers of ``plan`` (``(modality, training arguments, path)``), each exactly
    as :func:`train_classifier` would — one torch thread, its own seeded generator and model —
    but as many at once as the caller had threads, each in a Python thread of its own (torch
    releases the interpreter lock inside its kernels). The weights are those of training them one
    after another: no computation is shared, and each kernel runs on one thread. An interruption
    of the calling thread (Ctrl-C, SIGTERM) stops every classifier at its next step."""
    workers = max(1, min(len(plan), torch.get_num_threads()))
    stop = threading.Event()
    with _one_thread():
        prepared = {n: _prepare(train_set, n, training["epochs"], training["batch_size"], _LR, device,
                                training["seed"], _CLASSES) for n, training, _ in plan}
        with tqdm(total=sum(steps for _, steps, _ in prepared.values()), unit="batch", leave=False,
                  desc=f"classifiers {type(train_set).__name__}/{'+'.join(prepared)}", disable=not progress) as bar, \
                ThreadPoolExecutor(workers) as pool:
            try:
                list(pool.map(lambda n: _run(prepared[n][1], prepared[n][2], bar, stop), prepared))
            except BaseException:
                stop.set()  # the pool's exit waits for its threads: let them end at their next step
                raise
    return {n: model.eval() for n, (model, _, _) in prepared.items()}


@torch.no_grad()
def classifier_accuracy(classifier: nn.Module, dataset, modality: str, batch_size: int = 1000) -> float:
    """Fraction of ``dataset``'s samples of ``modality`` that ``classifier`` labels correctly."""
    labels = _labels(dataset)
    device = next(classifier.parameters()).device
    correct = 0
    for start in range(0, len(labels), batch_size):
        rows = torch.arange(start, min(start + batch_size, len(labels)))
        x = dataset.modality(modality, rows).to(device)
        correct += int((classifier(x).argmax(-1).cpu() == labels[rows]).sum())
    return correct / len(labels)


def dataset_params(dataset, modality: str) -> dict:
    """What identifies a trained classifier: the data set's class and size, the modality's shape
    and likelihood, the generation parameters the data set exposes (split, seed, scale,
    backgrounds, pairings, fonts, sequence length) and a SHA-256 of the labels and of
    :data:`_FINGERPRINT_ROWS` evenly spaced samples of the modality (so a regenerated set with
    different content never reuses a stale classifier)."""
    labels = _labels(dataset)
    rows = torch.linspace(0, len(labels) - 1, min(_FINGERPRINT_ROWS, len(labels))).long()
    h = hashlib.sha256(labels.numpy().astype(np.int64).tobytes())
    h.update(dataset.modality(modality, rows).numpy().tobytes())
    params = {
        "set": type(dataset).__name__,
        "modality": modality,
        "size": len(labels),
        "event_shape": list(dataset.event_shapes[modality]),
        "likelihood": dataset.likelihoods[modality],
        "fingerprint": h.hexdigest(),
    }
    for attr in _GENERATION_ATTRS:
        if hasattr(dataset, attr):
            value = getattr(dataset, attr)
            params[attr] = list(value) if isinstance(value, (tuple, list)) else value
    return params


def classifier_cache_file(dataset, modality: str, cache_dir: Optional[PathLike] = None, device="cpu",
                          **training) -> Path:
    """The cache path of the classifier of ``modality`` trained on ``dataset`` with the keyword
    arguments ``training``: ``<cache dir>/classifiers/classifier-<set>-<modality>-<hash>.npz``.

    The key holds everything that changes the weights: the data (:func:`dataset_params`), the
    architecture and recipe (:data:`ARCH_VERSION`, one thread), the training arguments, the torch
    version and the kind of device. (The CPU's kernels can change the last bits too; a cache
    shared by different CPUs gives every one of them the judges trained first, which is what a
    shared results store needs.)"""
    params = dict(dataset_params(dataset, modality), arch=ARCH_VERSION, torch=torch.__version__,
                  device=torch.device(device).type, **training)
    root = data_dir(cache_dir) / "classifiers"
    return cache_file(f"classifier-{type(dataset).__name__.lower()}-{modality}", params, root)


def _load(path, model: nn.Module) -> bool:
    """Load weights cached at ``path`` into ``model``; false (with a warning) when unusable."""
    arrays = load_arrays(path)  # warns about a corrupt or truncated file itself
    if arrays is None:
        return False
    try:
        model.load_state_dict({k: torch.from_numpy(v) for k, v in arrays.items()})
    except (RuntimeError, KeyError) as e:
        warnings.warn(f"cached classifier {path} does not fit the architecture ({e}); retraining")
        return False
    return True


def _plan(train_set, test_set, cache_dir, modalities, epochs, batch_size, seed, device):
    """``(modality, training arguments, cache path)`` of every classifier :func:`classifiers_for`
    gives."""
    names = tuple(train_set.names if modalities is None else modalities)
    if not names:
        raise ValueError("no modalities to train classifiers for")
    for n in names:
        if n not in train_set.names or n not in test_set.names:
            raise KeyError(f"modality {n!r} is not in both the training and the test set")
    default_epochs = 4.0 / getattr(train_set, "pairings", 1)
    plan = []
    for n in names:
        if isinstance(epochs, Mapping):
            e = epochs.get(n, default_epochs)
        else:
            e = default_epochs if epochs is None else epochs
        training = dict(epochs=float(e), batch_size=int(batch_size), seed=int(seed))
        plan.append((n, training, classifier_cache_file(train_set, n, cache_dir, device=device, **training)))
    return plan


def classifiers_for(
    train_set,
    test_set,
    cache_dir: Optional[PathLike] = None,
    modalities: Optional[Sequence[str]] = None,
    epochs: Optional[Mapping[str, float] | float] = None,
    batch_size: int = 128,
    device="cpu",
    seed: int = 0,
    progress: bool = True,
) -> Tuple[Dict[str, nn.Module], Dict[str, float]]:
    """One classifier per modality, trained on ``train_set`` (or loaded from the cache), and its
    accuracy on ``test_set``.

    Weights are cached with :func:`pyro_mm.data.cache.save_arrays` (atomic, with a SHA-256 file)
    at :func:`classifier_cache_file`, keyed by the training set (:func:`dataset_params`), the
    modality, the training arguments, the torch version and the device. A missing, corrupt or
    mismatched file is retrained.

    :param cache_dir: cache root (default: ``$PYRO_MM_DATA_DIR`` or ``~/.cache/pyro_mm``).
    :param modalities: which modalities (default: all of ``train_set.names``).
    :param epochs: passes over the training set, one number or a mapping per modality (default:
        4 passes over the *distinct* samples, ``4 / pairings`` for a set that repeats each
        sample ``pairings`` times).
    :returns: ``(classifiers, accuracies)``, dicts keyed by modality; classifiers are in eval mode
        on ``device``.
    """
    plan = _plan(train_set, test_set, cache_dir, modalities, epochs, batch_size, seed, device)
    classifiers, todo = {}, []
    for n, training, path in plan:
        model = make_classifier(train_set, n).to(device)
        if _load(path, model):
            classifiers[n] = model.eval()
        else:
            todo.append((n, training, path))
    if todo:
        start = time.perf_counter()
        trained = _train_side_by_side(train_set, todo, device, progress)
        for n, _, path in todo:
            save_arrays(path, {k: v.detach().cpu().numpy() for k, v in trained[n].state_dict().items()})
        classifiers.update(trained)
        if progress:
            tqdm.write(f"trained {', '.join(path.name for _, _, path in todo)} in {time.perf_counter() - start:.0f} s")
    classifiers = {n: classifiers[n] for n, _, _ in plan}
    return classifiers, {n: classifier_accuracy(model, test_set, n) for n, model in classifiers.items()}


def classifiers_training_seconds(
    train_set,
    test_set,
    cache_dir: Optional[PathLike] = None,
    modalities: Optional[Sequence[str]] = None,
    epochs: Optional[Mapping[str, float] | float] = None,
    batch_size: int = 128,
    device="cpu",
    seed: int = 0,
    timed: int = 3,
    workers: int = 1,
    counted: Optional[set] = None,
) -> float:
    """Seconds :func:`classifiers_for` with the same arguments will spend training: 0 for the
    classifiers its cache holds, and for each other one its number of steps times the duration
    of a step, measured over ``timed`` steps (after one warm-up step). Nothing is cached.

    :param workers: the torch threads :func:`classifiers_for` will have, so many classifiers
        trained at once: the seconds until the last one finishes, each classifier taken up in
        order by the first free thread.
    :param counted: cache paths already counted by an earlier call of the same estimate (another
        set of judges sharing a classifier, e.g. PolyMNIST's m0 at every number of modalities):
        they count 0 here, and this call's are added to it."""
    finish = [0.0] * max(1, min(int(workers), 64))
    for n, training, path in _plan(train_set, test_set, cache_dir, modalities, epochs, batch_size, seed, device):
        if path.is_file() or (counted is not None and path in counted):
            continue
        if counted is not None:
            counted.add(path)
        with _one_thread():
            _, steps, step = _prepare(train_set, n, training["epochs"], training["batch_size"], _LR, device,
                                      training["seed"], _CLASSES)
            step(0)  # warm-up
            timed_steps = range(1, min(steps, 1 + timed))
            start = time.perf_counter()
            for i in timed_steps:
                step(i)
            if timed_steps:
                free = finish.index(min(finish))
                finish[free] += (time.perf_counter() - start) / len(timed_steps) * steps
    return max(finish)


def judges_sha256(classifiers: Mapping[str, nn.Module]) -> str:
    """SHA-256 (hex) naming a set of trained classifiers (judges): over the modalities in sorted
    order, every entry of each one's ``state_dict`` in its order — the entry's name, dtype, shape
    and bytes. Equal weights give equal hashes in every process and on every machine."""
    digest = hashlib.sha256()
    for modality in sorted(classifiers):
        for name, tensor in classifiers[modality].state_dict().items():
            array = np.ascontiguousarray(tensor.detach().cpu().numpy())
            digest.update(f"{modality}.{name}|{array.dtype.str}|{array.shape}|".encode())
            digest.update(array.tobytes())
    return digest.hexdigest()
