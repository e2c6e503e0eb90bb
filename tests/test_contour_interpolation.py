"""3D Slicer's "fill between slices" (morphological contour interpolation, issue 43): a disc that
moves between two annotated slices is followed, disc-shaped, along the straight line between its
two centres, where signed-distance interpolation blends it into a smaller lens; the annotated
slices stay as given and nothing is added outside their range."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import ellipse
from scipy import ndimage

from iclsam import segment_volume
from iclsam.apps.volumes.contour_interpolation import contour_interpolation

pytest.importorskip("itk")


def test_a_moving_disc_is_followed_along_the_line_between_its_centres():
    first, last = ellipse((48, 60), (24, 18), (9, 9)), ellipse((48, 60), (24, 36), (9, 9))
    out = contour_interpolation({2: first, 8: last}, 12)
    assert np.array_equal(out[2], first) and np.array_equal(out[8], last)
    assert not out[:2].any() and not out[9:].any()  # nothing outside the annotated range
    centres = []
    for z in range(3, 8):
        t = (z - 2) / 6
        cy, cx = ndimage.center_of_mass(out[z])
        assert abs(cy - 24) <= 1 and abs(cx - (18 + 18 * t)) <= 2.5, (z, cy, cx)  # near the straight line
        assert 0.9 * first.sum() <= out[z].sum() <= 1.1 * first.sum(), (z, out[z].sum())  # a whole disc
        centres.append(cx)
    assert centres == sorted(centres)  # moving one way
    blended = segment_volume(
        None, np.zeros((48, 60, 12), np.float32), {2: first, 8: last}, axis=0 + 2, method="interpolation"
    )
    assert blended.mask[..., 5].sum() < 0.7 * first.sum()  # the signed-distance blend shrinks half way


def test_segment_volume_runs_it_on_any_axis_and_keeps_an_empty_annotation():
    first, last = ellipse((40, 40), (20, 20), (8, 8)), ellipse((40, 40), (20, 20), (12, 12))
    volume = np.zeros((40, 40, 10), np.float32)
    result = segment_volume(
        None, volume, {1: first, 6: last, 8: np.zeros((40, 40), bool)}, method="contour-interpolation"
    )
    assert result.record["method"] == "contour-interpolation"
    areas = result.mask.reshape(-1, 10).sum(axis=0)
    assert areas[1] == first.sum() and areas[6] == last.sum() and areas[8] == 0 and areas[9] == 0
    assert all(first.sum() <= a <= last.sum() for a in areas[2:6])  # growing from one disc to the other
    moved = segment_volume(None, np.moveaxis(volume, 2, 0), {1: first, 6: last}, axis=0, method="contour-interpolation")
    assert np.array_equal(np.moveaxis(moved.mask, 0, 2)[..., :8], result.mask[..., :8])
