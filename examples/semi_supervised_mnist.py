"""Semi-supervised MNIST: your own Pyro model of an image and its label, trained with pyro_mm's
guides and objectives under plain ``pyro.infer.SVI``, beside Table 1 of Pyro's semi-supervised VAE
tutorial.

The image x and its digit y are two modalities. The model is written here in plain Pyro — a
standard-normal latent, the image's Bernoulli likelihood and the label's categorical one, each
masked where the batch hides it:

.. math:: p(z)\\; p_\\theta(x \\mid z)^{o_x}\\; p_\\psi(y \\mid z)^{o_y}, \\qquad z \\sim \\mathcal N(0, I).

Only ``N`` training images (600, say: 60 per digit, ``PairedCount(N, balanced=True)``) show their
label; the other 59 400 show the image alone. pyro_mm supplies the rest:

* **MEME** (``TraceMEME_ELBO``, ``MutualSupervisionGuide``): for a labelled image the label's
  encoder q(z | y) is the conditional prior of the image's posterior and the classifier term
  λ log q̂(y | x), q̂(y | x) = mean over draws z ~ q(z | x) of p_ψ(y | z), trains the label's
  decoder from the image's posterior; an unlabelled image's prior is the mixture of q(z | u_i) over
  learnable soft labels u_i (pseudo-samples). For that the model also holds the encoders (shared
  with the guide) and the pseudo-samples (:class:`ImageLabelModelWithConditionalPriors`), and
  :func:`pyro_mm.infer.initialise` sets the pseudo-samples from the labelled pairs before the
  first step.
* **MMVAE** (``TraceMixture_ELBO(density="mixture")``, ``MixtureOfExpertsGuide``): for a labelled
  image one stratum draws z ~ q(z | x) and scores both x and y, the other z ~ q(z | y); an
  unlabelled image gets the plain VAE bound of its image.

Every step's batch holds ``batch_size`` images without a label and ``labelled_batch`` labelled
pairs drawn from the N (the labelled images are oversampled, as Pyro's tutorial interleaves a
labelled batch with the unlabelled ones).

**The measure**: the accuracy of the label predicted from the image alone on the 10 000 MNIST test
images — the image expert q(z | x) of the guide, the label's decoder at its mean, argmax
(``accuracy``); and the posterior predictive, the argmax of the mean of p_ψ(y | z) over 10 draws
z ~ q(z | x) (``accuracy_predictive``). Each cell also records the accuracy on the first 1 000
test images at ten steps spaced by factors of two, ``steps / 2**k`` (its learning curve; nothing
is selected by it).

The grid runs through pyro_mm's experiment machinery (:mod:`pyro_mm.experiments`): every finished
cell leaves a record (``--results docs/results`` keeps it in
``docs/results/semi-supervised/cells/``; a cell whose record is there is not trained again),
``--jobs`` trains cells side by side, and an interrupted cell resumes from its checkpoint::

    python examples/semi_supervised_mnist.py --quick                 # minutes: 600 labels, 300 steps
    python examples/semi_supervised_mnist.py --results docs/results --jobs 2 --threads 2   # the grid
    python examples/semi_supervised_mnist.py --results docs/results --table-only \\
        --out docs/results/semi-supervised                            # its table, from the records

The grid: 600 labels with MEME and MMVAE, 3 seeds (three labelled subsets and initialisations);
MEME at 100 and at 3 000 labels, one seed. ``--small`` runs a few steps on a few images (the tests).
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Dict, List, Optional, Sequence

import pyro
import pyro.distributions as dist
import torch
from pyro import poutine
from pyro.infer import SVI
from pyro.nn import PyroModule
from torch import nn

from pyro_mm.data import PairedCount
from pyro_mm.experiments import run_experiment
from pyro_mm.experiments.experiment import Experiment
from pyro_mm.experiments.grid import Cell, mean_sd
from pyro_mm.experiments.report import frame_axis, method_legend, method_style, save_figure, spread, subplots
from pyro_mm.guides import MixtureOfExpertsGuide, MutualSupervisionGuide
from pyro_mm.infer import TraceMEME_ELBO, TraceMixture_ELBO, initialise
from pyro_mm.likelihoods import Categorical
from pyro_mm.modality import Modality, decode
from pyro_mm.nets import LabelEncoder, MLPDecoder, MLPEncoder
from pyro_mm.precision import float32_precision

NUM_CLASSES = 10
DATASET = "mnist-label"
#: Pyro's semi-supervised VAE tutorial, Table 1 (mean test accuracy over five labelled subsets):
#: labels -> variant -> accuracy
TUTORIAL = {
    100: {"m2": 0.9319, "enumerated": 0.2254, "classifier": 0.7712},
    600: {"m2": 0.9437, "enumerated": 0.6939, "classifier": 0.8716},
    1000: {"m2": 0.9487, "enumerated": 0.7562, "classifier": 0.8863},
    3000: {"m2": 0.9582, "enumerated": 0.8932, "classifier": 0.9108},
}
TUTORIAL_ROWS = {"m2": "Pyro tutorial: M2, label enumerated + auxiliary classifier (Kingma et al. 2014)",
                 "enumerated": "Pyro tutorial: label enumerated, no auxiliary classifier",
                 "classifier": "Pyro tutorial: a classifier trained on the labelled images alone"}
#: the goal at 600 labels
GOAL = 0.90


# --- the user's model ------------------------------------------------------------------------------
def bernoulli(logits):
    """The image's likelihood: independent Bernoulli pixels (grey levels in [0, 1] are read as
    the usual binary cross-entropy, hence ``validate_args=False``)."""
    return dist.Bernoulli(logits=logits, validate_args=False).to_event(3)


def categorical(logits):
    """The label's likelihood: one of ten digits."""
    return dist.Categorical(logits=logits)


