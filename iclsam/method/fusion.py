"""Fusion of the ICL and SAM predictions (paper §2.1, Eq. 1)."""

from __future__ import annotations

import math

from torch import Tensor

from iclsam.common.resampling import to_image_size
from iclsam.common.znorm import z_norm

FUSIONS = ("paper", "auto", "in-sample")


def fusion_weight(a: float, tau: float, m: int) -> float:
    """gamma = a * (1 - exp(-tau * m)): the ICL model's share grows with the support size."""
    return a * (1.0 - math.exp(-tau * m))


def fuse(sam_logits: Tensor, icl_probability: Tensor, gamma: float) -> Tensor:
    """Eq. 1 as the ICL-SAM code: F = (1 - gamma) * S + gamma * U with S = SAM logits / std,
    U = (p - 0.5) / std(p) on the ICL model's own grid, then resized to the image. Target: F > 0.

    sam_logits: H x W; icl_probability: h x w in [0, 1]."""
    s = z_norm(sam_logits, centre=0.0)
    u = z_norm(icl_probability, centre=0.5)
    return (1.0 - gamma) * s + gamma * to_image_size(u, tuple(sam_logits.shape))
