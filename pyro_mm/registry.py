"""The registered methods: one user class per objective, each declared once.

Adding a method is one class here (``method``, ``title``, ``reference``, ``summary``, ``options``
and ``build``) decorated with :func:`~pyro_mm.multimodal_vae.register`, beside its model, guide and
objective files (``docs/extending.md``). Everything else that lists the methods reads
:data:`METHODS`: the list below, :mod:`pyro_mm.api`, ``pyro-mm train``, and the README's method
table with each method's model, guide and objective (``python scripts/generate_docs.py``).

The registered methods:

"""

from __future__ import annotations

from typing import List, Optional

from .checkpoint import MODEL_FORMAT, read_payload
from .guides.joint_encoder import JointEncoderGuide
from .guides.mutual_supervision import MutualSupervisionGuide
from .guides.private_latent import PrivateLatentGuide
from .guides.product_of_experts import ProductOfExpertsGuide
from .guides.subset_mixture import MixtureOfExpertsGuide, MixtureOfProductsGuide
from .guides.unimodal import UnimodalGuide
from .infer.trace_jmvae_elbo import ALPHA as JMVAE_ALPHA
from .infer.trace_jmvae_elbo import TraceJMVAE_ELBO
from .infer.trace_meme_elbo import PRESETS, TraceMEME_ELBO
from .infer.trace_mixture_elbo import TraceMixture_ELBO
from .infer.trace_mmjsd_elbo import TraceMMJSD_ELBO
from .infer.trace_mmvae_plus_elbo import TraceMMVAEPlus_ELBO
from .infer.trace_mvae_elbo import TraceMVAE_ELBO
from .infer.trace_mvtcae_elbo import ALPHA as MVTCAE_ALPHA
from .infer.trace_mvtcae_elbo import TraceMVTCAE_ELBO
from .multimodal_vae import METHODS, MultimodalVAE, register
from .modality import Modality
from .models.mutual_supervision import MutualSupervisionModel
from .models.private_latent import PrivateLatentModel
from .models.shared_latent import SharedLatentModel
from .options import (ANNEALING_STEPS, BETA, CLASSIFIER_WEIGHT, COMBINE, ESTIMATOR, NUM_PARTICLES, NUM_RANDOM_SUBSETS,
                      NUM_SUBSETS, Option, choice, flag, integer)
from .subsets import power_set, singletons


def _modality_name(value) -> str:
    if not isinstance(value, str):
        raise TypeError(value)
    return value


@register
class UnimodalVAE(MultimodalVAE):
    """A VAE on one modality of a multimodal data set (the baseline of the generative-quality gap)."""

    method = "unimodal"
    title = "unimodal VAE"
    reference = "Kingma & Welling, ICLR 2014"
    summary = "one modality's VAE (IWAE with K > 1): the baseline of the generative-quality gap"
    options = (Option("modality", None, "the modality modelled (default: the first)", "a modality name", _modality_name,
                      str, "NAME"),
               NUM_PARTICLES, BETA)
    models_some_modalities = True

    @classmethod
    def modalities_for(cls, modalities: List[Modality], modality: Optional[str] = None, **options) -> List[Modality]:
        names = [m.name for m in modalities]
        if modality is not None and modality not in names:
            raise ValueError(f"option modality: {modality!r} is not one of the modalities {names}")
        return [modalities[names.index(modality) if modality is not None else 0]]

    def build(self, modalities, z_dim, modality, num_particles, beta):
        return (SharedLatentModel(modalities, z_dim), UnimodalGuide(modalities[0]),
                TraceMixture_ELBO(num_particles, beta=beta))


@register
class MVAE(MultimodalVAE):
    """Product of experts with the MVAE sub-sampled objective."""

    method = "mvae"
    title = "MVAE"
    reference = "Wu & Goodman, NeurIPS 2018"
    summary = "product of experts; joint, unimodal and random-subset ELBOs"
    options = (NUM_RANDOM_SUBSETS, ANNEALING_STEPS, NUM_PARTICLES, ESTIMATOR, BETA)

    def build(self, modalities, z_dim, **options):
        return SharedLatentModel(modalities, z_dim), ProductOfExpertsGuide(modalities), TraceMVAE_ELBO(**options)