class ImageLabelModel(PyroModule):
    """p(z) p_θ(x | z)^{o_x} p_ψ(y | z)^{o_y}: the user's own Pyro model.

    pyro_mm's contract (docs/extending.md): one latent site (``"z"``) and one observed site per
    modality named after it, all inside ``pyro.plate("data", B, dim=-1)``, each modality's site
    under ``poutine.mask(mask=batch.observed(name))``. Calling the decoders through
    :func:`pyro_mm.modality.decode` is optional; it lets the objectives decode a modality only
    where they use it (MEME scores the image at six draws of the labelled samples only).

    :param label_scale: multiplies log p_ψ(y | z), a few nats, against the image's hundreds.
    """

    names = ("image", "label")

    def __init__(self, image_decoder: nn.Module, classifier: nn.Module, z_dim: int, label_scale: float = 1.0):
        super().__init__()
        self.image_decoder = image_decoder
        self.classifier = classifier
        self.label_scale = float(label_scale)
        self.register_buffer("prior_loc", torch.zeros(z_dim))

    def forward(self, batch):
        image_decoder, classifier = self.image_decoder, self.classifier  # read once per call
        with pyro.plate("data", batch.batch_size, dim=-1):
            z = pyro.sample("z", dist.Normal(self.prior_loc, 1.0).to_event(1))
            with poutine.mask(mask=batch.observed("image")):
                pyro.sample("image", decode("image", image_decoder, z, bernoulli), obs=batch["image"])
            with poutine.mask(mask=batch.observed("label")), poutine.scale(scale=self.label_scale):
                pyro.sample("label", decode("label", classifier, z, categorical), obs=batch["label"])
        return z


