"""Volume metrics in millimetres: 3-D Dice, and the surface distances as medpy's `assd` and `hd95`
with `voxelspacing` (surfaces by erosion with a cross; the distances from each surface voxel of
either mask to the other mask's surface, pooled)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import ndimage

from iclsam.common.metrics import dice


def surface_distances(prediction: np.ndarray, target: np.ndarray, spacing: Sequence[float]) -> np.ndarray:
    """Both ways' surface-to-surface distances (mm), pooled; both masks non-empty. The distance
    transforms run on the box around both surfaces (the same distances as on the whole volume)."""
    cross = ndimage.generate_binary_structure(prediction.ndim, 1)
    sp = prediction & ~ndimage.binary_erosion(prediction, cross, border_value=0)
    st = target & ~ndimage.binary_erosion(target, cross, border_value=0)
    box = tuple(slice(i.min(), i.max() + 1) for i in np.nonzero(sp | st))
    sp, st = sp[box], st[box]
    to_t = ndimage.distance_transform_edt(~st, sampling=spacing)
    to_p = ndimage.distance_transform_edt(~sp, sampling=spacing)
    return np.concatenate([to_t[sp], to_p[st]])


def volume_metrics(prediction: np.ndarray, target: np.ndarray, spacing: Sequence[float]) -> dict[str, float]:
    """dice, assd and hd95 (mm) of a 3-D prediction against its target. Both empty: Dice 1 and
    distances 0; exactly one empty: the distances are NaN (undefined)."""
    p, t = np.asarray(prediction, dtype=bool), np.asarray(target, dtype=bool)
    if p.shape != t.shape:
        raise ValueError(f"prediction {p.shape} and target {t.shape} differ in shape")
    if len(spacing) != p.ndim:
        raise ValueError(f"spacing {tuple(spacing)} does not give one value per axis of {p.shape}")
    out = {"dice": dice(p, t)}
    if not p.any() and not t.any():
        return {**out, "assd": 0.0, "hd95": 0.0}
    if not p.any() or not t.any():
        return {**out, "assd": float("nan"), "hd95": float("nan")}
    distances = surface_distances(p, t, spacing)
    return {**out, "assd": float(distances.mean()), "hd95": float(np.percentile(distances, 95))}


def slice_scores(prediction: np.ndarray, truth: np.ndarray, annotated: Sequence[int], axis: int = 2) -> pd.DataFrame:
    """Per slice along `axis` holding the target or a prediction: its distance (in slices) to the
    nearest annotated slice, the slice's Dice, and both areas in pixels."""
    p, t = np.moveaxis(prediction != 0, axis, 0), np.moveaxis(truth != 0, axis, 0)
    marks = np.asarray(sorted(annotated))
    rows = []
    for z in range(len(t)):
        area_p, area_t = int(p[z].sum()), int(t[z].sum())
        if not area_p and not area_t:
            continue
        overlap = int((p[z] & t[z]).sum())
        rows.append(
            {
                "slice": z,
                "distance": int(np.abs(marks - z).min()) if len(marks) else -1,
                "dice": 2.0 * overlap / (area_p + area_t),
                "truth_pixels": area_t,
                "predicted_pixels": area_p,
            }
        )
    return pd.DataFrame(rows)
