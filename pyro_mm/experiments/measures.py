"""The measurements the experiments take of a trained method, in chunks of test samples.

Each wraps a metric of :mod:`pyro_mm.metrics` around a user object
(:class:`~pyro_mm.multimodal_vae.MultimodalVAE`): cross coherence of its predictions, the linear-probe
accuracy of its posterior means, the Fréchet distance of its generated images in the judging
classifiers' features, and the canonical correlation of an input with its cross-generated partner.
"""

from __future__ import annotations

from typing import Dict, Mapping, Optional, Sequence

import torch

from ..batch import MultimodalBatch
from ..metrics import cross_coherence, joint_coherence, linear_probe_accuracy
from ..metrics.cca import held_out_cca_correlation
from ..metrics.frechet import classifier_features, frechet_distance
from ..metrics.relatedness import expert_posteriors, paired_unpaired_distances

__all__ = ["chunks", "coherence", "joint", "latent_accuracy", "generated", "frechet", "cca", "generative_quality", "relatedness"]

CHUNK = 500


def chunks(batch: MultimodalBatch, size: int = CHUNK):
    return [batch.select(torch.arange(i, min(i + size, len(batch)))) for i in range(0, len(batch), size)]


def _device(vae):
    return vae.device


def coherence(vae, batch: MultimodalBatch, classifiers, subsets: Optional[Sequence[Sequence[str]]] = None):
    """Cross coherence of ``vae``'s predictions (:func:`~pyro_mm.metrics.cross_coherence`)."""
    batch = batch.to(_device(vae))

    def generate(part, given, target):
        return vae.predict(part, given, [target])[target]

    return cross_coherence(generate, chunks(batch), classifiers, vae.names, subsets=subsets)


def joint(vae, classifiers, num: int) -> float:
    """Joint coherence of ``num`` unconditional samples."""
    return joint_coherence(lambda n: vae.generate(n), classifiers, num, batch_size=CHUNK, names=vae.names)


def latent_accuracy(vae, train: MultimodalBatch, test: MultimodalBatch) -> Dict[str, float]:
    """Linear-probe accuracy of the posterior means, jointly and given each modality alone: the
    probe fitted on ``train``'s embeddings, scored on ``test``'s."""
    def embed(batch):
        parts = [vae.encode(c) for c in chunks(batch.to(_device(vae)))]
        return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}

    z_train, z_test = embed(train), embed(test)
    return {k: linear_probe_accuracy(z_train[k], train.labels, z_test[k], test.labels) for k in z_test}


def generated(vae, batch: MultimodalBatch, target: str, given: Optional[Sequence[str]] = None) -> torch.Tensor:
    """Images of ``target``: unconditional (``given=None``: ``len(batch)`` prior samples) or
    predicted from the modalities ``given`` of ``batch``."""
    if given is None:
        return torch.cat([vae.generate(len(c))[target] for c in chunks(batch)])
    return torch.cat([vae.predict(c, list(given), [target])[target] for c in chunks(batch.to(_device(vae)))])


def frechet(classifier, real: torch.Tensor, fake: torch.Tensor) -> float:
    """Fréchet distance between real and generated samples in the classifier's features."""
    return frechet_distance(classifier_features(classifier, real), classifier_features(classifier, fake))


def cca(vae, batch: MultimodalBatch, classifiers: Mapping[str, torch.nn.Module], source: str, target: str,
        k: int = 5) -> float:
    """Mean of the first ``k`` canonical correlations between ``source`` inputs and their
    cross-generated ``target`` partners, in the judging classifiers' features, measured out of
    sample (:func:`~pyro_mm.metrics.cca.held_out_cca_correlation`)."""
    fake = generated(vae, batch, target, [source])
    return held_out_cca_correlation(classifier_features(classifiers[source], batch[source]),
                           classifier_features(classifiers[target], fake), k=k)


def generative_quality(vae, classifiers, test: MultimodalBatch, target: str) -> Dict[str, float]:
    """Fréchet distances of ``target`` images generated unconditionally and from every other
    modality, and coherence: of ``target`` predicted from all others (leave-one-out, mean over
    every modality as the target) and of unconditional samples (joint coherence). A method that
    models only ``target`` (the unimodal VAE) gets the unconditional distance alone."""
    real = test[target]
    out = {"fd_unconditional": frechet(classifiers[target], real, generated(vae, test, target))}
    others = [n for n in vae.names if n != target]
    if others:
        out["fd_conditional"] = frechet(classifiers[target], real, generated(vae, test, target, others))
        leave_one_out = [tuple(n for n in vae.names if n != t) for t in vae.names]
        out["coherence"] = coherence(vae, test, classifiers, subsets=leave_one_out).mean
        out["joint_coherence"] = joint(vae, classifiers, len(test))
    return out


def relatedness(vae, batch: MultimodalBatch, seed: int = 0) -> Optional[Dict[str, float]]:
    """MEME's relatedness of two modalities' posteriors: the mean 2-Wasserstein distance between
    ``q(z | x_1)`` and ``q(z | x_2)`` of true pairs and of unrelated ones (a partner of another
    class), :func:`~pyro_mm.metrics.relatedness.paired_unpaired_distances`. ``None`` for a guide
    without per-modality posteriors or data without exactly two modalities."""
    if len(vae.names) != 2 or not hasattr(vae.guide, "experts"):
        return None
    loc, scale = expert_posteriors(vae.guide, chunks(batch.to(_device(vae))))
    d = paired_unpaired_distances(loc[:, 0], scale[:, 0], loc[:, 1], scale[:, 1], labels=batch.labels,
                                  generator=torch.Generator().manual_seed(seed))
    return {"paired_w2": float(d.paired.mean()), "unrelated_w2": float(d.unpaired.mean())}