class ImageLabelModelWithConditionalPriors(ImageLabelModel):
    """The same model, plus what MEME's objective reads from it (a
    :class:`~pyro_mm.protocols.ConditionalPriorModel`): ``pseudo_experts(name)``, the encoder of
    modality ``name`` — the guide's own, shared — at N learnable pseudo-samples, the prior of a
    sample where ``name`` is missing. Here that is the label: an unlabelled image's prior is the
    mixture of q(z | u_i) over N soft labels u_i (stored as logits).

    The pseudo-samples start from data: the model is a :class:`~pyro_mm.protocols.DataInitialised`
    (``initialised``, ``initialise(batch)``), so :func:`pyro_mm.infer.initialise` sets them, once,
    before the first step (and a resumed model, ``initialised`` in its saved state, is left alone).
    """

    def __init__(self, image: Modality, label: Modality, z_dim: int, label_scale: float = 1.0,
                 pseudo_samples: int = 64):
        super().__init__(image.decoder, label.decoder, z_dim, label_scale)
        self.encoders = nn.ModuleDict({"image": image.encoder, "label": label.encoder})  # the guide's
        self.pseudo_image = nn.Parameter(torch.zeros(pseudo_samples, *image.event_shape))  # logits of grey levels
        self.pseudo_label = nn.Parameter(torch.zeros(pseudo_samples, NUM_CLASSES))  # logits of soft labels
        self.initialised = False
        self.initialisation_size = 4 * pseudo_samples  # samples initialise() is shown

    def initialise(self, batch) -> None:
        """The pseudo-samples <- the observed entries of ``batch`` (cycled where there are fewer)."""
        N = self.pseudo_label.shape[0]
        with torch.no_grad():
            for name, parameter, to_logits in (
                    ("image", self.pseudo_image, lambda x: torch.logit(x.clamp(1e-3, 1 - 1e-3))),
                    ("label", self.pseudo_label, lambda y: 4.0 * nn.functional.one_hot(y, NUM_CLASSES))):
                rows = batch[name][batch.observed(name)]
                if len(rows):
                    parameter.copy_(to_logits(rows[torch.arange(N) % len(rows)]))
        self.initialised = True

    def get_extra_state(self):
        return {"initialised": self.initialised}

    def set_extra_state(self, state) -> None:
        self.initialised = bool(state["initialised"])

    def pseudo_experts(self, name: str):
        encoders = self.encoders
        if name == "image":
            return encoders["image"](torch.sigmoid(self.pseudo_image))
        return encoders["label"](self.pseudo_label.softmax(-1))


def image_and_label(z_dim: int, hidden: int = 512):
    """The two modalities with pyro_mm's networks: an MLP encoder and decoder for the image, a
    one-hot MLP encoder (:class:`~pyro_mm.nets.LabelEncoder`) and an MLP classifier to the ten
    logits for the label."""
    image = Modality("image", (1, 28, 28), MLPEncoder((1, 28, 28), z_dim, (hidden,)),
                     MLPDecoder(z_dim, (1, 28, 28), (hidden,)), "bernoulli")
    label = Modality("label", (), LabelEncoder(NUM_CLASSES, z_dim, (hidden,)),
                     MLPDecoder(z_dim, (NUM_CLASSES,), (hidden,)), Categorical(NUM_CLASSES))
    return image, label


def meme(z_dim, label_scale, num_particles=5, pseudo_samples=64, classifier_weight=10.0, hidden=512):
    """MEME: the user's model with conditional priors, pyro_mm's MEME guide and objective."""
    image, label = image_and_label(z_dim, hidden)
    model = ImageLabelModelWithConditionalPriors(image, label, z_dim, label_scale, pseudo_samples)
    return model, MutualSupervisionGuide([image, label]), TraceMEME_ELBO(num_particles=num_particles,
                                                                          classifier_weight=classifier_weight)


def mmvae(z_dim, label_scale, num_particles=1, estimator="iwae", hidden=512):
    """MMVAE: the user's plain model, pyro_mm's mixture-of-experts guide and its mixture bound."""
    image, label = image_and_label(z_dim, hidden)
    model = ImageLabelModel(image.decoder, label.decoder, z_dim, label_scale)
    return model, MixtureOfExpertsGuide([image, label]), TraceMixture_ELBO(num_particles=num_particles,
                                                                            estimator=estimator, density="mixture")


