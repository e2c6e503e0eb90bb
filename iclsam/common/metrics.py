"""Dice and the average symmetric surface distance (ASSD, in pixels)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def dice(prediction: np.ndarray, target: np.ndarray) -> float:
    """2|P & T| / (|P| + |T|); 1.0 when both are empty."""
    p, t = np.asarray(prediction, dtype=bool), np.asarray(target, dtype=bool)
    if p.shape != t.shape:
        raise ValueError(f"prediction {p.shape} and target {t.shape} differ in shape")
    total = p.sum() + t.sum()
    return 1.0 if total == 0 else float(2.0 * (p & t).sum() / total)


CROSS = ndimage.generate_binary_structure(2, 1)  # 4-connected, as medpy's default


def surface(mask: np.ndarray) -> np.ndarray:
    """Boundary pixels: the mask minus its erosion by a cross (medpy's definition), so every
    nonempty mask has a surface."""
    return mask & ~ndimage.binary_erosion(mask, CROSS, border_value=0)


def assd(prediction: np.ndarray, target: np.ndarray, spacing: tuple[float, float] = (1.0, 1.0)) -> float:
    """The average symmetric surface distance as medpy's `assd` (the one most papers report; medpy 0.5:
    the distances from each surface pixel of either mask to the other mask's surface, pooled and
    averaged; surfaces by erosion with a cross).
    0.0 when both masks are empty; NaN when exactly one is (no distance is defined): tables report
    ASSD over non-empty predictions and count the empty ones beside it."""
    p, t = np.asarray(prediction, dtype=bool), np.asarray(target, dtype=bool)
    if p.shape != t.shape:
        raise ValueError(f"prediction {p.shape} and target {t.shape} differ in shape")
    if not p.any() and not t.any():
        return 0.0
    if not p.any() or not t.any():
        return float("nan")
    sp, st = surface(p), surface(t)
    # every distance is between two surface pixels, so the distance transforms need only the box
    # around both surfaces: the same distances, summed in the same order, as on the whole image
    rows, cols = np.nonzero(sp | st)
    box = slice(rows.min(), rows.max() + 1), slice(cols.min(), cols.max() + 1)
    sp, st = sp[box], st[box]
    to_t = ndimage.distance_transform_edt(~st, sampling=spacing)
    to_p = ndimage.distance_transform_edt(~sp, sampling=spacing)
    return float((to_t[sp].sum() + to_p[st].sum()) / (sp.sum() + st.sum()))
