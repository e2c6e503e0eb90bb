"""Label maps: several labels in one pass. Binary input keeps today's path bit for bit; a label of a
label map is the same binary task segmented alone; the overlap rule and nested labels against
hand-built cases; a synthetic two-label image whose answer is known; bad input."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import ellipse

from iclsam.labels import is_label_map_set, resolve_overlaps, support_label_values


def two_label_case(seed: int, shape=(96, 96)):
    """A noisy image with a bright disc (label 1) and a darker square (label 2), both on a mid-grey
    background; the label map marks them."""
    rng = np.random.default_rng(seed)
    disc = ellipse(shape, (rng.integers(25, 40), rng.integers(25, 40)), (12, 14))
    square = np.zeros(shape, bool)
    y, x = rng.integers(55, 70, 2)
    square[y : y + 18, x : x + 18] = True
    image = 0.45 + 0.4 * disc - 0.3 * square + 0.04 * rng.standard_normal(shape)
    labels = np.zeros(shape, np.uint8)
    labels[disc] = 1
    labels[square] = 2
    return (255 * image.clip(0, 1)).astype(np.uint8), labels


def test_the_overlap_rule_gives_each_pixel_the_label_of_highest_score():
    a = np.zeros((4, 6), bool)
    a[:, :4] = True
    b = np.zeros((4, 6), bool)
    b[:, 2:] = True
    score_a = np.tile(np.linspace(3, 0, 6), (4, 1))
    score_b = np.tile(np.linspace(0, 3, 6), (4, 1))
    out = resolve_overlaps({1: a, 4: b}, {1: score_a, 4: score_b}, {}, np.uint8)
    expected = np.where(a & ~b, 1, np.where(b & ~a, 4, 0))
    both = a & b
    expected[both] = np.where(score_a[both] >= score_b[both], 1, 4)
    assert np.array_equal(out, expected) and out.dtype == np.uint8


def test_a_nested_label_takes_its_pixels_inside_the_outer_one():
    disc = ellipse((40, 40), (20, 20), (15, 15))
    cup = ellipse((40, 40), (20, 20), (6, 6))
    scores = {1: np.ones((40, 40)), 2: np.full((40, 40), -5.0)}  # the cup's lower score does not matter
    out = resolve_overlaps({1: disc, 2: cup}, scores, {2: 1}, np.uint8)
    assert np.array_equal(out == 2, cup) and np.array_equal(out == 1, disc & ~cup)


def test_binary_masks_keep_todays_path_and_one_label_of_a_map_is_that_label_alone(features_model):
    cases = [two_label_case(s) for s in range(4)]
    images, maps = [x for x, _ in cases[:3]], [y for _, y in cases[:3]]
    query, truth = cases[3]
    assert not is_label_map_set([(y == 2).astype(np.uint8) * 255 for y in maps])
    alone = features_model.predict(images, [y == 2 for y in maps], query, truth == 2)
    both = features_model.predict(images, maps, query, truth)
    assert both.values == (1, 2)
    for name, mask in alone.masks.items():
        assert np.array_equal(both.per_label[2].masks[name], mask), name
    assert both.dice[1] > 0.8 and both.dice[2] > 0.8
    assert set(np.unique(both.labels)) <= {0, 1, 2} and both.labels.dtype == np.uint8
    claimed = {v: p.masks["iclsam"] for v, p in both.per_label.items()}
    only = claimed[1] ^ claimed[2]
    assert np.array_equal(both.labels[only & claimed[1]], np.ones((only & claimed[1]).sum(), np.uint8))
    subset = features_model.predict(images, maps, query, labels=[2])
    assert subset.values == (2,) and set(np.unique(subset.labels)) <= {0, 2}


@pytest.mark.parametrize(
    "maps, words",
    [
        ([np.array([[0, 1.5], [2, 0]]), np.array([[0, 1], [2, 0]])], "whole numbers"),
        ([np.array([[0, 1], [2, 0]]), np.array([[0, 255], [0, 0]])], "binary mask mixed with label maps"),
        ([np.array([[0, 1], [2, 0]]), np.array([[False, True], [False, False]])], "binary mask mixed"),
        ([np.array([[0, -1], [2, 0]])], ">= 0"),
    ],
)
def test_bad_label_maps_are_one_clear_error(maps, words):
    with pytest.raises(ValueError, match=words):
        support_label_values(maps)


def test_bad_label_requests_are_one_clear_error(features_model):
    cases = [two_label_case(s) for s in range(3)]
    images, maps = [x for x, _ in cases[:2]], [y for _, y in cases[:2]]
    query, truth = cases[2]
    wrong = truth.copy()
    wrong[0, 0] = 7
    with pytest.raises(ValueError, match=r"values \[7\] that no support label map has"):
        features_model.predict(images, maps, query, wrong)
    with pytest.raises(ValueError, match=r"labels \[5\] are in no support label map"):
        features_model.predict(images, maps, query, labels=[5])
    with pytest.raises(ValueError, match="nested label 9"):
        features_model.predict(images, maps, query, nested={9: 1})


def test_label_volumes_resolve_each_labels_propagation_without_overlap():
    from iclsam.volumes import segment_volume
    from iclsam.volumes.synthetic import synthetic_volume

    image, label, _ = synthetic_volume(0)
    labels = label.astype(np.uint16)
    labels[:, 48:][label[:, 48:] != 0] = 4  # the target's right half: label 4
    chosen = [7, 10, 13]
    annotations = {z: labels[..., z] for z in chosen}
    result = segment_volume(None, image, annotations, method="interpolation")
    assert result.labels.dtype == np.uint16 and set(np.unique(result.labels)) <= {0, 1, 4}
    for value in (1, 4):
        alone = segment_volume(None, image, {z: labels[..., z] == value for z in chosen}, method="interpolation")
        assert np.array_equal(result.per_label[value].mask, alone.mask)
        claimed_by_other = result.per_label[5 - value].mask
        assert np.array_equal(result.labels == value, alone.mask & ~claimed_by_other | (result.labels == value))
    assert not (result.labels[..., chosen[0] - 1] != 0).any()  # interpolation: nothing outside the range
    nested = labels.copy()
    nested[label != 0] = 1
    nested[(label != 0) & (np.arange(96)[None, :, None] >= 48)] = 2  # 2 inside 1, given as 2 only
    inner = segment_volume(None, image, {z: nested[..., z] for z in chosen}, method="interpolation", nested={2: 1})
    outer_alone = segment_volume(None, image, {z: nested[..., z] != 0 for z in chosen}, method="interpolation")
    assert np.array_equal(inner.labels != 0, outer_alone.mask | inner.per_label[2].mask)
    with pytest.raises(ValueError, match=r"labels \[3\] are in no support label map"):
        segment_volume(None, image, annotations, method="interpolation", labels=[3])
