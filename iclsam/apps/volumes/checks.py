"""What `segment_volume` is handed, checked (one clear error, nothing done), and the scan's one
intensity window."""

from __future__ import annotations

import numpy as np


def check_volume(volume, name: str = "volume") -> np.ndarray:
    x = np.asarray(volume)
    if x.ndim != 3:
        raise ValueError(f"{name}: a volume must be 3-D, got shape {x.shape}")
    if x.dtype == bool or not np.issubdtype(x.dtype, np.number):
        raise ValueError(f"{name}: volume has dtype {x.dtype}, expected numbers")
    if np.issubdtype(x.dtype, np.floating) and not np.isfinite(x).all():
        raise ValueError(f"{name}: volume contains NaN or infinite values")
    if min(x.shape) < 1 or min(sorted(x.shape)[1:]) < 8:
        raise ValueError(f"{name}: volume of shape {x.shape} is too small (slices of at least 8 x 8)")
    return x


def check_axis(axis: int, ndim: int = 3) -> int:
    if not isinstance(axis, (int, np.integer)) or not -ndim <= axis < ndim:
        raise ValueError(f"axis {axis!r} is out of range for a 3-D volume (0, 1 or 2)")
    return int(axis) % ndim


def check_annotations(
    annotations, shape: tuple[int, int], depth: int, name: str = "annotations"
) -> dict[int, np.ndarray]:
    """{slice index: H x W mask}: at least one slice, indices in range, masks of the slice's shape
    with zero and at most one other value (an empty annotated slice says "no target here")."""
    if not isinstance(annotations, dict) or not annotations:
        raise ValueError(f"{name}: no annotated slice; give at least one {{slice index: mask}}")
    checked = {}
    for index, mask in annotations.items():
        if not isinstance(index, (int, np.integer)) or not -depth <= index < depth:
            raise ValueError(f"{name}: slice index {index!r} is out of range (the volume has {depth} slices)")
        m = np.asarray(mask)
        if m.shape != tuple(shape):
            raise ValueError(f"{name}: the mask of slice {index} is {m.shape}, the slices are {tuple(shape)}")
        if np.issubdtype(m.dtype, np.floating) and not np.isfinite(m).all():
            raise ValueError(f"{name}: the mask of slice {index} contains NaN or infinite values")
        values = np.unique(m)
        if len(values) > 2 or (len(values) == 2 and values[0] != 0):
            raise ValueError(f"{name}: the mask of slice {index} is not binary (values {values[:5].tolist()})")
        checked[int(index) % depth] = m != 0
    return checked


def normalise_intensities(volume: np.ndarray) -> np.ndarray:
    """The whole scan to 0..255 (uint8) with one window, the 0.5-99.5 percentiles of its voxels (of
    its non-zero voxels when most are zero, as in skull-stripped MRI), so that every slice is seen
    with the same contrast."""
    x = volume.astype(np.float32)
    values = x[x != 0] if (x != 0).mean() < 0.5 and (x != 0).any() else x.ravel()
    low, high = np.percentile(values, [0.5, 99.5])
    if high <= low:
        high = low + 1.0
    return np.round(np.clip((x - low) / (high - low), 0.0, 1.0) * 255.0).astype(np.uint8)
