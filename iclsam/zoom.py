"""Not in the paper: a second look at a small target. When the fused mask (Eq. 1) of the first
pass fits in a window well inside the image, the query is cropped to that window, the support
images to windows of the same relative size around their own targets, and Figure 1 runs again on
the crops: SAM's encoder then spends its 64 x 64 tokens on the target and its surroundings instead
of the whole scan. The crop's fused mask replaces the first one inside the window.

`ICLSAM(zoom=3.0)`: windows `zoom` times the target's extent (the first pass's mask for the query,
the true mask for a support image), at least `ZOOM_MIN_SIDE` of the image's longer side, used
only when the query's window is at most `ZOOM_MAX_SIDE` of its shorter side."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .figure1 import fused_prediction
from .metrics import dice

if TYPE_CHECKING:
    from .figure1 import QueryState
    from .model import ICLSAM
    from .support import SupportSet

ZOOM_MIN_SIDE = 0.2  # of the image's longer side: a speck is not blown up to SAM's whole input
ZOOM_MAX_SIDE = 0.6  # of the image's shorter side: larger targets keep the first pass
ZOOM_AGREEMENT = 0.5  # the crop's mask replaces the first only at this Dice with it: a refinement, not a new find

Window = tuple[slice, slice]


def target_window(mask: np.ndarray, zoom: float, min_side: float = ZOOM_MIN_SIDE) -> Window | None:
    """A square window centred on the bounding box of `mask`'s pixels, `zoom` times its longer
    side and at least `min_side` of the image's longer side, shifted to lie inside the image (and
    cut to it where the image is narrower). None for an empty mask."""
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    if not len(rows):
        return None
    extent = max(rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1)
    side = int(np.ceil(max(zoom * extent, min_side * max(mask.shape))))
    window = []
    for low, high, size in ((rows[0], rows[-1], mask.shape[0]), (cols[0], cols[-1], mask.shape[1])):
        length = min(side, size)
        start = int(np.clip(round((low + high + 1) / 2 - length / 2), 0, size - length))
        window.append(slice(start, start + length))
    return tuple(window)


def is_small(window: Window, shape: tuple[int, int], max_side: float = ZOOM_MAX_SIDE) -> bool:
    """Whether a window is small enough to be worth a second look: both sides at most `max_side` of
    the image's shorter side."""
    limit = max_side * min(shape)
    return all(s.stop - s.start <= limit for s in window)


def zoomed_support(model: ICLSAM, support: SupportSet, zoom: float) -> SupportSet:
    """The support set cropped around each image's own target (`target_window`); an image without
    target stays whole. Prepared once per support set (`ICLSAM.support_set`'s cache)."""
    images, masks = [], []
    for image, mask in zip(support.images, support.masks):
        window = target_window(mask, zoom)
        images.append(image if window is None else image[window])
        masks.append(mask if window is None else mask[window])
    return model.support_set(images, masks)


def zoom_refinement(model: ICLSAM, support: SupportSet, state: QueryState) -> None:
    """Step 7 (not in the paper): Figure 1's steps 1-5 again on the crops, when the first fused
    mask is small (`is_small`); the crop's fused mask and score replace the first ones inside the
    window, when the two agree (Dice at least `ZOOM_AGREEMENT`); otherwise the first pass stands."""
    zoom = model.config.zoom
    if zoom is None or "iclsam" not in state.masks or state.fused is None:
        return
    window = target_window(state.masks["iclsam"], zoom)
    if window is None or not is_small(window, state.size):
        return
    crops = zoomed_support(model, support, zoom)
    inner = model.query_state(crops, state.query[window], None, {"iclsam"})
    inner.fixed_fusion = state.fixed_fusion
    fused_prediction(model, crops, inner)
    mask, fused = np.zeros_like(state.masks["iclsam"]), state.fused.clone()
    mask[window], fused[window] = inner.masks["iclsam"], inner.fused
    agreement = dice(mask, state.masks["iclsam"])
    if agreement < ZOOM_AGREEMENT:
        state.notes.append(
            f"zoom: the crop's mask agrees with the first at Dice {agreement:.2f}; the first pass stands"
        )
        return
    state.masks["iclsam"], state.fused = mask, fused
    rows, cols = window
    state.notes.append(f"zoom: re-segmented in rows {rows.start}-{rows.stop}, columns {cols.start}-{cols.stop}")
