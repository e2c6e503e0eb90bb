"""Box prompts from the ICL pseudo-label (paper §2.5). Boxes are K x 4, XYXY, inclusive pixel
indices of the tight bounding box, largest component first."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

SQUARE = np.ones((3, 3), dtype=bool)
FOUR_CONNECTED = ndimage.generate_binary_structure(2, 1)
PAPER_MIN_FRACTION = 0.05  # §5: a further region's area must exceed this fraction of the largest's


def shrink_pseudo_label(mask: np.ndarray, keep_area: float = 0.9) -> np.ndarray:
    """Erode with a 3x3 square (at least once) while the area stays above `keep_area` of the
    original, then dilate the same number of times: thin bridges between blobs and specks vanish.
    A mask that erosion removes entirely is returned unchanged."""
    mask = np.asarray(mask, dtype=bool)
    area = mask.sum()
    eroded, steps = ndimage.binary_erosion(mask, SQUARE), 1
    while eroded.sum() > keep_area * area:
        eroded, steps = ndimage.binary_erosion(eroded, SQUARE), steps + 1
    if not eroded.any():
        return mask
    return ndimage.binary_dilation(eroded, SQUARE, iterations=steps)


def boxes_from_components(mask: np.ndarray, min_fraction: float = PAPER_MIN_FRACTION) -> np.ndarray:
    """A box for the largest 4-connected component and for every other component larger than
    `min_fraction` of it. An empty mask gives no boxes (0 x 4)."""
    labels, count = ndimage.label(np.asarray(mask, dtype=bool), structure=FOUR_CONNECTED)
    if count == 0:
        return np.zeros((0, 4), dtype=np.int64)
    areas = np.bincount(labels.ravel())[1:]
    order = np.argsort(-areas, kind="stable")
    kept = [i for i in order if areas[i] > min_fraction * areas[order[0]] or i == order[0]]
    slices = ndimage.find_objects(labels)
    return np.array(
        [[slices[i][1].start, slices[i][0].start, slices[i][1].stop - 1, slices[i][0].stop - 1] for i in kept],
        dtype=np.int64,
    )


def boxes_from_pseudo_label(mask: np.ndarray, min_fraction: float = PAPER_MIN_FRACTION) -> np.ndarray:
    """§5: shrink, then one box per kept component (`boxes_from_components`)."""
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return np.zeros((0, 4), dtype=np.int64)
    return boxes_from_components(shrink_pseudo_label(mask), min_fraction)


def confident_boxes(boxes: np.ndarray, confidence: np.ndarray, min_peak: float = 0.95) -> np.ndarray:
    """Not in the paper (our refinement, `ICLSAM(box_confidence=...)`): keeps the boxes whose peak
    semantic confidence (the map's maximum inside the box) is at least `min_peak`; when none
    reaches it, the box of the highest peak (the first of equal ones). Drops the boxes a pseudo-label
    puts around false-positive specks, which SAM would otherwise segment as well."""
    boxes = np.asarray(boxes, dtype=np.int64).reshape(-1, 4)
    if len(boxes) == 0:
        return boxes
    confidence = np.asarray(confidence)
    peaks = np.array([confidence[y0 : y1 + 1, x0 : x1 + 1].max() for x0, y0, x1, y1 in boxes])
    keep = peaks >= min_peak
    if not keep.any():
        keep = np.arange(len(boxes)) == int(np.argmax(peaks))
    return boxes[keep]
