"""A volume's result made consistent in 3-D: the connected components that touch the annotations,
a blend with the interpolation between annotated slices, no hole that the interpolation would fill."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from iclsam.apps.volumes.interpolation import blend_shapes


def keep_connected_to_annotations(mask: np.ndarray, annotated: np.ndarray) -> tuple[np.ndarray, int]:
    """The 3-D connected components (6-connected) that touch an annotated target voxel; without any,
    the largest component. Returns the mask and how many components were dropped."""
    labels, count = ndimage.label(mask)
    if count <= 1:
        return mask, 0
    keep = set(np.unique(labels[annotated & mask])) - {0}
    if not keep:
        sizes = ndimage.sum(mask, labels, range(1, count + 1))
        keep = {int(np.argmax(sizes)) + 1}
    return np.isin(labels, sorted(keep)), count - len(keep)


def blend_between_annotations(mask: np.ndarray, positive: Sequence[int], interpolated: np.ndarray) -> np.ndarray:
    """Between two annotated slices the interpolation is good near them and ICL-SAM in the middle:
    slice z takes (1 - w) d_interpolation + w d_iclsam > 0 (signed distances), w = 2 min(z - a, b - z)
    / (b - a), 0 at an annotated slice, 1 half way. `positive`: the annotated slices holding the
    target, sorted; `interpolated`: `interpolate_slices` between them."""
    for a, b in zip(positive[:-1], positive[1:]):
        for z in range(a + 1, b):
            w = min(1.0, 2.0 * min(z - a, b - z) / (b - a))
            mask[z] = blend_shapes(interpolated[z], mask[z], w)
    return mask


def fill_between_annotations(
    mask: np.ndarray, positive: Sequence[int], interpolated: np.ndarray
) -> tuple[np.ndarray, list[int]]:
    """A slice between two annotated slices that both hold the target, left empty, takes the
    interpolation's mask: there is no hole that "fill between slices" would fill."""
    filled = []
    for a, b in zip(positive[:-1], positive[1:]):
        for z in range(a + 1, b):
            if not mask[z].any() and interpolated[z].any():
                mask[z] = interpolated[z]
                filled.append(z)
    return mask, filled
