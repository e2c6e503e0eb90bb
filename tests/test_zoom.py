"""The second look at small targets (`iclsam.zoom`, not in the paper): the window's geometry, and the
refinement checked against the same crops segmented by hand with the public API."""

import numpy as np
import pytest
from conftest import ellipse, textured_image

from iclsam import ICLSAM, ICLSAMConfig
from iclsam.metrics import dice
from iclsam.zoom import ZOOM_AGREEMENT, ZOOM_MIN_SIDE, is_small, target_window


def test_the_window_is_a_square_zoom_times_the_target_centred_on_it():
    mask = np.zeros((200, 300), dtype=bool)
    mask[90:110, 140:150] = True  # 20 x 10: the longer side is 20
    rows, cols = target_window(mask, 3.0, min_side=0.0)
    assert rows.stop - rows.start == cols.stop - cols.start == 60
    assert (rows.start + rows.stop) / 2 == pytest.approx(100, abs=1)  # the box's centre
    assert (cols.start + cols.stop) / 2 == pytest.approx(145, abs=1)
    assert mask[rows, cols].sum() == mask.sum()


def test_the_window_is_shifted_inside_the_image_and_cut_to_it():
    mask = np.zeros((100, 400), dtype=bool)
    mask[0:30, 380:400] = True  # in the top-right corner; 3 x 30 = 90 fits the rows, not centred
    rows, cols = target_window(mask, 3.0, min_side=0.0)
    assert (rows.start, rows.stop, cols.stop) == (0, 90, 400) and cols.stop - cols.start == 90
    rows, _ = target_window(mask, 5.0, min_side=0.0)  # 150 rows do not fit: the image's 100
    assert (rows.start, rows.stop) == (0, 100)
    assert target_window(np.zeros((50, 50), dtype=bool), 3.0) is None


def test_a_speck_gets_the_minimum_window_and_only_small_windows_count():
    mask = np.zeros((500, 500), dtype=bool)
    mask[250, 250] = True
    rows, cols = target_window(mask, 3.0)
    assert rows.stop - rows.start == int(np.ceil(ZOOM_MIN_SIDE * 500))
    assert is_small((rows, cols), mask.shape)
    assert not is_small((slice(0, 400), slice(0, 100)), mask.shape)  # one side over 60 % of 500


def test_zoom_is_validated():
    assert ICLSAMConfig().zoom is None  # off unless asked for
    with pytest.raises(ValueError, match="zoom"):
        ICLSAMConfig(zoom=0.5)


def _scene(seed: int, centre, radii, shape=(256, 256)):
    mask = ellipse(shape, centre, radii)
    return textured_image(mask, seed), mask


def test_a_small_target_is_segmented_again_in_its_window_as_the_crops_alone_would_be(features_model):
    """The zoomed model's mask is, inside the window, the plain model's mask of the crops (the query
    cropped to its window, each support image to its own), and empty outside; the other variants
    are the first pass's."""
    supports = [_scene(s, c, r) for s, c, r in ((1, (80, 90), (14, 10)), (2, (170, 150), (12, 16)))]
    query, truth = _scene(3, (120, 170), (13, 12))
    plain = ICLSAM(sam=features_model.sam, icl="features")
    zoomed = ICLSAM(sam=features_model.sam, icl="features", zoom=3.0)
    images, masks = [x for x, _ in supports], [y for _, y in supports]
    first = plain.predict(images, masks, query, truth)
    second = zoomed.predict(images, masks, query, truth)
    window = target_window(first.masks["iclsam"], 3.0)
    assert window is not None and is_small(window, query.shape)
    crops = [target_window(y, 3.0) for y in masks]
    by_hand = plain.predict([x[w] for x, w in zip(images, crops)], [y[w] for y, w in zip(masks, crops)], query[window])
    expected = np.zeros_like(truth)
    expected[window] = by_hand.masks["iclsam"]
    assert dice(expected, first.masks["iclsam"]) >= ZOOM_AGREEMENT  # so the crop's mask is taken
    np.testing.assert_array_equal(second.masks["iclsam"], expected)
    for name in ("features", "sam", "sam+conf", "sam+gt"):
        np.testing.assert_array_equal(second.masks[name], first.masks[name])
    assert any(note.startswith("zoom: re-segmented") for note in second.notes)


def test_a_large_target_keeps_the_first_pass(features_model):
    supports = [_scene(s, (128, 128), (90, 100)) for s in (4, 5)]
    query, truth = _scene(6, (130, 125), (95, 100))
    images, masks = [x for x, _ in supports], [y for _, y in supports]
    first = ICLSAM(sam=features_model.sam, icl="features").predict(images, masks, query, truth)
    second = ICLSAM(sam=features_model.sam, icl="features", zoom=3.0).predict(images, masks, query, truth)
    np.testing.assert_array_equal(second.masks["iclsam"], first.masks["iclsam"])
    np.testing.assert_array_equal(second.score, first.score)
    assert not any(note.startswith("zoom") for note in second.notes)
