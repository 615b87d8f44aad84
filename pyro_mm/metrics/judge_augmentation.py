"""What the image judges see in training besides the real images: real images made faint and blurred.

A multimodal VAE generates images as decoder means: blurred, and faint wherever the latent leaves a
colour or a stroke's intensity uncertain. A judge trained on crisp real images only reads such
images off its training distribution, and there its verdict hinges on accidents of its own
training: judges of the same recipe that differ only in their seed, each 99.2 % accurate on the
real SynDigits test images, judged the same MNIST → SynDigits generations of one model 0.646,
0.571 and 0.604 coherent (docs/main_job.md, "The judges"). Trained on real images degraded this
way they agree to ± 0.013, and to ± 0.001 on SynDigits → MNIST.

Each training image ``x`` (``[N, C, H, W]`` in [0, 1]) is, independently:

* made faint: ``x ← m + c (x − m)`` with ``m`` its mean per channel and ``c ~ U(CONTRAST)``;
* blurred with probability ``BLUR_PROBABILITY`` by a 5 × 5 Gaussian kernel of
  ``σ ~ U(BLUR_SIGMA)`` pixels (edges padded with zeros, the result clamped to [0, 1]).

The draws come from the caller's ``torch.Generator`` and the operations are elementwise or a
depthwise convolution on one thread, so a judge's weights stay a function of its seed.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

__all__ = ["degrade", "CONTRAST", "BLUR_PROBABILITY", "BLUR_SIGMA"]

#: range of the contrast factor c (1: the image as it is)
CONTRAST = (0.25, 1.0)
#: probability that an image is blurred
BLUR_PROBABILITY = 0.5
#: range of the blur's standard deviation, in pixels
BLUR_SIGMA = (0.3, 1.5)
_RADIUS = 2  # the kernel is (2 * _RADIUS + 1) pixels wide


def degrade(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """``x`` ``[N, C, H, W]`` made faint and, for some images, blurred (see the module docstring);
    the random draws come from ``generator`` (on the CPU) and are moved to ``x``'s device."""
    if x.dim() != 4:
        raise ValueError(f"degrade expects images [N, C, H, W], got shape {list(x.shape)}")
    n, c = x.shape[:2]

    def uniform(low: float, high: float, size) -> torch.Tensor:
        return torch.empty(size, dtype=x.dtype).uniform_(low, high, generator=generator).to(x.device)

    mean = x.mean(dim=(2, 3), keepdim=True)
    faint = mean + uniform(*CONTRAST, (n, 1, 1, 1)) * (x - mean)
    sigma = uniform(*BLUR_SIGMA, (n, 1))
    blurred_rows = (torch.rand(n, generator=generator) < BLUR_PROBABILITY).to(x.device)
    offsets = torch.arange(-_RADIUS, _RADIUS + 1, dtype=x.dtype, device=x.device)
    line = torch.exp(-offsets ** 2 / (2 * sigma ** 2))
    line = line / line.sum(-1, keepdim=True)
    kernels = (line[:, :, None] * line[:, None, :]).repeat_interleave(c, 0)[:, None]  # [N·C, 1, k, k]
    blurred = F.conv2d(faint.reshape(1, n * c, *x.shape[2:]), kernels, padding=_RADIUS, groups=n * c)
    out = torch.where(blurred_rows[:, None, None, None], blurred.reshape(x.shape), faint)
    return out.clamp(0.0, 1.0)
