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


def surface(mask: np.ndarray) -> np.ndarray:
    """Boundary pixels: the mask minus its erosion (3x3), so every nonempty mask has a surface."""
    return mask & ~ndimage.binary_erosion(mask, np.ones((3, 3), dtype=bool), border_value=0)


def assd(prediction: np.ndarray, target: np.ndarray, spacing: tuple[float, float] = (1.0, 1.0)) -> float:
    """Mean over both surfaces of the distance from each surface pixel to the other surface.
    0.0 when both masks are empty; NaN when exactly one is (no distance is defined)."""
    p, t = np.asarray(prediction, dtype=bool), np.asarray(target, dtype=bool)
    if p.shape != t.shape:
        raise ValueError(f"prediction {p.shape} and target {t.shape} differ in shape")
    if not p.any() and not t.any():
        return 0.0
    if not p.any() or not t.any():
        return float("nan")
    sp, st = surface(p), surface(t)
    to_t = ndimage.distance_transform_edt(~st, sampling=spacing)
    to_p = ndimage.distance_transform_edt(~sp, sampling=spacing)
    return float((to_t[sp].sum() + to_p[st].sum()) / (sp.sum() + st.sum()))
