"""The paper's Eq. 4: the semantic confidence map inside UniverSeg's decoder.

Dec'(x) = Norm(Dec(x) * exp(alpha * Z-Norm(C)) | Dec(x)),   alpha = b * exp(-tau * m)
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def universeg_confidence_weight(b: float, tau: float, m: int) -> float:
    """alpha = b * exp(-tau * m): how strongly the confidence map steers UniverSeg (Eq. 4)."""
    return b * math.exp(-tau * m)


def modulate_support_stream(support: Tensor, z: Tensor, alpha: float) -> Tensor:
    """Eq. 4 on one decoder level: support (B x S x C x H x W) times exp(alpha * z), z the query's
    Z-normed confidence map (`z_norm` over each query's map: B x 1 x H x W, brought to this level), rescaled so that each
    query's whole tensor keeps its Frobenius norm (Norm(B|A) = B * |A|_2 / |B|_2).
    alpha = 0 returns `support` unchanged to the bit."""
    weight = torch.exp(alpha * z)[:, :, None]  # B x 1 x 1 x H x W, shared by support and channels
    modulated = support * weight
    before = support.flatten(1).norm(dim=1)
    after = modulated.flatten(1).norm(dim=1).clamp_min(1e-12)
    return modulated * (before / after).view(-1, 1, 1, 1, 1)
