"""The shapes and textures the synthetic benchmark is drawn with: coordinate grids, ellipses, rough
blobs, smooth fields and fine texture, each from a seeded generator."""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def grid(shape):
    yy, xx = np.mgrid[: shape[0], : shape[1]].astype(np.float64)
    return yy / shape[0], xx / shape[1]


def ellipse(shape, cy, cx, ry, rx, angle=0.0):
    y, x = grid(shape)
    c, s = np.cos(angle), np.sin(angle)
    u, v = (x - cx) * c + (y - cy) * s, -(x - cx) * s + (y - cy) * c
    return (u / rx) ** 2 + (v / ry) ** 2


def blob(rng, shape, cy, cx, radius, roughness=0.35):
    """An irregular blob: an ellipse whose boundary is perturbed by smooth noise."""
    field = ndimage.gaussian_filter(rng.standard_normal(shape), sigma=min(shape) * radius * 0.5)
    field /= np.abs(field).max() + 1e-9
    r = ellipse(shape, cy, cx, radius * rng.uniform(0.7, 1.3), radius * rng.uniform(0.7, 1.3), rng.uniform(0, np.pi))
    return r + roughness * field < 1


def smooth_field(rng, shape, sigma_fraction=0.25):
    f = ndimage.gaussian_filter(rng.standard_normal(shape), sigma=min(shape) * sigma_fraction)
    return f / (np.abs(f).max() + 1e-9)


def texture(rng, shape, sigma=1.5):
    t = ndimage.gaussian_filter(rng.standard_normal(shape), sigma)
    return t / (t.std() + 1e-9)
