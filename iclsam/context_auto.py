"""confidence_context="auto" (not in the paper): whether Eq. 2 is fitted on SAM's tokens alone or on
tokens with their context (`confidence.context_tokens`), chosen per support set by leave-one-out
on the support itself. Each support image is segmented from the other m - 1 with each setting
(Figure 1's steps, the full method), and the context replaces the tokens alone only when it is
clearly better on them (`fusion_auto.clear_gain`). On the ten development sets the context gained
on CT cut from whole volumes and lost on the small real-dev sets (docs/real-images.md): the
support set is asked which kind of target it is. With one support image nothing can be left out,
and the tokens stay alone."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import numpy as np

from .confidence import support_classifier
from .figure1 import fused_prediction
from .fusion_auto import clear_gain
from .metrics import dice
from .support import SupportSet

if TYPE_CHECKING:
    from .config import ICLSAMConfig
    from .model import ICLSAM

AUTO_CONTEXT = 5  # the context "auto" weighs against the tokens alone (k = 5: the larger effect, both ways)
CONTEXT_MARGIN = 0.01  # the held-out gain it must clear, as fusion="auto"'s


def held_out_dice(model: ICLSAM, support: SupportSet, k: int, context: int) -> float:
    """Dice of the full method's mask on support image k, segmented from the others with Eq. 2 fitted
    on `context` (1: the tokens alone); the paper's gamma and the model's fixed SAM steering."""
    subset = support.without(k)
    config = dataclasses.replace(model.config, confidence_context=context)
    subset.classifier = support_classifier(model.sam, subset, config, model.device)
    state = model.query_state(subset, support.images[k], None, {"iclsam"})
    state.fixed_fusion = True
    fused_prediction(model, subset, state)
    return dice(state.masks["iclsam"], support.masks[k])


def choose_context(model: ICLSAM, support: SupportSet) -> int:
    """The context Eq. 2 is fitted on for this support set: `AUTO_CONTEXT` when, image by image, its
    held-out Dice beats the tokens alone clearly, else 1. One support image, or a support set made
    inside another choice (no content key): 1."""
    if support.m < 2 or not support.content:
        return 1
    gains = np.array(
        [held_out_dice(model, support, k, AUTO_CONTEXT) - held_out_dice(model, support, k, 1) for k in range(support.m)]
    )
    return AUTO_CONTEXT if clear_gain(gains, CONTEXT_MARGIN) else 1


def resolved_context(model: ICLSAM, support: SupportSet) -> ICLSAMConfig:
    """The model's config with confidence_context "auto" replaced by this support set's choice."""
    if model.config.confidence_context != "auto":
        return model.config
    return dataclasses.replace(model.config, confidence_context=choose_context(model, support))
