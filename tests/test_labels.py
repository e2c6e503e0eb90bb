"""Label maps: several labels in one pass. Binary input keeps today's path bit for bit; a label of a
label map is the same binary task segmented alone; the overlap rule and nested labels against
hand-built cases; a synthetic two-label image whose answer is known; bad input."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import ellipse

from iclsam.method.label_maps import is_label_map_set, resolve_overlaps, support_label_values


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
    from iclsam.apps.volumes import segment_volume
    from iclsam.pipeline.synthetic_volumes import synthetic_volume

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


def test_segment_cli_writes_label_maps_with_the_supports_values(tmp_path, capsys, monkeypatch):
    from PIL import Image

    from iclsam.cli import main

    for i in range(4):
        image, labels = two_label_case(i)
        labels = np.where(labels == 2, 300, labels.astype(np.uint16)).astype(np.uint16)  # above 255: a 16-bit PNG
        for folder, array in (("support", image), ("support_masks", labels), ("query", image), ("query_masks", labels)):
            if (folder.startswith("query")) == (i == 3):
                (tmp_path / folder).mkdir(exist_ok=True)
                Image.fromarray(array).save(tmp_path / folder / f"c{i}.png")
    args = ["segment", "--icl", "features", "--support-images", str(tmp_path / "support"), "--support-masks"]
    args += [
        str(tmp_path / "support_masks"),
        "--query",
        str(tmp_path / "query"),
        "--query-masks",
        str(tmp_path / "query_masks"),
    ]
    assert main([*args, "--out", str(tmp_path / "out")]) == 0
    written = np.asarray(Image.open(tmp_path / "out" / "c3.png"))
    assert written.dtype == np.uint16 and set(np.unique(written)) <= {0, 1, 300}
    table = __import__("pandas").read_csv(tmp_path / "out" / "dice.csv")
    assert list(table["label"]) == [1, 300] and (table["iclsam"] > 0.8).all()
    capsys.readouterr()
    assert main([*args, "--labels", "7", "--out", str(tmp_path / "bad")]) == 2
    assert "labels [7] are in no support label map" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()
    # with binary support masks --labels cannot be honoured: an error, not ignored
    binary = tmp_path / "binary_masks"
    binary.mkdir()
    for mask in (tmp_path / "support_masks").iterdir():
        Image.fromarray(((np.asarray(Image.open(mask)) != 0) * 255).astype(np.uint8)).save(binary / mask.name)
    plain = [
        *args[:6],
        str(binary),
        "--query",
        str(tmp_path / "query"),
        "--labels",
        "2",
        "--out",
        str(tmp_path / "bad"),
    ]
    assert main(plain) == 2
    assert f"--labels applies to label-map support masks; {binary} holds binary masks" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()
    # a query label map holding a label no support map has: refused before any query is segmented,
    # naming its file (the last query by name, so that the others would have been segmented first)
    image, labels = two_label_case(3)
    Image.fromarray(image).save(tmp_path / "query" / "z9.png")
    Image.fromarray(np.where(labels == 2, 9, labels).astype(np.uint16)).save(tmp_path / "query_masks" / "z9.png")
    monkeypatch.setattr(
        "iclsam.apps.segment.segment_label_query", lambda *a, **k: pytest.fail("segmented before the check")
    )
    assert main([*args, "--out", str(tmp_path / "bad")]) == 2
    error = capsys.readouterr().err
    assert f"{tmp_path / 'query_masks' / 'z9.png'}: holds label values [9] that no support label map has" in error
    assert not (tmp_path / "bad").exists()


def test_segment_volume_cli_writes_a_label_map(tmp_path):
    import nibabel as nib

    from iclsam.cli import main
    from iclsam.pipeline.synthetic_volumes import synthetic_volume

    image, label, _ = synthetic_volume(0)
    labels = label.astype(np.int16)
    labels[:, 48:][label[:, 48:] != 0] = 2
    partial = np.zeros_like(labels)
    for z in (7, 10, 13):
        partial[..., z] = labels[..., z]
    affine = np.diag([1.0, 1.0, 5.0, 1.0])
    nib.save(nib.Nifti1Image(image, affine), str(tmp_path / "scan.nii.gz"))
    nib.save(nib.Nifti1Image(partial, affine), str(tmp_path / "partial.nii.gz"))
    base = [
        "segment-volume",
        "--image",
        str(tmp_path / "scan.nii.gz"),
        "--annotations",
        str(tmp_path / "partial.nii.gz"),
    ]
    assert main([*base, "--method", "interpolation", "--out", str(tmp_path / "pred.nii.gz")]) == 0
    pred = nib.load(str(tmp_path / "pred.nii.gz"))
    values = np.asarray(pred.dataobj)
    assert set(np.unique(values)) == {0, 1, 2} and np.issubdtype(pred.get_data_dtype(), np.signedinteger)
    assert np.array_equal(values[..., 10], labels[..., 10])
    assert main([*base, "--method", "interpolation", "--label", "2", "--out", str(tmp_path / "two.nii.gz")]) == 0
    assert set(np.unique(np.asarray(nib.load(str(tmp_path / "two.nii.gz")).dataobj))) == {0, 2}


def test_boxes_per_label_densify_to_label_maps(features_model):
    from iclsam.method.densify import boxes_from_mask

    cases = [two_label_case(s) for s in range(2)]
    images = [x for x, _ in cases]
    boxes = {v: [boxes_from_mask(y == v) for _, y in cases] for v in (1, 2)}
    boxes[2][1] = None  # the second image does not show label 2
    maps = features_model.densify(images, boxes=boxes)
    assert [m.dtype for m in maps] == [np.uint8, np.uint8]
    assert set(np.unique(maps[1])) <= {0, 1}
    for (_, truth), found in zip(cases, maps):
        assert dice_of(found == 1, truth == 1) > 0.8
    assert dice_of(maps[0] == 2, cases[0][1] == 2) > 0.8
    alone = features_model.densify(images[:1], boxes=[boxes[2][0]])[0]
    assert np.array_equal(maps[0] == 2, alone & ~(maps[0] == 1) | (maps[0] == 2))
    with pytest.raises(ValueError, match="label 3: no image has boxes"):
        features_model.densify(images, boxes={3: [None, None]})


def dice_of(a, b):
    return 2 * (a & b).sum() / (a.sum() + b.sum())


def test_evaluate_scores_each_label_of_a_label_map_task(tmp_path, capsys):
    import pandas as pd
    from PIL import Image

    from iclsam.cli import main

    task = tmp_path / "data" / "two-labels"
    (task / "images").mkdir(parents=True)
    (task / "masks").mkdir()
    rows = []
    for i in range(6):
        image, labels = two_label_case(10 + i)
        Image.fromarray(image).save(task / "images" / f"c{i}.png")
        Image.fromarray(labels).save(task / "masks" / f"c{i}.png")
        rows.append({"id": f"c{i}", "case": f"c{i}", "split": "support" if i < 3 else "query"})
    pd.DataFrame(rows).to_csv(task / "meta.csv", index=False)
    out = tmp_path / "scores.csv"
    args = ["evaluate", "--data", str(tmp_path / "data"), "--m", "2", "--draws", "1", "--queries", "2"]
    assert main([*args, "--icl", "features", "--out", str(tmp_path / "s.csv"), "--scores", str(out)]) == 0
    scores = pd.read_csv(out)
    assert set(scores["task"]) == {"two-labels label 1", "two-labels label 2"}
    full = scores[scores["variant"] == "iclsam"]
    assert len(full) == 4 and (full["dice"] > 0.8).all()
    assert "two-labels label 2" in capsys.readouterr().out


def test_binary_masks_mixing_0_1_and_0_255_stay_binary():
    a = np.zeros((4, 4), np.uint8)
    a[1, 1] = 1
    b = np.zeros((4, 4), np.uint8)
    b[2, 2] = 255
    c = np.zeros((4, 4), bool)
    c[0, 0] = True
    assert not is_label_map_set([a, b, c])
    two = a.copy()
    two[3, 3] = 2
    assert is_label_map_set([a, two]) and is_label_map_set([a, a * 2])


def test_in_volumes_a_shared_voxel_goes_by_the_outlines_or_else_to_the_smaller_label():
    from iclsam.apps.volumes.interpolation import signed_distance
    from iclsam.apps.volumes.label_volumes import resolve_volume_overlaps

    left, right = np.zeros((3, 12, 12), bool), np.zeros((3, 12, 12), bool)
    left[:, 2:10, 2:6], right[:, 2:10, 6:10] = True, True  # outlined on slices 0 and 2
    whole = left | right
    outlines = {1: {0: signed_distance(left[0]), 2: signed_distance(left[2])}}
    outlines[2] = {0: signed_distance(right[0]), 2: signed_distance(right[2])}
    claims = {1: whole.copy(), 2: whole & (np.arange(12)[None, None, :] >= 4)}  # 2 claims less of slice 1
    claims[1][[0, 2]], claims[2][[0, 2]] = left[[0, 2]], right[[0, 2]]
    out = resolve_volume_overlaps(claims, outlines, {}, np.uint8)
    depth_1 = signed_distance(left[0])  # slice 1 lies half way: the same outlines on both sides
    depth_2 = signed_distance(right[0])
    shared = claims[1][1] & claims[2][1]
    expected = np.where(depth_2 > depth_1, 2, 1)
    assert np.array_equal(out[1][shared], expected[shared]) and (out[1][whole[1] & ~shared] == 1).all()
    assert (out[1][:, 6:10][whole[1][:, 6:10]] == 2).all()  # the outlines split the box, not the smaller claim
    outlines[2][2] = signed_distance(np.zeros((12, 12), bool))  # label 2 absent from slice 2: not outlined on slice 1
    out = resolve_volume_overlaps(claims, outlines, {}, np.uint8)
    assert (out[1][shared] == 2).all() and (out[1][whole[1] & ~shared] == 1).all()  # the smaller claim keeps them


def test_in_volumes_intensity_decides_a_shared_voxel_when_it_is_far_more_typical_of_one_label():
    from iclsam.apps.volumes.interpolation import signed_distance
    from iclsam.apps.volumes.label_volumes import intensity_log_likelihoods, resolve_volume_overlaps

    truth = np.zeros((3, 16, 16), np.uint8)
    truth[:, 4:12, 4:12] = 2  # a bright rim ...
    truth[[0, 2], 6:10, 6:10] = 1  # ... around a dark core, outlined on slices 0 and 2
    truth[1, 6:10, 7:11] = 1  # on slice 1 the core has moved one column right
    window = np.where(truth == 1, 40, np.where(truth == 2, 200, 0)).astype(np.uint8)
    window[1, 5, 5] = 120  # a shared pixel whose intensity neither label's pixels have
    annotated = {0: truth[0], 2: truth[2]}
    outlines = {v: {z: signed_distance(m == v) for z, m in annotated.items()} for v in (1, 2)}
    claims = {2: truth != 0, 1: truth == 1}
    claims[1][1, 5:11, 5:11] = True  # the core's claim spills into the rim
    likelihoods = intensity_log_likelihoods(window, annotated, [1, 2])
    assert likelihoods[1].argmax() == 40 * 32 // 256 and likelihoods[2].argmax() == 200 * 32 // 256
    out = resolve_volume_overlaps(claims, outlines, {}, np.uint8, window, likelihoods)
    by_shape = resolve_volume_overlaps(claims, outlines, {}, np.uint8)
    shared = claims[1][1] & claims[2][1]
    dark, bright = shared & (window[1] == 40), shared & (window[1] == 200)
    assert (out[1][dark] == 1).all() and (out[1][bright] == 2).all()
    assert (by_shape[1][dark & (np.arange(16) == 10)] == 2).all()  # the outlines alone miss the moved core
    assert out[1, 5, 5] == by_shape[1, 5, 5]  # no decisive intensity: the outlines decide
    assert np.array_equal(out[[0, 2]], by_shape[[0, 2]])