OBJECTIVES = {"meme": meme, "mmvae": mmvae}


# --- training under plain SVI ----------------------------------------------------------------------
class SemiSupervisedSVI:
    """A model, a guide and an objective trained by plain :class:`pyro.infer.SVI` on batches of
    ``batch_size`` unlabelled images and ``labelled_batch`` labelled pairs.

    :ivar step_losses: the loss per sample of every step. :ivar curve: ``[[step, accuracy], ...]``
        on the curve's images (if any).
    """

    def __init__(self, model, guide, elbo, train, batch_size=128, labelled_batch=32, lr=1e-3, seed=0,
                 curve_images=None, curve_points=10):
        """:param curve_images: a batch whose accuracy is recorded at ``curve_points`` steps spaced
        by factors of two (``steps / 2**k``), for the learning curve."""
        self.model, self.guide, self.elbo, self.train_set = model, guide, elbo, train
        labelled = train.masks[:, 1]
        self.labelled = labelled.nonzero().squeeze(-1)
        self.unlabelled = (~labelled).nonzero().squeeze(-1)
        if not len(self.labelled):
            raise ValueError("no training image shows its label")
        self.batch_size, self.labelled_batch, self.lr, self.seed = batch_size, labelled_batch, lr, seed
        self.curve_images, self.curve_points = curve_images, curve_points
        self.step_losses: List[float] = []
        self.curve: List[List[float]] = []

    def eval(self):
        self.model.eval()
        self.guide.eval()
        return self

    def next_batch(self, generator: torch.Generator):
        """``labelled_batch`` labelled pairs and ``batch_size`` unlabelled images, drawn at random."""
        parts = [self.labelled[torch.randint(len(self.labelled), (self.labelled_batch,), generator=generator)]]
        if len(self.unlabelled) and self.batch_size:
            parts.append(self.unlabelled[torch.randint(len(self.unlabelled), (self.batch_size,), generator=generator)])
        return self.train_set.batch(torch.cat(parts))

    def _svi(self):
        pyro.clear_param_store()  # PyroModules read stale parameters of the same names from the store
        return SVI(self.model, self.guide, pyro.optim.Adam({"lr": self.lr}), loss=self.elbo)

    def fit(self, steps: int, checkpoint: Optional[Path] = None, checkpoint_every: int = 0, callback=None,
            precision: str = "highest") -> "SemiSupervisedSVI":
        """Train to ``steps`` steps in all, resuming ``checkpoint`` where it exists and writing it
        every ``checkpoint_every`` steps; ``callback(record)`` after every step (``record.step``)."""
        svi, generator, start = self._svi(), torch.Generator().manual_seed(self.seed), 0
        pyro.set_rng_seed(self.seed)
        if checkpoint is not None and Path(checkpoint).is_file():
            start = self._load(Path(checkpoint), svi, generator)
        # the one call a plain-SVI user makes before the first step: MEME's pseudo-samples <- the labelled
        # pairs (a no-op for MMVAE, and for a model resumed from its checkpoint)
        initialise(self.model, self.guide, self.train_set.batch(self.labelled), seed=self.seed)
        curve_steps = {max(round(steps / 2 ** k), 1) for k in range(self.curve_points)}
        with float32_precision(precision):
            for step in range(start + 1, steps + 1):
                batch = self.next_batch(generator)
                loss = svi.step(batch) / batch.batch_size
                if not math.isfinite(loss):
                    raise FloatingPointError(f"step {step}: the loss is {loss}")
                self.step_losses.append(loss)
                if self.curve_images is not None and step in curve_steps:
                    self.curve.append([step, self.accuracy(self.curve_images)])
                if checkpoint is not None and checkpoint_every and (step % checkpoint_every == 0 or step == steps):
                    self._save(Path(checkpoint), step, svi, generator)
                if callback is not None:
                    callback(SimpleNamespace(step=step, loss=loss))
        return self

    def _save(self, path: Path, step: int, svi, generator) -> None:
        state = {"step": step, "model": self.model.state_dict(), "guide": self.guide.state_dict(),
                 "optim": svi.optim.get_state(), "rng": torch.get_rng_state(), "generator": generator.get_state(),
                 "losses": self.step_losses, "curve": self.curve}
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        torch.save(state, tmp)
        os.replace(tmp, path)

    def _load(self, path: Path, svi, generator) -> int:
        state = torch.load(path, weights_only=False)
        self.model.load_state_dict(state["model"])
        self.guide.load_state_dict(state["guide"])
        svi.optim.set_state(state["optim"])
        torch.set_rng_state(state["rng"])
        generator.set_state(state["generator"])
        self.step_losses, self.curve = list(state["losses"]), [list(p) for p in state["curve"]]
        return int(state["step"])

    @torch.no_grad()
    def predict(self, images: torch.Tensor, draws: int = 0, generator: Optional[torch.Generator] = None):
        """The digit of each image ``[B, 1, 28, 28]`` from the image alone: q(z | x) from the guide's
        image expert, then the label's decoder at its mean (``draws=0``) or the mean of
        p_ψ(y | z) over ``draws`` draws z ~ q(z | x) (the posterior predictive)."""
        loc, scale = self.guide.encoders["image"](images)
        classifier = self.model.classifier
        if not draws:
            return classifier(loc).argmax(-1)
        noise = torch.randn((draws, *loc.shape), generator=generator, dtype=loc.dtype)
        z = loc + scale * noise
        return classifier(z.reshape(-1, z.shape[-1])).softmax(-1).reshape(draws, *loc.shape[:-1], -1).mean(0).argmax(-1)

    def accuracy(self, test, draws: int = 0, seed: int = 0, chunk: int = 2000) -> float:
        """The fraction of ``test`` (a batch with ``"image"`` and ``"label"``) predicted right."""
        generator = torch.Generator().manual_seed(seed)
        right = 0
        for start in range(0, test.batch_size, chunk):
            images, labels = test["image"][start:start + chunk], test["label"][start:start + chunk]
            right += int((self.predict(images, draws, generator) == labels).sum())
        return right / test.batch_size