@register
class MMVAE(MultimodalVAE):
    """Mixture of experts with the stratified IWAE ("looser") bound."""

    method = "mmvae"
    title = "MMVAE"
    reference = "Shi, Siddharth, Paige & Torr, NeurIPS 2019"
    summary = "mixture of experts; stratified IWAE bound with the mixture density, DReG"
    options = (NUM_PARTICLES.with_default(10), ESTIMATOR.with_default("dreg"), NUM_SUBSETS, BETA)
    subset_family = staticmethod(singletons)

    def build(self, modalities, z_dim, **options):
        return (SharedLatentModel(modalities, z_dim), MixtureOfExpertsGuide(modalities),
                TraceMixture_ELBO(density="mixture", **options))


@register
class MoPoE(MultimodalVAE):
    """Mixture of products of experts with the (sub-sampled) mixture bound."""

    method = "mopoe"
    title = "MoPoE-VAE"
    reference = "Sutter, Daunhawer & Vogt, ICLR 2021"
    summary = "mixture over every subset's product of experts; sub-sampled mixture bound"
    options = (NUM_SUBSETS, NUM_PARTICLES, ESTIMATOR, BETA)
    subset_family = staticmethod(power_set)

    def build(self, modalities, z_dim, **options):
        return (SharedLatentModel(modalities, z_dim), MixtureOfProductsGuide(modalities),
                TraceMixture_ELBO(density="subset", **options))


@register
class MEME(MultimodalVAE):
    """Mutual supervision with pseudo-sample priors for missing modalities. ``preset`` picks the
    settings: ``"pyro_mm"`` (default; the reference code's objective, λ = 10 and directions summed,
    with K = 5, Rao–Blackwellised, N = 32), ``"paper"`` (λ = 1, directions averaged, K = 10, the
    paper's estimator) or ``"reference"`` (the reference code's: λ = 10, summed, K = 10); any option
    given overrides the preset's (:class:`~pyro_mm.infer.TraceMEME_ELBO`)."""

    method = "meme"
    title = "MEME"
    reference = "Joy, Shi, Torr, van de Meent & Siddharth, ICLR 2022"
    summary = "each modality's encoder is the other's conditional prior; pseudo-sample priors when one is missing"
    #: N, pseudo-samples per modality, of each preset
    pseudo_samples = {"pyro_mm": 32, "paper": 128, "reference": 128}
    options = (choice("preset", "pyro_mm", tuple(PRESETS), "'pyro_mm' (λ = 10, summed, K = 5, Rao-Blackwellised, "
                      "N = 32), 'paper' (λ = 1, averaged, K = 10) or 'reference' (λ = 10, summed, K = 10)"),
               NUM_PARTICLES.with_default(None, "K, samples of the classifier estimate q̂(t | s) (default: the "
                                          "preset's)"),
               integer("num_pseudo_samples", None, "N, learnable pseudo-samples per modality, the priors of unpaired "
                       "samples (default: the preset's)", minimum=1),
               flag("extension", False, "allow more than two modalities (App. E of the paper)"),
               CLASSIFIER_WEIGHT, COMBINE,
               flag("rao_blackwell", None, "estimate the paired bound Rao-Blackwellised (every classifier draw the "
                    "main sample in turn: same objective, far less variance; default: the preset's)"),
               BETA)

    def build(self, modalities, z_dim, num_pseudo_samples, extension, **options):
        if len(modalities) != 2 and not extension:
            raise ValueError(f"MEME is defined for two modalities, got {len(modalities)}; pass extension=True "
                             "(pyro-mm train --extension true) for the many-modality extension (App. E of Joy et al.)")
        if num_pseudo_samples is None:
            num_pseudo_samples = self.pseudo_samples[options["preset"]]
        model = MutualSupervisionModel(modalities, z_dim, pseudo_samples=num_pseudo_samples)
        return model, MutualSupervisionGuide(modalities), TraceMEME_ELBO(extension=extension, **options)


@register
class MMVAEPlus(MultimodalVAE):
    """Mixture of experts on a shared latent plus a private latent per modality with a learned
    auxiliary prior; stratified IWAE bound, DReG."""

    method = "mmvae+"
    title = "MMVAE+"
    reference = "Palumbo, Daunhawer & Vogt, ICLR 2023"
    summary = "MMVAE with modality-private latents and learned auxiliary priors for cross-modal generation"
    options = (integer("private_dim", 8, "size of every modality's private latent w_m (0: MMVAE)"),
               choice("family", "laplace", ("laplace", "normal"), "posterior and prior family: 'laplace' (the "
                      "reference's, with softmax scales) or 'normal'"),
               NUM_PARTICLES.with_default(10), ESTIMATOR.with_default("dreg"), NUM_SUBSETS, BETA)
    subset_family = staticmethod(singletons)

    @classmethod
    def latent_size(cls, z_dim, private_dim, **options):
        return z_dim + private_dim

    def build(self, modalities, z_dim, private_dim, family, **options):
        return (PrivateLatentModel(modalities, z_dim, private_dim, family),
                PrivateLatentGuide(modalities, z_dim, private_dim, family), TraceMMVAEPlus_ELBO(**options))


