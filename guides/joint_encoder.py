"""The JMVAE guide (Suzuki, Nakayama & Matsuo 2016): a joint encoder for the samples that observe
every modality, and the unimodal encoders for the others,

.. math:: q(z \\mid X_o) = \\begin{cases} q_\\phi(z \\mid x_1, \\dots, x_M) & o = \\{1, \\dots, M\\}
          \\ \\text{(a complete row: the joint encoder)}\\\\
          \\prod_{m \\in o} q_{\\phi_m}(z \\mid x_m) & \\text{otherwise (the product of the observed
          unimodal experts, without the prior expert)} \\end{cases}

and, for a subset S of the observed modalities (the strata of the objectives), the joint encoder
when S holds every modality and the product of S's unimodal experts otherwise (multivae's
``JMVAE.encode`` makes the same choice). The paper trains on complete pairs only and uses the
unimodal encoders to infer z from one modality; a row with a missing modality is pyro_mm's
extension, which the paper's own missing-data mechanism (the unimodal encoders) serves. With two
modalities such a row uses its one observed expert, q(z | x_m).

The unimodal encoders are the modalities' (``(loc, scale)`` of size z_dim each); the joint encoder
is any module that maps a :class:`~pyro_mm.batch.MultimodalBatch` to ``(loc, scale) [B, z_dim]``,
by default :class:`JointEncoder` (multivae's default architecture: a copy of every unimodal
encoder, their outputs concatenated and passed through an MLP). It runs on every row (a missing
modality's entries are zeros) and its output is used on the complete rows only: elsewhere it gets
exactly zero gradient.
"""

from __future__ import annotations

import copy
from typing import Optional, Sequence, Tuple

import torch
from pyro.infer.util import is_validation_enabled
from torch import nn

from pyro_mm.batch import MultimodalBatch
from pyro_mm.distributions import ProductOfExperts
from pyro_mm.infer.contract import ContractError
from pyro_mm.modality import Modality, check_modalities, check_scale, network_dtype
from pyro_mm.nets import MLPEncoder

from .experts import ExpertsGuide, run_encoder

__all__ = ["JointEncoder", "JointEncoderGuide", "JointPosterior"]


class JointPosterior(ProductOfExperts):
    """q(z | X): the joint encoder's Gaussian where every modality is observed, the product of the
    observed unimodal experts (no prior expert) elsewhere.

    :param joint_loc: ``[B, D]`` the joint encoder's mean.
    :param joint_scale: ``[B, D]`` its standard deviation.
    :param expert_loc: ``[B, M, D]`` the unimodal experts' means.
    :param expert_scale: ``[B, M, D]`` their standard deviations.
    :param observed: boolean ``[B, M]`` observation mask.
    :param names: modality names of the M columns.

    :meth:`component_params` of a subset S is the joint encoder's where S holds every modality and
    all are observed, the product of S's observed experts otherwise.
    """

    def __init__(self, joint_loc, joint_scale, expert_loc, expert_scale, observed, names=None, validate_args=None):
        self.joint_loc, self.joint_scale = joint_loc, joint_scale
        super().__init__(expert_loc, expert_scale, observed, prior_expert=False, names=names,
                         validate_args=validate_args)

    def component_params(self, subsets: torch.Tensor, detach: bool = False):
        loc, scale = super().component_params(subsets, detach)
        joint_loc, joint_scale = self.joint_loc, self.joint_scale
        if detach:
            joint_loc, joint_scale = joint_loc.detach(), joint_scale.detach()
        full = (subsets & self.observed).all(-1, keepdim=True)  # [..., B, 1]
        return torch.where(full, joint_loc, loc), torch.where(full, joint_scale, scale)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(JointPosterior, _instance)
        new.joint_loc, new.joint_scale = self.joint_loc, self.joint_scale
        return super().expand(batch_shape, new)


class JointEncoder(nn.Module):
    """q_φ(z | x_1, ..., x_M): a copy of every unimodal encoder (their initial weights, trained
    separately), each copy's ``(loc, log scale)`` concatenated, and an MLP
    (:class:`~pyro_mm.nets.MLPEncoder`) to ``(loc, scale)``.

    :param modalities: the modality specifications (their encoders are copied).
    :param int z_dim: size of the latent (every encoder's output).
    :param hidden: the MLP's hidden widths (multivae: two layers of 512).
    """

    def __init__(self, modalities: Sequence[Modality], z_dim: int, hidden: Sequence[int] = (512, 512)):
        super().__init__()
        self.modalities = check_modalities(modalities)
        self.encoders = nn.ModuleDict({m.name: copy.deepcopy(m.encoder) for m in self.modalities})
        self.z_dim = int(z_dim)
        dtype = network_dtype(self.modalities[0].encoder)
        self.head = MLPEncoder((2 * len(self.modalities) * self.z_dim,), self.z_dim, tuple(hidden)).to(dtype)

    def forward(self, batch: MultimodalBatch) -> Tuple[torch.Tensor, torch.Tensor]:
        features = []
        for m in self.modalities:
            loc, scale = run_encoder(m, self.encoders[m.name], batch[m.name])
            if loc.shape[-1] != self.z_dim:
                raise ContractError(
                    f"the joint encoder's copy of the encoder of modality {m.name!r} returned loc and scale of shape "
                    f"{list(loc.shape)}; the joint encoder was built for z_dim = {self.z_dim}"
                )
            features += [loc, scale.log()]
        return self.head(torch.cat(features, -1))


class JointEncoderGuide(ExpertsGuide):
    """JMVAE's posterior family (:class:`JointPosterior`): the joint encoder on complete rows, the
    product of the observed unimodal experts on the others.

    :param modalities: the modality specifications (the guide owns their encoders).
    :param int z_dim: size of the latent (for the default joint encoder).
    :param joint_encoder: a module ``batch -> (loc, scale) [B, z_dim]`` (default:
        :class:`JointEncoder` of the modalities).
    :param hidden: the hidden widths of the default joint encoder's MLP.
    :param str latent: name of the latent site.
    """

    def __init__(self, modalities, z_dim: int, joint_encoder: Optional[nn.Module] = None,
                 hidden: Sequence[int] = (512, 512), latent: str = "z"):
        super().__init__(modalities, latent)
        self.joint_encoder = joint_encoder if joint_encoder is not None else JointEncoder(self.modalities, z_dim,
                                                                                          hidden)

    def posterior(self, batch: MultimodalBatch) -> JointPosterior:
        loc, scale, observed = self.experts(batch)
        joint_loc, joint_scale = self.joint_encoder(batch)
        if joint_loc.shape != loc[:, 0].shape or joint_scale.shape != joint_loc.shape:
            raise ContractError(
                f"the joint encoder returned loc of shape {list(joint_loc.shape)} and scale of shape "
                f"{list(joint_scale.shape)}; both must have the unimodal experts' shape [batch, z_dim] = "
                f"{list(loc[:, 0].shape)}"
            )
        if is_validation_enabled():
            check_scale("joint", joint_scale)
        return JointPosterior(joint_loc, joint_scale, loc, scale, observed, self.names)
