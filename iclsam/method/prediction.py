"""What ICL-SAM gives for one query (`ICLSAM.predict`)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from iclsam.method.confidence import ConfidenceClassifier


@dataclass
class Prediction:
    """What one query gives.

    masks: H x W bool per variant. With icl="universeg": "universeg" (plain), "universeg+conf"
      (Eq. 4), "sam" (SAM prompted by boxes from "universeg+conf"), "sam+conf" (plus Eq. 3),
      "iclsam" (plus the Eq. 1 fusion: the full method). With icl="features" the ICL variant is
      "features" and there is no "+conf" ICL variant (Eq. 4 is UniverSeg's). "sam+gt" (boxes from
      the ground truth, no map) when a query mask was given.
    Only the variants asked for are computed (all by default); each is the same to the bit whether
    it was asked for alone or with the others.
    boxes: K x 4 XYXY prompts from the pseudo-label; gt_boxes likewise from the query mask.
    confidence: H x W semantic confidence map in [0, 1] (Eq. 2); None when no variant needs it
      (UniverSeg alone, SAM + GT boxes).
    classifier: the confidence map's logistic regression (None likewise).
    dice: Dice per variant when a query mask was given.
    score: Eq. 1's fused map F (H x W) when "iclsam" was asked for: its mask is F > 0 (without a
      box, F is the ICL term alone); it ranks labels that claim one pixel (`iclsam.method.label_maps`).
    notes: what was skipped or substituted, in words."""

    masks: dict[str, np.ndarray]
    boxes: np.ndarray
    confidence: np.ndarray | None
    icl: str
    alpha: float
    gamma: float
    classifier: ConfidenceClassifier | None
    gt_boxes: np.ndarray | None = None
    dice: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    score: np.ndarray | None = None
