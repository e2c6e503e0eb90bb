"""A small SYNTHETIC scan with its label volume, drawn from a seed: the bundled volume of the
pipeline's `volumes` stage and of the example notebook (no real data needed). A body outline, a
textured organ-like target whose cross-section grows, drifts and shrinks along the slice axis, a
look-alike structure that does not touch it, a smooth bias field and noise. Not a medical image:
results on it are labelled synthetic."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

SHAPE = (96, 96, 20)  # H x W x slices (the slice axis last, as nibabel loads an axial scan)
SPACING = (1.0, 1.0, 5.0)  # mm


def _field(rng: np.random.Generator, shape, sigma: float) -> np.ndarray:
    """Smooth noise in [-1, 1]."""
    f = ndimage.gaussian_filter(rng.standard_normal(shape), sigma)
    return f / (np.abs(f).max() + 1e-9)


def _ellipsoid(shape, centre, radii, drift=(0.0, 0.0)) -> np.ndarray:
    """(x - c)^2 / r^2 summed over the axes, the in-plane centre moving by `drift` (fractions of
    the side) from the first slice to the last."""
    h, w, d = shape
    y, x, z = np.meshgrid(np.arange(h) / h, np.arange(w) / w, np.arange(d) / d, indexing="ij")
    cy = centre[0] + drift[0] * (z - 0.5)
    cx = centre[1] + drift[1] * (z - 0.5)
    return ((y - cy) / radii[0]) ** 2 + ((x - cx) / radii[1]) ** 2 + ((z - centre[2]) / radii[2]) ** 2


def synthetic_volume(seed: int = 0, shape: tuple[int, int, int] = SHAPE) -> tuple[np.ndarray, np.ndarray, tuple]:
    """(image float32 H x W x D, label uint8 0/1, spacing in mm) for `seed`: the same seed gives the
    same arrays. The target spans about two thirds of the slices."""
    if len(shape) != 3 or min(shape) < 8:
        raise ValueError(f"a synthetic volume needs three sides of at least 8 voxels, got {shape}")
    rng = np.random.default_rng(seed)
    body = _ellipsoid(shape, (0.5, 0.5, 0.5), (0.45, 0.42, 10.0)) < 1
    centre = (rng.uniform(0.4, 0.55), rng.uniform(0.35, 0.5), rng.uniform(0.45, 0.55))
    radii = (rng.uniform(0.14, 0.2), rng.uniform(0.12, 0.18), rng.uniform(0.3, 0.36))
    drift = tuple(rng.uniform(-0.08, 0.08, 2))
    target = _ellipsoid(shape, centre, radii, drift) + 0.5 * _field(rng, shape, 3.0) < 1
    target &= body
    look_alike = _ellipsoid(shape, (0.55, 0.72, 0.45), (0.1, 0.08, 0.3)) + 0.3 * _field(rng, shape, 3.0) < 1
    look_alike &= body & ~ndimage.binary_dilation(target, iterations=3)
    image = 0.1 + 0.35 * body + 0.14 * target + 0.14 * look_alike
    image += 0.05 * ndimage.gaussian_filter(rng.standard_normal(shape), 1.0) / 0.25  # texture
    image *= 1.0 + 0.15 * _field(rng, shape, 12.0)  # bias field
    image += 0.05 * rng.standard_normal(shape)
    return image.astype(np.float32), target.astype(np.uint8), SPACING