@register
class JMVAE(MultimodalVAE):
    """A joint encoder q(z | X) for the samples that observe every modality, with every unimodal
    encoder drawn to it by α KL(q(z | X) ‖ q(z | x_m)); a sample with a missing modality uses the
    product of its observed unimodal experts (no prior expert) and its plain ELBO
    (:class:`~pyro_mm.infer.trace_jmvae_elbo.TraceJMVAE_ELBO`)."""

    method = "jmvae"
    title = "JMVAE-KL"
    reference = "Suzuki, Nakayama & Matsuo, ICLR 2017 workshop"
    summary = "joint encoder for complete samples, unimodal encoders drawn to it by a KL; product of experts otherwise"
    options = (JMVAE_ALPHA, NUM_PARTICLES, BETA)

    def build(self, modalities, z_dim, **options):
        return (SharedLatentModel(modalities, z_dim), JointEncoderGuide(modalities, z_dim),
                TraceJMVAE_ELBO(**options))


@register
class MMJSD(MultimodalVAE):
    """Mixture of experts with the Jensen–Shannon divergence of the unimodal posteriors and the prior
    to their geometric mean (the dynamic prior) in place of the KL to the prior; not a lower bound
    on log p(X) (:class:`~pyro_mm.infer.trace_mmjsd_elbo.TraceMMJSD_ELBO`)."""

    method = "mmjsd"
    title = "mmJSD"
    reference = "Sutter, Daunhawer & Vogt, NeurIPS 2020"
    summary = "mixture of experts; JS divergence of the unimodal posteriors and the prior to a dynamic prior"
    options = (NUM_PARTICLES.with_default(1, "K, draws from every observed expert"), BETA)
    subset_family = staticmethod(singletons)

    def build(self, modalities, z_dim, **options):
        return SharedLatentModel(modalities, z_dim), MixtureOfExpertsGuide(modalities), TraceMMJSD_ELBO(**options)


@register
class MVTCAE(MultimodalVAE):
    """Product of experts without the prior expert, trained by the total-correlation objective: an
    ELBO and M conditional information bottlenecks weighed by α; not a lower bound on log p(X) for
    α > 0 (:class:`~pyro_mm.infer.trace_mvtcae_elbo.TraceMVTCAE_ELBO`)."""

    method = "mvtcae"
    title = "MVTCAE"
    reference = "Hwang, Kim, Lee, Kim, Kim & Kim, NeurIPS 2021"
    summary = "product of experts without the prior expert; (1 - α) ELBO + α conditional information bottlenecks"
    options = (MVTCAE_ALPHA, NUM_PARTICLES.with_default(1, "K, draws from the product of experts"), BETA)

    def build(self, modalities, z_dim, **options):
        return (SharedLatentModel(modalities, z_dim), ProductOfExpertsGuide(modalities, prior_expert=False),
                TraceMVTCAE_ELBO(**options))


def load_model(path, map_location="cpu") -> "MultimodalVAE":
    """Load a saved model of any registered method."""
    payload = read_payload(path, MODEL_FORMAT, map_location)
    cls = next((c for c in METHODS.values() if c.__name__ == payload.get("class")), None)
    if cls is None:
        raise ValueError(f"{path} holds a model of class {payload.get('class')!r}, which no registered method has "
                         f"(registered: {[c.__name__ for c in METHODS.values()]})")
    return cls._from_payload(payload, path)


#: every registered user class defined here, and the registry
__all__ = ["METHODS", *(cls.__name__ for cls in METHODS.values() if cls.__module__ == __name__), "load_model"]
if __doc__:  # (None under python -OO)
    __doc__ += "\n".join(f"* :class:`{cls.__name__}` (``{name}``, {cls.title}; {cls.reference}): {cls.summary}"
                         for name, cls in METHODS.items()) + "\n"
