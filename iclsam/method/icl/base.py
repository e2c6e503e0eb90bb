"""What an in-context (ICL) model is to ICL-SAM (paper Figure 1, left): from a support set and a
query it gives the query's target probability on its own grid, without and with the semantic
confidence map. The mask of the "with map" prediction is SAM's pseudo-label; its probability is
Eq. 1's ICL term."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from torch import Tensor


@dataclass
class ICLOutput:
    """Probabilities in [0, 1] on the ICL model's own grid (None when not asked for)."""

    plain: Tensor | None = None  # without the confidence map
    with_map: Tensor | None = None  # with it


class ICLBackend(ABC):
    """One ICL model. A subclass names its variants: `plain_variant` (the model without the map; None
    when the model is made of the map) and `map_variant` (with the map). `weights` says in words
    which weights it runs; `notes` what of the paper does not apply to it; `default_sam_steering` whether, by
    default, the map steers SAM's decoder (Eq. 3) in the fused prediction (the paper: yes)."""

    name: ClassVar[str]
    plain_variant: ClassVar[str | None]
    map_variant: ClassVar[str]
    notes: ClassVar[tuple[str, ...]] = ()
    # whether SAM's decoder in the fused prediction is steered by the map (Eq. 3) by default
    default_sam_steering: ClassVar[bool] = True
    # whether the confident-box filter (box_confidence) reads this model's own probability instead of
    # Eq. 2's map (for a model that is not made of the map and not steered by it)
    boxes_from_own_probability: ClassVar[bool] = False
    weights: str

    @property
    def variants(self) -> tuple[str, ...]:
        """Its variants in the order of the paper's ablation rows."""
        return tuple(v for v in (self.plain_variant, self.map_variant) if v is not None)

    def settings(self) -> tuple:
        """What, besides the support set's content, its prepared support state depends on."""
        return ()

    def prepare(self, images: Sequence[np.ndarray], masks: Sequence[np.ndarray]) -> object:
        """Work that depends on the (checked) support set alone, done once and shared by its queries."""
        return None

    @abstractmethod
    def predict(
        self,
        prepared: object,
        query: np.ndarray,
        confidence: Tensor | None,
        alpha: float,
        plain: bool = True,
        with_map: bool = True,
    ) -> ICLOutput:
        """The query's probabilities. `confidence`: the query's confidence map on SAM's valid token grid
        (needed for `with_map`); `alpha`: Eq. 4's weight at this support size."""

    def predict_batch(
        self,
        prepared: object,
        queries: Sequence[np.ndarray],
        confidences: Sequence[Tensor | None],
        alpha: float,
        plain: bool = True,
        with_map: bool = True,
    ) -> list[ICLOutput]:
        """`predict` for several queries of one support set (a model may run them as one batch; the
        default runs them one at a time)."""
        return [self.predict(prepared, q, c, alpha, plain, with_map) for q, c in zip(queries, confidences)]