# --- the grid --------------------------------------------------------------------------------------
class SemiSupervisedMNIST(Experiment):
    """The semi-supervised benchmark as a grid of pyro_mm's experiment machinery: its cells train a
    :class:`SemiSupervisedSVI` (the hooks :meth:`fit` and :meth:`seconds_per_step`) and are judged
    by the label accuracy alone (no judging classifiers)."""

    name = "semi-supervised"
    title = "Semi-supervised MNIST: the label predicted from the image, with your own Pyro model under plain SVI"
    claim = (f"with 600 labels, MEME under plain SVI reaches a test accuracy of at least {GOAL} within about 20 "
             "minutes of one CPU thread (Pyro's M2: 0.9437)")
    command = "python examples/semi_supervised_mnist.py"
    evaluation_samples = ("test_samples",)
    #: images the evaluation reads at most (the duration estimate lowers it while timing)
    test_samples = 10_000
    #: test images of each cell's learning curve
    curve_samples = 1000
    z_dim, batch_size, labelled_batch, lr = 16, 128, 32, 1e-3
    #: each objective's options (``label_scale`` is the model's)
    options = {"meme": {"num_particles": 5, "pseudo_samples": 64, "classifier_weight": 10.0, "label_scale": 50.0},
               "mmvae": {"num_particles": 1, "estimator": "iwae", "label_scale": 50.0}}
    #: the full grid: (objective, labels, seeds: "all" or 1) and steps per objective
    grid = (("meme", 600, "all"), ("mmvae", 600, "all"), ("meme", 100, 1), ("meme", 3000, 1))
    #: the steps that fit in about 17 minutes of one thread here with another job beside it (a step of MEME:
    #: 40-50 ms, of MMVAE: 22-27 ms; docs/results/semi-supervised.md), within the budget of 20
    full_steps = {"meme": 20_000, "mmvae": 36_000}
    #: the quick setting: 600 labels, both objectives, one seed, few steps, 1 000 test images
    quick_steps, quick_test_samples = 300, 1000

    def __init__(self, size=None, train_size=None):
        super().__init__(size)
        self.train_size = train_size

    def describe(self, quick: bool, seeds: int) -> str:
        if quick:
            return (f"quick: MEME and MMVAE at 600 labels, {self.quick_steps} steps, seed 0, accuracy on the first "
                    f"{self.quick_test_samples} test images")
        steps = ", ".join(f"{o} {s} steps" for o, s in self.full_steps.items())
        return (f"full: 600 labels with MEME and MMVAE over {seeds} seed(s), MEME at 100 and 3000 labels over one; "
                f"{steps}; accuracy on the 10 000 test images")

    def cells(self, quick: bool, seeds: int) -> List[Cell]:
        rows = ((("meme", 600, 1), ("mmvae", 600, 1)) if quick else self.grid)
        data = {"test_samples": self.quick_test_samples} if quick else {}
        if self.train_size is not None:
            data["train_size"] = self.train_size
        return [Cell.make(objective, DATASET, seed, self.quick_steps if quick else self.full_steps[objective],
                          options={**self.options[objective], "labelled_batch": self.labelled_batch},
                          data={"labelled": labels, **data}, labels={"labelled": labels}, z_dim=self.z_dim,
                          batch_size=self.batch_size, lr=self.lr)
                for seed in range(seeds) for objective, labels, count in rows if count == "all" or seed < count]

    # the data: MNIST with its labels, the label shown for `labelled` training images (seed: the cell's)
    def _split(self, cell: Cell, split: str):
        size = cell.data_values.get("train_size") if split == "train" else None
        return self.data.dataset(DATASET, split, size=size)

    def build(self, cell: Cell):
        options = cell.option_values
        labelled_batch = options.pop("labelled_batch")
        model, guide, elbo = OBJECTIVES[cell.method](cell.z_dim, **options)
        train = self._split(cell, "train").with_observation(
            PairedCount(cell.data_values["labelled"], scheme="s", seed=cell.seed, balanced=True))
        curve = self._test_batch(min(self.curve_samples, self._test_count(cell)))
        return SemiSupervisedSVI(model, guide, elbo, train, cell.batch_size, labelled_batch, cell.lr, cell.seed,
                                 curve_images=curve), train

    def _test_count(self, cell: Cell) -> int:
        return cell.data_values.get("test_samples", 10_000)

    def _test_batch(self, count: int):
        test = self.data.dataset(DATASET, "test")
        return test.batch(torch.arange(min(count, len(test))), complete=True)

    def fit(self, vae, train, cell: Cell, checkpoint: Path, callback) -> None:
        vae.fit(cell.steps, checkpoint, max(cell.steps // 4, 1), callback, cell.precision)

    def seconds_per_step(self, vae, train, cell: Cell, warmup: int, timed: int) -> float:
        with torch.random.fork_rng():
            svi, generator = vae._svi(), torch.Generator().manual_seed(0)
            initialise(vae.model, vae.guide, train.batch(vae.labelled))
            with float32_precision(cell.precision):
                for step in range(warmup + timed):
                    if step == warmup:
                        start = time.perf_counter()
                    svi.step(vae.next_batch(generator))
        pyro.clear_param_store()
        return (time.perf_counter() - start) / timed

    def evaluate(self, vae, cell: Cell) -> dict:
        test = self._test_batch(min(self.test_samples, self._test_count(cell)))
        return {"accuracy": vae.accuracy(test), "accuracy_predictive": vae.accuracy(test, draws=10, seed=cell.seed),
                "test_images": test.batch_size, "curve": vae.curve, "curve_images": len(vae.curve_images["label"])}

    def fingerprint(self, cell: Cell) -> dict:
        """The content hashes of the training and test images (no judges: the label is the judge)."""
        size = cell.data_values.get("train_size")
        return {"data_sha256": {"train": self.data.content_hash(DATASET, "train", size=size),
                                "test": self.data.content_hash(DATASET, "test")},
                "judges_sha256": None}

    def judges_seconds(self, cells: Sequence[Cell], threads: int = 1) -> float:
        return 0.0

    def report(self, records: Sequence[dict], out: Path, seeds: int):
        return report(records, out, seeds, self.title)


def _entry(values: Sequence[float], seeds: int) -> str:
    mean, sd = mean_sd(values)
    return f"{mean:.4f}" + (f" ± {sd:.4f}" if len(values) > 1 else "") + (f" (n={len(values)})" if len(values) != seeds
                                                                           else "")


def report(records: Sequence[dict], out: Path, seeds: int, title: str = ""):
    """The table — ours beside the tutorial's — and the learning curves (``out/figure.png``)."""
    finished = [r for r in records if r["result"] is not None]
    values: Dict[str, Dict[int, Dict[str, List[float]]]] = {}
    for r in finished:
        row = values.setdefault(r["config"]["method"], {}).setdefault(r["config"]["labels"]["labelled"], {})
        for metric in ("accuracy", "accuracy_predictive"):
            row.setdefault(metric, []).append(r["result"][metric])
    full = [r for r in finished if r["config"]["steps"] == SemiSupervisedMNIST.full_steps[r["config"]["method"]]]
    grid = {n for _, n, _ in SemiSupervisedMNIST.grid} if full else {600}  # the full grid's columns, filled or not
    counts = sorted({n for rows in values.values() for n in rows} | grid)
    tests = sorted({r["result"]["test_images"] for r in finished})
    steps = sorted({r["config"]["steps"] for r in finished})
    lines = [f"Test accuracy of the label predicted from the image alone ({', '.join(map(str, tests))} MNIST test "
             f"images; mean ± sd over the seeds, n = the seeds where not {seeds}; "
             f"{', '.join(map(str, steps))} steps). "
             "Ours: the label's decoder at the mean of q(z | image) [posterior predictive, 10 draws, in brackets].", "",
             "| model | " + " | ".join(f"{n} labels" for n in counts) + " |", "|---" + "|---:" * len(counts) + "|"]
    for method, rows in values.items():
        cells = [(f"{_entry(rows[n]['accuracy'], seeds)} [{mean_sd(rows[n]['accuracy_predictive'])[0]:.4f}]"
                  if n in rows else "—") for n in counts]
        lines.append(f"| **{method.upper()}** (ours, plain SVI) | " + " | ".join(cells) + " |")
    for key, label in TUTORIAL_ROWS.items():
        lines.append(f"| {label} | " + " | ".join(f"{TUTORIAL[n][key]:.4f}" if n in TUTORIAL else "—" for n in counts)
                     + " |")
    goal = [r for r in finished if r["config"]["method"] == "meme" and r["config"]["labels"]["labelled"] == 600]
    if goal:
        mean, full = mean_sd([r["result"]["accuracy"] for r in goal])[0], SemiSupervisedMNIST.full_steps["meme"]
        if all(r["config"]["steps"] == full for r in goal) and goal[0]["result"]["test_images"] == 10_000:
            verdict = "met" if mean >= GOAL else "missed"
            line = (f"Goal: MEME ≥ {GOAL} at 600 labels — {verdict} ({mean:.4f})." if len(goal) >= seeds else
                    f"Goal (MEME ≥ {GOAL} at 600 labels): {len(goal)} of {seeds} seeds finished, {mean:.4f} so far; "
                    "judged once every seed is.")
            lines += ["", line]
        else:
            lines += ["", f"Goal (MEME ≥ {GOAL} at 600 labels): not judged here — it is judged on cells of {full} "
                      f"steps on the 10 000 test images."]
    diverged = [f"{r['config']['method']} {r['config']['labels']['labelled']} labels seed {r['config']['seed']}"
                for r in records if r["result"] is None]
    if diverged:
        lines += ["", f"Diverged (a non-finite loss): {'; '.join(diverged)}."]
    table = {m: {str(n): v for n, v in rows.items()} for m, rows in values.items()}
    if finished:
        learning_curves(finished, out / "figure.png", title)
    return "\n".join(lines), table


def learning_curves(records: Sequence[dict], path: Path, title: str = "") -> Path:
    """One panel per number of labels: each objective's accuracy on the curve images against the
    training step (log scale), mean ± sd over the seeds."""
    from matplotlib.ticker import FuncFormatter

    counts = sorted({r["config"]["labels"]["labelled"] for r in records})
    fig, axes = subplots(len(counts), 4.2, 3.4)
    handles, seeds = {}, []
    for ax, n in zip(axes, counts):
        for method in dict.fromkeys(r["config"]["method"] for r in records):
            points: Dict[int, List[float]] = {}
            for r in records:
                if r["config"]["method"] == method and r["config"]["labels"]["labelled"] == n:
                    for step, accuracy in r["result"]["curve"]:
                        points.setdefault(int(step), []).append(accuracy)
            if not points:
                continue
            xs = sorted(points)
            summary = [(*mean_sd(points[x]), len(points[x])) for x in xs]
            handles.setdefault(method, ax.errorbar(xs, [m for m, _, _ in summary], yerr=spread(summary), capsize=3,
                                                   label=method, **method_style(method)))
            seeds += [k for _, _, k in summary]
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}"))
        ax.set_title(f"{n} labels", fontsize=9)
        ax.set_xlabel("training step")
        ax.set_ylabel(f"test accuracy ({records[0]['result']['curve_images']} images)")
        frame_axis(ax, "y", 0.1, 0.1)
        ax.grid(alpha=0.3)
    method_legend(axes[0], handles, seeds, outside=True)
    return save_figure(fig, path, title)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="600 labels, MEME and MMVAE, 300 steps, 1 000 test images")
    parser.add_argument("--small", action="store_true", help="seconds: a few steps on a few images (the tests)")
    parser.add_argument("--seeds", type=int, default=None, help="seeds of the 600-label cells (default 3; quick 1)")
    parser.add_argument("--out", type=Path, default=None,
                        help="output directory (default runs/reproduce/semi-supervised[-quick])")
    parser.add_argument("--results", type=Path, default=None, help="a results store, e.g. docs/results")
    parser.add_argument("--jobs", type=int, default=1, help="cells trained side by side")
    parser.add_argument("--threads", type=int, default=None, help="torch threads in all, split between the jobs")
    parser.add_argument("--table-only", action="store_true", help="train nothing: the table of the records")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    experiment = SemiSupervisedMNIST()
    if args.small:  # a few steps on 1 000 training images, into a temporary directory unless --out
        experiment = SemiSupervisedMNIST(train_size=1000)
        experiment.quick_steps, experiment.quick_test_samples, experiment.curve_samples = 4, 50, 50
        args.quick = True
        args.threads = args.threads or 1
    with tempfile.TemporaryDirectory(prefix="semi-supervised-small-") as tmp:
        out = Path(tmp) if args.small and args.out is None else args.out
        return run_experiment(experiment.name, quick=args.quick, seeds=args.seeds, out=out,
                              progress=not args.no_progress, experiment=experiment, results=args.results,
                              jobs=args.jobs, threads=args.threads, table_only=args.table_only)


if __name__ == "__main__":
    main()
