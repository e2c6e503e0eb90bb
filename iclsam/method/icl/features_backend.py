"""The training-free ICL model: the semantic confidence map itself (Eq. 2 on SAM's features of the
support set), thresholded at 0.5, is the coarse mask. It has no weights of its own and no "without
the map" variant; Eq. 4 (UniverSeg's decoder) does not apply."""

from __future__ import annotations

import numpy as np
from torch import Tensor

from iclsam.method.icl.base import ICLBackend, ICLOutput


class FeaturesICL(ICLBackend):
    name = "features"
    plain_variant = None
    map_variant = "features"
    notes = ("Eq. 4 (confidence map in UniverSeg) does not apply to the features backend",)
    # The map is this ICL model itself: its boxes already come from the map, and steering SAM with it
    # adds no second opinion. Measured on the five real-dev sets (LiteMedSAM, 3 draws x 16 queries),
    # SAM without the map beat the steered SAM in 14 of 15 set x m cells (m = 1, 4, 8).
    default_sam_steering = False

    def __init__(self, sam_name: str):
        self.weights = f"none (training-free features backend on {sam_name})"

    def predict(
        self,
        prepared: object,
        query: np.ndarray,
        confidence: Tensor | None,
        alpha: float,
        plain: bool = True,
        with_map: bool = True,
    ) -> ICLOutput:
        if with_map and confidence is None:
            raise ValueError("the features backend is made of the confidence map: give it the query's map")
        return ICLOutput(with_map=confidence if with_map else None)
