"""MEME: learning multimodal VAEs through mutual supervision (Joy et al., ICLR 2022).

Two modalities s, t share one encoder and one decoder each, used in both directions. For a sample
where both are observed, the direction s → t reads t as the "label" of a semi-supervised VAE: the
partner encoder q(z | t) is the conditional prior and the partner decoder p_θ(t | z) the
classifier,

.. math::

    \\mathcal{L}(s,t) = \\mathbb{E}_{q(z|s)}\\Big[\\mathrm{sg}(w)\\big(\\log p_\\theta(s|z) - \\log p_\\theta(t|z)
        - \\mathrm{KL}(q(z|s)\\,\\|\\,q(z|t))\\big)\\Big] + \\lambda \\log \\hat q(t|s),

    w = \\frac{p_\\theta(t|z)}{\\hat q(t|s)}, \\qquad
    \\hat q(t|s) = \\frac{1}{K+1}\\sum_{k=0}^{K} p_\\theta(t|z_k), \\quad z_0 = z,\\ z_{1..K} \\sim q(z|s),

and the paired objective is L_Bi = ½ [L(s,t) + L(t,s)]. The KL between the two Gaussians is
analytic; the weight w is detached; the main sample z_0 is inside q̂ for numerical stability.

**Rao–Blackwellised estimator** (``rao_blackwell=True``; pyro_mm's, not the paper's). The K + 1
draws are exchangeable and q̂ is symmetric in them, so any of them may play the main sample.
Averaging the estimator over that choice gives its conditional expectation given the unordered
draws,

.. math::

    \\mathcal{L}_{RB}(s,t) = \\sum_{k=0}^{K} \\hat w_k \\big(\\log p_\\theta(s|z_k) - \\log p_\\theta(t|z_k)\\big)
        - \\mathrm{KL}(q(z|s)\\,\\|\\,q(z|t)) + \\lambda \\log \\hat q(t|s),
    \\qquad \\hat w_k = \\mathrm{sg}\\Big(\\frac{p_\\theta(t|z_k)}{\\sum_j p_\\theta(t|z_j)}\\Big) = \\frac{w_k}{K+1},

with the same expectation and expected gradient and never more variance. Where the draws'
likelihoods p_θ(t|z_k) differ by orders of magnitude (images), one draw dominates q̂: w ≈ K + 1 when
it is the main sample and w ≈ 0 otherwise, so a paired sample's reconstruction and KL are trained
about once in K + 1 steps; Rao–Blackwellised, the KL enters with weight exactly one and every
paired sample's reconstruction is trained (measured on MNIST–SynDigits: ``docs/main_job.md``).
Because ∇ log q̂ = Σ_k ŵ_k ∇ log p_θ(t|z_k), the classifier's net gradient is
(λ − 1) Σ_k ŵ_k ∇ log p_θ(t|z_k): exactly zero at λ = 1 (the paper's estimator cancels it only in
expectation), so there the classifier's decoders run outside autograd (:meth:`zero_gradient_cells`).
The price: the own likelihood is decoded at all K + 1 draws instead of one.

For a sample where only s is observed, the prior is a mixture over N learnable pseudo-samples u_i
in t's data space through t's encoder (:class:`~pyro_mm.models.MutualSupervisionModel`),

.. math:: \\mathcal{L}(s) = \\mathbb{E}_{q(z|s)}\\Big[\\log p_\\theta(s|z) - \\log q(z|s)
          + \\log \\tfrac1N\\textstyle\\sum_i q(z \\mid u_i)\\Big],

so t's decoder gets no gradient from it while t's encoder learns through the pseudo-samples. One
batch mixes paired and unpaired samples; the mask selects each sample's term in one vectorised
pass: every unimodal posterior is a stratum (dim −2) and the K + 1 draws are particles (dim −3).

**Beyond two modalities** (``extension=True``; App. E of the paper, which describes it but ships no
implementation): for each observed modality m, the conditional prior is the product of experts of
the *other observed* modalities' encoders and the classifier is the product of their decoders;
the terms are averaged over m. A sample with a single observed modality uses the pseudo-sample
prior of the missing modalities (a uniform mixture over them). This is pyro_mm's extension beyond
the paper.

Presets (:data:`PRESETS`; explicit arguments override them): ``"pyro_mm"``, the default — the
reference code's objective (λ = 10, directions summed) with K = 5, estimated Rao–Blackwellised;
``"paper"``, the paper's (λ = 1, directions averaged, K = 10, the paper's estimator);
``"reference"``, the reference code's (λ = 10, directions summed, K = 10, the paper's estimator).
``docs/results/meme-table.md`` compares them.

β (default 1) weighs the latent terms: the KL to the conditional prior of a paired sample, and
log p_λ(z) − log q(z | s) of an unpaired one.

The model is any :class:`~pyro_mm.protocols.ConditionalPriorModel` (its modality names and
``pseudo_experts``: the conditional prior encoders at the pseudo-samples), e.g.
:class:`~pyro_mm.models.MutualSupervisionModel`; the guide's shared site a posterior of the
unimodal experts (:class:`~pyro_mm.guides.MutualSupervisionGuide`). When no sample of a batch is
unpaired and the mask lies on the CPU, the pseudo-sample priors are not evaluated at all.

The pseudo-samples are parameters of the model (a :class:`pyro.nn.PyroModule`): SVI trains them
whenever the prior of an unpaired sample reads them. Before training, set them from real data with
:func:`~pyro_mm.infer.initialise` (else they stay uniform noise).

Example — plain :class:`pyro.infer.SVI`, each modality missing for about a quarter of the samples::

    import pyro, torch
    from pyro.infer import SVI
    from pyro_mm.batch import MultimodalBatch
    from pyro_mm.guides import MutualSupervisionGuide
    from pyro_mm.infer import TraceMEME_ELBO, initialise
    from pyro_mm.modality import Modality
    from pyro_mm.models import MutualSupervisionModel
    from pyro_mm.nets import MLPDecoder, MLPEncoder

    mods = [Modality(n, (8,), MLPEncoder((8,), 4, (16,)), MLPDecoder(4, (8,), (16,)), "bernoulli")
            for n in ("image", "sound")]
    model = MutualSupervisionModel(mods, z_dim=4, pseudo_samples=16)
    guide = MutualSupervisionGuide(mods)
    mask = torch.rand(64, 2) > 0.25
    mask[~mask.any(-1), 0] = True  # every sample observes something
    batch = MultimodalBatch({n: torch.rand(64, 8).round() for n in ("image", "sound")}, mask)
    assert initialise(model, guide, batch) == ["model"]  # pseudo-samples <- 16 observed entries each
    svi = SVI(model, guide, pyro.optim.Adam({"lr": 1e-2}), loss=TraceMEME_ELBO(num_particles=3))
    before = model.pseudo.sound.detach().clone()
    losses = [svi.step(batch) for _ in range(3)]
    assert not torch.equal(model.pseudo.sound, before)  # the pseudo-samples train under SVI
"""

