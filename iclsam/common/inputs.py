"""Checks on what users hand us. Every error names the offending input (a file path when there is
one) and what is wrong with it."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def check_image(image, name: str) -> np.ndarray:
    """An image is H x W or H x W x 3 (H x W x 1 is taken as grey), finite, at least 8 x 8."""
    x = np.asarray(image)
    if x.ndim == 3 and x.shape[2] == 1:
        x = x[..., 0]
    if x.ndim not in (2, 3) or (x.ndim == 3 and x.shape[2] != 3):
        raise ValueError(f"{name}: an image must be H x W or H x W x 3, got shape {x.shape}")
    if min(x.shape[:2]) < 8:
        raise ValueError(f"{name}: image of {x.shape[0]} x {x.shape[1]} pixels is too small (at least 8 x 8)")
    if x.dtype == bool or not np.issubdtype(x.dtype, np.number):
        raise ValueError(f"{name}: image has dtype {x.dtype}, expected numbers")
    if np.issubdtype(x.dtype, np.floating) and not np.isfinite(x).all():
        raise ValueError(f"{name}: image contains NaN or infinite values")
    check_float32_range(x, name)
    return x


FLOAT32_MAX = float(np.finfo(np.float32).max)


def check_float32_range(x: np.ndarray, name: str) -> None:
    """The models compute in float32: values (and their range, which normalisation divides by)
    beyond float32's largest number would become infinite there and NaN after."""
    if not np.issubdtype(x.dtype, np.floating) or x.size == 0:
        return  # integers of any width fit float32's range
    low, high = float(x.min()), float(x.max())
    if max(abs(low), abs(high), high - low) > FLOAT32_MAX:
        raise ValueError(
            f"{name}: image values span {low:.3g} to {high:.3g}, beyond float32's range "
            f"(+-{FLOAT32_MAX:.3g}) in which the models compute; rescale the image"
        )


def check_mask(mask, shape: tuple[int, int], name: str) -> np.ndarray:
    """A mask is H x W of the image's size, binary (zero and one other value), with some target.
    Returns it as bool."""
    x = np.asarray(mask)
    if x.ndim != 2:
        raise ValueError(f"{name}: a mask must be H x W, got shape {x.shape}")
    if x.shape != tuple(shape):
        raise ValueError(f"{name}: mask is {x.shape[0]} x {x.shape[1]} but its image is {shape[0]} x {shape[1]}")
    if np.issubdtype(x.dtype, np.floating) and not np.isfinite(x).all():
        raise ValueError(f"{name}: mask contains NaN or infinite values")
    values = np.unique(x)
    if len(values) > 2 or (len(values) == 2 and values[0] != 0):
        shown = ", ".join(str(v) for v in values[:5]) + (" ..." if len(values) > 5 else "")
        raise ValueError(f"{name}: mask is not binary (values {shown}); expected 0 and one target value")
    if not (x != 0).any():
        raise ValueError(f"{name}: mask is empty (no target pixel)")
    return x != 0


def check_support(
    images: Sequence, masks: Sequence, names: Sequence[str] | None = None
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The support set: as many masks as images, at least one pair, each pair checked."""
    images, masks = list(images), list(masks)
    if not images:
        raise ValueError("the support set is empty: give at least one image with its mask")
    if len(images) != len(masks):
        raise ValueError(f"the support set has {len(images)} images but {len(masks)} masks")
    names = list(names) if names is not None else [f"support {i}" for i in range(len(images))]
    checked_images = [check_image(x, name) for x, name in zip(images, names)]
    checked_masks = [check_mask(y, x.shape[:2], name) for x, y, name in zip(checked_images, masks, names)]
    return checked_images, checked_masks


def check_queries(query_images: Sequence, query_masks: Sequence | None) -> tuple[list, list]:
    """The queries and their masks (None: none), every one checked before any work."""
    query_images = list(query_images)
    query_masks = [None] * len(query_images) if query_masks is None else list(query_masks)
    if len(query_masks) != len(query_images):
        raise ValueError(f"{len(query_images)} query images but {len(query_masks)} query masks")
    for i, (x, y) in enumerate(zip(query_images, query_masks)):
        image = check_image(x, f"query image {i}")
        if y is not None:
            check_mask(y, image.shape[:2], f"query mask {i}")
    return query_images, query_masks
