"""Weak context: support masks from boxes or points (ICLSAM.densify), and the weak annotations a
mask implies."""

import numpy as np
import pytest

from iclsam.densify import boxes_from_mask, points_from_mask
from iclsam.metrics import dice
from tests.conftest import ellipse, textured_image

SHAPE = (96, 128)


def two_blobs():
    mask = ellipse(SHAPE, (30, 35), (14, 20)) | ellipse(SHAPE, (65, 95), (12, 16))
    return textured_image(mask, seed=3), mask


def test_weak_annotations_of_a_mask():
    _, mask = two_blobs()
    boxes = boxes_from_mask(mask)
    assert len(boxes) == 2
    for x0, y0, x1, y1 in boxes:  # tight: the box's border rows and columns touch the mask
        inside = mask[y0:y1 + 1, x0:x1 + 1]
        assert inside[0].any() and inside[-1].any() and inside[:, 0].any() and inside[:, -1].any()
    points = points_from_mask(mask)
    assert sorted(map(tuple, points)) == [(35.0, 30.0), (95.0, 65.0)]  # the centres of the two ellipses


@pytest.mark.parametrize("kind", ["boxes", "points"])
def test_densify_recovers_the_masks(features_model, kind):
    image, mask = two_blobs()
    weak = boxes_from_mask(mask) if kind == "boxes" else points_from_mask(mask)
    (dense,) = features_model.densify([image], **{kind: [weak]})
    assert dense.shape == SHAPE and dense.dtype == bool
    assert dice(dense, mask) > 0.8


def test_densify_bad_input_is_a_clear_error(features_model):
    image, mask = two_blobs()
    with pytest.raises(ValueError, match="either boxes or points"):
        features_model.densify([image])
    with pytest.raises(ValueError, match="not inside"):
        features_model.densify([image], boxes=[[[0, 0, 200, 20]]])
    with pytest.raises(ValueError, match="no point"):
        features_model.densify([image], points=[np.zeros((0, 2))])
    with pytest.raises(ValueError, match="outside"):
        features_model.densify([image], points=[[[-3, 5]]])
    with pytest.raises(ValueError, match="2 annotation lists"):
        features_model.densify([image], boxes=[boxes_from_mask(mask)] * 2)
    with pytest.raises(ValueError, match="at least one support image"):
        features_model.densify([], boxes=[])