from __future__ import annotations

import math
from typing import Dict, List, Mapping

import torch
from pyro.distributions.util import scale_and_mask

from ..distributions import normal_kl, normal_log_prob, product_of_experts
from ..protocols import ConditionalPriorModel
from .contract import ContractError
from ..options import BETA, NUM_PARTICLES
from .multimodal_elbo import Estimate, MultimodalELBO
from .strata_plan import StrataPlan
from .stratified_traces import StratifiedTraces

__all__ = ["TraceMEME_ELBO"]

#: name -> the objective's settings; ``"pyro_mm"`` is the default
PRESETS = {
    "pyro_mm": dict(classifier_weight=10.0, combine="sum", num_particles=5, rao_blackwell=True),
    "paper": dict(classifier_weight=1.0, combine="mean", num_particles=10, rao_blackwell=False),
    "reference": dict(classifier_weight=10.0, combine="sum", num_particles=10, rao_blackwell=False),
}


def _observed_site(trace, name: str):
    """The model's observed site of modality ``name``, or a :class:`ContractError` naming it."""
    site = trace.nodes.get(name)
    if site is None or site["type"] != "sample" or not site["is_observed"]:
        observed = [n for n, s in trace.nodes.items() if s["type"] == "sample" and s["is_observed"]]
        raise ContractError(
            f"TraceMEME_ELBO finds no observed model site named after modality {name!r} (the model's observed "
            f"sites: {observed}); name each modality's likelihood site after it: "
            f"pyro.sample({name!r}, ..., obs=batch[{name!r}])"
        )
    return site


