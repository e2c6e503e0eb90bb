"""Fusion of the ICL and SAM predictions (paper §2.1, Eq. 1)."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from torch import Tensor

from .metrics import dice
from .resampling import to_image_size

FUSIONS = ("paper", "auto")
FUSION_GAMMAS = tuple(round(0.1 * k, 1) for k in range(11))  # fusion="auto" chooses among these


def fusion_weight(a: float, tau: float, m: int) -> float:
    """gamma = a * (1 - exp(-tau * m)): the ICL model's share grows with the support size."""
    return a * (1.0 - math.exp(-tau * m))


def fuse(sam_logits: Tensor, icl_probability: Tensor, gamma: float) -> Tensor:
    """Eq. 1 as the ICL-SAM code: F = (1 - gamma) * S + gamma * U with S = SAM logits / std,
    U = (p - 0.5) / std(p) on the ICL model's own grid, then resized to the image. Target: F > 0.

    sam_logits: H x W; icl_probability: h x w in [0, 1]."""
    s = sam_logits / sam_logits.std().clamp_min(1e-6)
    u = (icl_probability - 0.5) / icl_probability.std().clamp_min(1e-6)
    return (1.0 - gamma) * s + gamma * to_image_size(u, tuple(sam_logits.shape))


def leave_one_out_fusion(held_out: Sequence[tuple[dict, np.ndarray]], gammas: Sequence[float], paper: float,
                         steer: bool = True, margin: float = 0.01) -> tuple[bool, float]:
    """Not in the paper (fusion="auto"): among SAM steered by the map (Eq. 3) or not, times each
    gamma of `gammas`, the pair whose fused mask has the best mean Dice over the held-out support
    images, if it clearly beats the default setting (`steer`, `paper`: the paper's when steer is
    True); else the default. Clearly: its mean gain over the default, image by image, is more than
    `margin` and more than the gain's standard error (a few held-out images are a noisy judge:
    without consistent evidence the default stands; one held-out image: the margin alone). Ties go
    to the default's steering, then to the gamma nearest `paper`. `held_out`: (inputs, mask) per
    support image segmented from the others; inputs hold Eq. 1's "sam_logits" (steered),
    "plain_sam_logits" and "icl_probability", or "pseudo_label" when SAM was not prompted (every
    setting gives it). Returns (steered, gamma)."""
    if not held_out:
        raise ValueError("leave-one-out needs at least one held-out support image")
    candidates = [(s, g) for s in (steer, not steer) for g in gammas] + [(steer, paper)]
    scores = np.zeros((len(held_out), len(candidates)))  # Dice per held-out image and candidate
    for i, (inputs, truth) in enumerate(held_out):
        for j, (steered, gamma) in enumerate(candidates):
            if "pseudo_label" in inputs:
                mask = inputs["pseudo_label"]
            else:
                logits = inputs["sam_logits"] if steered else inputs["plain_sam_logits"]
                mask = (fuse(logits, inputs["icl_probability"], gamma) > 0).numpy()
            scores[i, j] = dice(mask, truth)
    means = scores.mean(axis=0)
    best = max(range(len(candidates) - 1),
               key=lambda j: (round(float(means[j]), 9), candidates[j][0] == steer, -abs(candidates[j][1] - paper)))
    gains = scores[:, best] - scores[:, -1]
    error = gains.std(ddof=1) / np.sqrt(len(gains)) if len(gains) > 1 else 0.0
    clear = gains.mean() > margin and gains.mean() > error
    return candidates[best] if clear else (steer, float(paper))
