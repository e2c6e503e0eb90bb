"""3D Slicer's own "fill between slices": morphological contour interpolation (Albu et al., IEEE TMI
2008), which Slicer's Segment Editor effect runs through ITK's `MorphologicalContourInterpolator`
(PyPI `itk-morphologicalcontourinterpolation`, the `volumes` extra). It matches each region of an
annotated slice with the overlapping regions of the next one and morphs between them, so a shape
that moves or splits is followed where signed-distance interpolation (`interpolation`) blends.
Like Slicer, nothing is added outside the annotated range; an annotated empty slice stays empty."""

from __future__ import annotations

import numpy as np

INSTALL = "pip install itk-morphologicalcontourinterpolation (or iclsam[volumes])"


def contour_interpolation(annotations: dict[int, np.ndarray], depth: int) -> np.ndarray:
    """Masks for slices 0 .. depth - 1 (depth x H x W) by morphological contour interpolation along
    the first axis between the annotated slices (given as they are)."""
    if not annotations:
        raise ValueError("contour interpolation needs at least one annotated slice")
    try:
        import itk
    except ImportError:
        raise ImportError(f"method 'contour-interpolation' needs ITK's contour interpolator: {INSTALL}") from None
    shape = np.asarray(next(iter(annotations.values()))).shape
    drawn = np.zeros((depth, *shape), np.uint8)
    for k, mask in annotations.items():
        drawn[k] = np.asarray(mask).astype(bool)
    out = drawn.astype(bool)
    if sum(m.any() for m in out) >= 2:  # one drawn slice: nothing to interpolate between
        image = itk.image_from_array(drawn)  # ITK's axes are the array's reversed: axis 2 is our first
        interpolator = itk.MorphologicalContourInterpolator.New(image)
        interpolator.SetAxis(2)
        interpolator.Update()
        out = itk.array_from_image(interpolator.GetOutput()) != 0
    for k, mask in annotations.items():  # the annotated slices exactly as given
        out[k] = np.asarray(mask).astype(bool)
    return out
