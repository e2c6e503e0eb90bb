import numpy as np
import pytest

from iclsam.method.prompts import boxes_from_components, boxes_from_pseudo_label, shrink_pseudo_label


def test_empty_masks_give_no_boxes():
    assert boxes_from_pseudo_label(np.zeros((20, 20), bool)).shape == (0, 4)
    assert boxes_from_components(np.zeros((20, 20), bool)).shape == (0, 4)


def test_a_rectangle_gives_its_tight_inclusive_box():
    mask = np.zeros((50, 60), bool)
    mask[10:30, 5:45] = True
    np.testing.assert_array_equal(boxes_from_pseudo_label(mask), [[5, 10, 44, 29]])


def test_components_are_four_connected_and_the_five_percent_rule_holds():
    mask = np.zeros((100, 100), bool)
    mask[10:30, 10:30] = True  # 400 px, the largest
    mask[50:55, 50:55] = True  # 25 px > 5 % of 400: kept
    mask[80:83, 80:86] = True  # 18 px < 20: dropped
    mask[30, 30] = True  # touches the largest only diagonally: its own 1-px component
    boxes = boxes_from_components(mask)
    np.testing.assert_array_equal(boxes, [[10, 10, 29, 29], [50, 50, 54, 54]])


def test_shrinking_cuts_thin_bridges_and_keeps_blobs():
    mask = np.zeros((60, 100), bool)
    mask[10:50, 5:40] = True
    mask[10:50, 60:95] = True
    mask[29:31, 40:60] = True  # a 2-px bridge joins the two blobs into one component
    assert len(boxes_from_components(mask)) == 1
    shrunk = shrink_pseudo_label(mask)
    assert not shrunk[29:31, 45:55].any()
    boxes = boxes_from_pseudo_label(mask)
    assert len(boxes) == 2
    np.testing.assert_array_equal(sorted(boxes.tolist()), [[5, 10, 39, 49], [60, 10, 94, 49]])


def test_shrinking_stops_once_ten_percent_is_gone():
    mask = np.zeros((200, 200), bool)
    mask[20:180, 20:180] = True  # 160 x 160; each 3x3 erosion takes a 1-px ring
    shrunk = shrink_pseudo_label(mask)
    # 1 step: 158^2 = 97.5 %, ..., 4 steps: 152^2 = 90.25 %, 5 steps: 150^2 = 87.9 % -> stop; dilate back
    np.testing.assert_array_equal(shrunk, mask)


def test_a_mask_erosion_would_remove_is_kept():
    mask = np.zeros((20, 20), bool)
    mask[5, 2:18] = True  # a 1-px line
    np.testing.assert_array_equal(shrink_pseudo_label(mask), mask)
    np.testing.assert_array_equal(boxes_from_pseudo_label(mask), [[2, 5, 17, 5]])


def test_confident_boxes_keep_the_confident_ones_or_the_best():
    from iclsam.method.prompts import confident_boxes

    confidence = np.zeros((40, 60))
    confidence[5:10, 5:10] = 0.97  # inside the first box
    confidence[30:32, 40:42] = 0.6  # inside the second
    boxes = np.array([[4, 4, 12, 12], [38, 28, 45, 35], [50, 0, 59, 3]])
    np.testing.assert_array_equal(confident_boxes(boxes, confidence, 0.95), boxes[:1])
    np.testing.assert_array_equal(confident_boxes(boxes, confidence, 0.5), boxes[:2])
    np.testing.assert_array_equal(confident_boxes(boxes, confidence, 0.99), boxes[:1])  # none reaches: the best
    confidence[1, 55] = 0.999  # a peak on the third box's last row and column (inclusive)
    np.testing.assert_array_equal(confident_boxes(boxes, confidence, 0.99), boxes[2:])
    assert confident_boxes(np.zeros((0, 4)), confidence).shape == (0, 4)


def test_box_min_area_keeps_the_regions_above_that_fraction_of_the_largest():
    """Three square regions of 400, 100 and 36 pixels (25 % and 9 % of the largest): each fraction
    keeps exactly the regions whose area, counted here, exceeds it; the model takes it from its config."""
    mask = np.zeros((80, 80), dtype=bool)
    mask[5:25, 5:25] = True  # 400
    mask[40:50, 40:50] = True  # 100
    mask[65:71, 65:71] = True  # 36
    for fraction in (0.05, 0.2, 0.5):
        expected = sum(area > fraction * 400 for area in (400, 100, 36)) or 1
        assert len(boxes_from_pseudo_label(mask, fraction)) == expected, fraction
    assert len(boxes_from_pseudo_label(mask)) == 3  # the paper's 5 %
    from iclsam import ICLSAMConfig

    assert ICLSAMConfig().box_min_area == 0.2  # not the paper's: the ten-set rule (docs/false-regions.md)
    with pytest.raises(ValueError, match="box_min_area"):
        ICLSAMConfig(box_min_area=1.5)
