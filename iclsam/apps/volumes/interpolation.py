"""The baseline: "fill between slices" as 3D Slicer and ITK-SNAP do it, signed-distance shape
interpolation between consecutive annotated slices. Nothing is predicted outside the annotated
range; towards an empty annotated slice the shape shrinks (its signed distance lowered evenly) and
vanishes there."""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def signed_distance(mask: np.ndarray) -> np.ndarray:
    """Distance to the mask's boundary, positive inside and negative outside (pixels); a slice with
    no target is far outside everywhere."""
    mask = mask.astype(bool)
    if not mask.any():
        return np.full(mask.shape, -float(sum(mask.shape)))
    if mask.all():
        return np.full(mask.shape, float(sum(mask.shape)))
    inside = ndimage.distance_transform_edt(mask)
    outside = ndimage.distance_transform_edt(~mask)
    return np.where(mask, inside - 0.5, -(outside - 0.5))


def blend_shapes(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    """(1 - t) * signed_distance(a) + t * signed_distance(b) > 0, with the distances computed only in
    the bounding box of a | b grown by a pixel: the same result, since inside that box both distances
    are exact (every target pixel and a ring of background lie in it) and outside it both are
    negative."""
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    union = a | b
    out = np.zeros(a.shape, bool)
    if not union.any():
        return out
    rows, cols = ndimage.find_objects(union.astype(np.uint8))[0]  # the union's bounding box
    box = (slice(max(rows.start - 1, 0), rows.stop + 1), slice(max(cols.start - 1, 0), cols.stop + 1))
    far = -float(sum(a.shape))  # signed_distance of an empty slice, on the whole slice's scale
    da = signed_distance(a[box]) if a.any() else far
    db = signed_distance(b[box]) if b.any() else far
    out[box] = (1.0 - t) * da + t * db > 0
    return out


def interpolate_slices(annotations: dict[int, np.ndarray], depth: int) -> np.ndarray:
    """Masks for slices 0 .. depth - 1 (depth x H x W): the annotated slices as given; between two
    consecutive annotated slices a and b, slice z is where (1 - t) * d_a + t * d_b > 0 with
    t = (z - a) / (b - a) and d the signed distances; empty outside the annotated range."""
    if not annotations:
        raise ValueError("interpolation needs at least one annotated slice")
    indices = sorted(annotations)
    shape = np.asarray(annotations[indices[0]]).shape
    out = np.zeros((depth, *shape), dtype=bool)
    for k in indices:
        out[k] = np.asarray(annotations[k]).astype(bool)
    for a, b in zip(indices[:-1], indices[1:]):
        if b - a < 2:
            continue
        da, db = signed_distance(out[a]), signed_distance(out[b])
        if not out[a].any() or not out[b].any():  # towards an empty slice the shape shrinks to nothing
            depth_of = (da.max() if out[a].any() else db.max()) / (b - a)  # gone just before the empty slice
            da, db = (da, np.full_like(db, -depth_of)) if out[a].any() else (np.full_like(da, -depth_of), db)
        for z in range(a + 1, b):
            t = (z - a) / (b - a)
            out[z] = (1.0 - t) * da + t * db > 0
    return out