class TraceMEME_ELBO(MultimodalELBO):
    """MEME's mutual-supervision objective on mixed paired/unpaired batches.

    :param int num_particles: K, the fresh samples in q̂(t|s) (besides the main sample).
    :param classifier_weight: λ ≥ 0, the weight of log q̂(t|s); a number, or a mapping from the
        conditioning modality s to its own λ_s (a direction not named keeps the preset's λ) —
        e.g. to let the classifier term teach the encoder of a hard modality without forcing the
        easy modality's encoder to predict the hard one.
    :param str combine: ``"mean"`` (½[L(s,t) + L(t,s)], the paper) or ``"sum"`` of directions.
    :param bool extension: allow more than two modalities (App. E).
    :param str preset: ``"pyro_mm"`` (default), ``"paper"`` or ``"reference"`` (:data:`PRESETS`);
        explicit arguments override it.
    :param bool rao_blackwell: average the paired estimator over which of the K + 1 draws is the
        main sample (above): same expectation, lower variance, own likelihood decoded K + 1 times
        (default: the preset's).
    :param float beta: β ≥ 0, the weight of the latent terms (1: the objective itself).
    """

    def __init__(self, num_particles=None, classifier_weight=None, combine=None, extension: bool = False,
                 preset: str = "pyro_mm", rao_blackwell=None, beta: float = 1.0):
        if preset not in PRESETS:
            raise ValueError(f"preset must be one of {sorted(PRESETS)}, got {preset!r}")
        options = dict(PRESETS[preset])
        for key, value in (("num_particles", num_particles), ("classifier_weight", classifier_weight),
                           ("combine", combine), ("rao_blackwell", rao_blackwell)):
            if value is not None:
                options[key] = value
        K = NUM_PARTICLES.validate(options["num_particles"])
        lam = options["classifier_weight"]
        per_direction = dict(lam) if isinstance(lam, Mapping) else {}
        default = PRESETS[preset]["classifier_weight"] if per_direction else lam
        if not all(float(v) >= 0 for v in (default, *per_direction.values())):
            raise ValueError(f"classifier_weight (λ) must be >= 0, got {lam!r}")
        if options["combine"] not in ("mean", "sum"):
            raise ValueError(f"combine must be 'mean' or 'sum', got {options['combine']!r}")
        super().__init__(num_particles=K + 1)
        self.num_classifier_samples = K
        self.classifier_weight = float(default)
        self.direction_weights = {str(k): float(v) for k, v in per_direction.items()}
        self.combine = options["combine"]
        self.extension = extension
        self.rao_blackwell = bool(options["rao_blackwell"])
        self.beta = BETA.validate(beta)

    def plan(self, posterior) -> StrataPlan:
        """Every direction m → others is a stratum: the unimodal posterior q(z | x_m), weighted by
        whether m is observed; the K + 1 draws are its particles. Decoded per sample
        (:meth:`decoded_cells`), the classifier's zero-gradient cells outside autograd
        (:meth:`zero_gradient_cells`)."""
        M = posterior.observed.shape[-1]
        if M != 2 and not self.extension:
            raise ValueError(
                f"MEME is defined for two modalities, the guide has {M}; pass extension=True for the "
                "many-modality extension (App. E of Joy et al. 2022)"
            )
        B = posterior.observed.shape[0]
        eye = torch.eye(M, dtype=torch.bool, device=posterior.observed.device)
        subsets = eye[:, None, :].expand(M, B, M)
        cells = self.decoded_cells(posterior)
        return StrataPlan(subsets, posterior.observed.T.to(posterior.expert_loc.dtype), decoded=cells,
                          zero_gradient=self.zero_gradient_cells(posterior, cells) if cells else None)

    # --- the objective ------------------------------------------------------------------------
    def terms(self, model, guide, *args, **kwargs) -> Dict[str, torch.Tensor]:
        """:meth:`terms_from` the traces of ``model`` and ``guide`` on these arguments."""
        return self.terms_from(self.traces(model, guide, *args, **kwargs))

    def per_datapoint(self, traces: StratifiedTraces, surrogate: bool) -> Estimate:
        """MEME's bound per datapoint (its estimator is the bound's own gradient)."""
        return Estimate(self.terms_from(traces)["bound"])

    def terms_from(self, traces: StratifiedTraces) -> Dict[str, torch.Tensor]:
        """Every quantity of the objective, per modality m (the direction m → others) and sample:
        ``bound [B]``, ``paired [M, B]`` (L(m, ·)), ``unpaired [M, B]`` (L(m)), ``log_qhat``,
        ``weight`` (w), ``kl``, ``own`` (log p(x_m | z_0)) and the selection masks ``use_paired``,
        ``use_unpaired`` ``[M, B]``."""
        model = traces.model
        if not isinstance(model, ConditionalPriorModel):
            raise TypeError(
                f"TraceMEME_ELBO needs a model with conditional priors (names and pseudo_experts(name), "
                f"e.g. MutualSupervisionModel), got a {type(model).__name__}"
            )
        model_trace = traces.model_trace
        site = traces.guide_trace.nodes[traces.site]
        strat, z = site["fn"], site["value"]  # z: [K+1, M, B, D]
        source = strat.source
        names, observed = source.names, source.observed  # [B, M]
        M = len(names)
        # log p(x_n | z_{k,m,b}) for every modality n, zero where x_n is missing: [K+1, M, B] each
        loglik = torch.stack([_observed_site(model_trace, n)["log_prob"].expand(z.shape[:-1]) for n in names])
        own = loglik[torch.arange(M), :, torch.arange(M)].transpose(0, 1)  # log p(x_m | z_{k,m})
        # classifier: the product of the other modalities' decoders (only observed ones count);
        # own[1:] is used (and decoded: decoded_cells) only by the Rao-Blackwellised estimator
        not_own = ~torch.eye(M, dtype=torch.bool, device=z.device)[:, None, :, None]  # [n, 1, m, 1]
        log_c = torch.where(not_own, loglik, loglik.new_zeros(())).sum(0)  # [K+1, M, B]
        log_sum = log_c.logsumexp(0)
        log_qhat = log_sum - math.log(self.num_particles)  # [M, B]
        weight = (log_c[0] - log_qhat).exp().detach()
        # conditional prior: product of the other observed experts, analytic KL
        others = observed[None, :, :] & ~torch.eye(M, dtype=torch.bool, device=observed.device)[:, None, :]
        prior_loc, prior_scale = product_of_experts(source.expert_loc, source.expert_scale, others, False)
        loc, scale = source.expert_loc.transpose(0, 1), source.expert_scale.transpose(0, 1)  # [M, B, D]
        latent_scale = lambda t: scale_and_mask(t, site["scale"], site["mask"])  # noqa: E731
        kl = latent_scale(normal_kl(loc, scale, prior_loc, prior_scale))
        classifier = self._lambdas(names, log_qhat) * log_qhat
        if self.rao_blackwell:  # every draw as the main sample, weighted w_k / (K + 1) (they sum to one);
            # exp(log_c - log_sum) is also what log_sum's backward computes: at λ = 1 the
            # classifier's gradients cancel to the last bit
            share = (log_c - log_sum).exp().detach()
            paired = (share * (own - log_c)).sum(0) - self.beta * kl + classifier
        else:
            paired = weight * (own[0] - log_c[0] - self.beta * kl) + classifier
        count = observed.sum(-1)  # [B]
        z0 = z[0]  # [M, B, D]
        if observed.device.type == "cpu" and not bool((count == 1).any()):  # no unpaired sample: no pseudo prior
            unpaired = torch.zeros_like(own[0])
        else:  # unpaired: pseudo-sample prior of the missing modalities
            log_q = latent_scale(normal_log_prob(z0, loc, scale))
            pseudo = torch.stack([self._pseudo_log_prob(model, n, z0) for n in names])  # [n, M, B]
            missing = ~observed.T  # [n, B]: which pseudo priors apply to a sample
            # finite stand-in for log 0, so that unselected rows keep finite (zero) gradients
            pseudo = pseudo.masked_fill(~missing[:, None, :], torch.finfo(pseudo.dtype).min)
            log_prior = pseudo.logsumexp(0) - missing.sum(0).clamp_min(1).log()  # [M, B]
            unpaired = own[0] + self.beta * (latent_scale(log_prior) - log_q)
        use_paired = observed.T & (count >= 2)
        use_unpaired = observed.T & (count == 1)
        zero = z.new_zeros(())
        per_direction = torch.where(use_paired, paired, torch.where(use_unpaired, unpaired, zero))
        bound = per_direction.sum(0)
        if self.combine == "mean":
            bound = bound / count.to(bound.dtype)
        with torch.no_grad():
            def mean_where(values, where):
                return (values * where).sum() / where.sum().clamp_min(1)
            self.last_terms = {"paired": mean_where(paired, use_paired), "unpaired": mean_where(unpaired, use_unpaired),
                               "kl": mean_where(kl, use_paired), "log_qhat": mean_where(log_qhat, use_paired)}
        return dict(bound=bound, paired=paired, unpaired=unpaired, log_qhat=log_qhat, weight=weight, kl=kl,
                    own=own[0], use_paired=use_paired, use_unpaired=use_unpaired)

    def decoded_cells(self, posterior):
        """Per sample ``[K + 1, M, B]``, for every modality n: in its own direction (stratum n) at
        the main sample z_0 wherever n is observed, and at the other K draws for the paired
        samples when Rao–Blackwellised; in every other direction m (the classifier q̂) at all
        K + 1 draws of the paired samples that observe both n and m. ``None`` (decode everywhere)
        when the mask is not on the CPU: reading it back would stall the device every step."""
        observed = posterior.observed
        if observed.device.type != "cpu":
            return None
        paired = observed.sum(-1) >= 2
        cells = {}
        for i, n in enumerate(posterior.names):
            used = (observed[:, i] & observed.T & paired)[None].repeat(self.num_particles, 1, 1)  # [K+1, M, B]
            used[0, i] = observed[:, i]
            if not self.rao_blackwell:
                used[1:, i] = False
            cells[n] = used
        return cells

    def zero_gradient_cells(self, posterior, cells):
        """Rao–Blackwellised, the classifier of every direction m with λ_m = 1: its net gradient is
        exactly zero (above), so the other modalities' decoders run there outside autograd."""
        if not self.rao_blackwell:
            return None
        names = posterior.names
        free = [m for m, lam in enumerate(self._lambda_values(names)) if lam == 1.0]
        if not free:
            return None
        frozen = {}
        for n, name in enumerate(names):
            directions = torch.zeros(len(names), dtype=torch.bool)
            directions[[m for m in free if m != n]] = True
            frozen[name] = cells[name] & directions[None, :, None]  # [K+1, M, B]
        return frozen

    def _lambda_values(self, names) -> List[float]:
        """λ of every direction, in the order of ``names``."""
        unknown = sorted(set(self.direction_weights) - set(names))
        if unknown:
            raise ValueError(f"classifier_weight names unknown modalities {unknown}; the model has {list(names)}")
        return [self.direction_weights.get(n, self.classifier_weight) for n in names]

    def _lambdas(self, names, like: torch.Tensor) -> torch.Tensor:
        """λ of every direction, ``[M, 1]``, with the dtype and device of ``like``."""
        return torch.tensor(self._lambda_values(names), dtype=like.dtype, device=like.device)[:, None]

    @staticmethod
    def _pseudo_log_prob(model, name, z):
        """log (1/N) Σ_i q(z | u_i) for the pseudo-samples of ``name``, ``z [..., B, D]``."""
        loc, scale = model.pseudo_experts(name)  # [N, D]
        log_q = normal_log_prob(z[..., None, :, :], loc[:, None, :], scale[:, None, :])  # [..., N, B]
        return log_q.logsumexp(-2) - math.log(loc.shape[0])
