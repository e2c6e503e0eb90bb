"""Volumes: each step of `segment_volume` against an independent computation, the interpolation
baseline on a hand-built case, the metrics against medpy, files in and out, bad input."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from conftest import ellipse
from scipy import ndimage

from iclsam import ICLSAM, segment_volume
from iclsam.apps.volumes import interpolate_slices, volume_metrics
from iclsam.apps.volumes.checks import check_annotations
from iclsam.apps.volumes.consistency import (
    blend_between_annotations,
    fill_between_annotations,
    keep_connected_to_annotations,
)
from iclsam.apps.volumes.evaluate_volumes import annotated_slices
from iclsam.apps.volumes.interpolation import blend_shapes, signed_distance
from iclsam.apps.volumes.propagation import propagation_order, slice_support, target_present
from iclsam.apps.volumes.scan_io import read_scan, write_label_volume
from iclsam.apps.volumes.shape_priors import (
    beyond_annotations,
    expected_area,
    most_confident,
    search_region,
    thin_slices,
    within_expected_area,
)
from iclsam.cli import main


def disc(shape, centre, radius):
    y, x = np.ogrid[: shape[0], : shape[1]]
    return (y - centre[0]) ** 2 + (x - centre[1]) ** 2 <= radius**2


def ellipsoid_volume(shape=(72, 80, 24), centre=(36, 38, 12), radii=(18, 22, 8), seed=0):
    """A textured scan (x, y, z) holding a bright ellipsoid with a darker rim around it."""
    rng = np.random.default_rng(seed)
    x, y, z = np.ogrid[: shape[0], : shape[1], : shape[2]]
    r = ((x - centre[0]) / radii[0]) ** 2 + ((y - centre[1]) / radii[1]) ** 2 + ((z - centre[2]) / radii[2]) ** 2
    target = r <= 1.0
    image = 40 + 15 * rng.standard_normal(shape) + 120 * target - 20 * ((r > 1.0) & (r < 1.6))
    return image.astype(np.float32), target


def test_interpolation_between_two_discs_is_the_disc_of_the_mean_radius():
    shape = (64, 64)
    out = interpolate_slices({0: disc(shape, (32, 32), 8), 4: disc(shape, (32, 32), 16)}, 7)
    expected = disc(shape, (32, 32), 12)  # concentric discs: the signed distances interpolate the radius
    assert np.array_equal(out[0], disc(shape, (32, 32), 8)) and np.array_equal(out[4], disc(shape, (32, 32), 16))
    assert abs(int(out[2].sum()) - int(expected.sum())) <= 0.03 * expected.sum()
    assert (out[2] & expected).sum() / (out[2] | expected).sum() > 0.95
    assert not out[5:].any()  # nothing outside the annotated range
    towards_nothing = interpolate_slices({0: disc(shape, (32, 32), 10), 4: np.zeros(shape, bool)}, 5)
    assert towards_nothing[1].sum() > towards_nothing[2].sum() > towards_nothing[3].sum()


def test_volume_metrics_equal_medpy_with_anisotropic_spacing():
    from medpy.metric import binary

    rng = np.random.default_rng(1)
    truth = np.zeros((30, 34, 12), bool)
    truth[8:22, 9:25, 3:9] = True
    prediction = np.roll(truth, 2, axis=0) & (rng.random(truth.shape) > 0.05)
    spacing = (0.8, 0.7, 3.0)
    got = volume_metrics(prediction, truth, spacing)
    assert got["assd"] == pytest.approx(binary.assd(prediction, truth, voxelspacing=spacing), rel=1e-9)
    assert got["hd95"] == pytest.approx(binary.hd95(prediction, truth, voxelspacing=spacing), rel=1e-9)
    assert got["dice"] == pytest.approx(binary.dc(prediction, truth))
    assert np.isnan(volume_metrics(np.zeros_like(truth), truth, spacing)["hd95"])


def test_the_annotated_slices_sit_evenly_inside_the_target():
    label = np.zeros((4, 4, 40), bool)
    label[1:3, 1:3, 10:31] = True  # lo 10, hi 30
    assert annotated_slices(label, 1) == [20]
    assert annotated_slices(label, 3) == [15, 20, 25]
    assert annotated_slices(label, 5) == [13, 17, 20, 23, 27]  # 13.33, 16.67, 20, 23.33, 26.67 rounded


def test_propagation_steps():
    assert propagation_order(8, [2, 5]) == [1, 3, 4, 6, 0, 7]
    done = {10: np.ones((2, 2), bool), 11: np.ones((2, 2), bool), 12: np.ones((2, 2), bool)}
    assert slice_support(13, [10, 20], done, context=2) == [10, 11, 12, 20]  # nearest annotations + grown context
    grown = {21: np.ones((2, 2), bool), 22: np.ones((2, 2), bool)}
    assert slice_support(23, [10, 20], grown, context=2) == [20, 21, 22]
    assert slice_support(23, [10, 20], grown, context=1) == [20, 22]
    assert target_present(8, [10, 20], [], {9: np.ones((2, 2), bool)})
    assert not target_present(8, [10, 20], [], {9: np.zeros((2, 2), bool)})  # the neighbour lost the target
    assert not target_present(6, [10, 20], [8], {7: np.ones((2, 2), bool)})  # an empty annotated slice between


def test_the_search_region_between_annotations_holds_both_annotated_shapes():
    """Two discs that overlap little: their interpolation half way is smaller than either, and the
    region of the slice between them reaches both (less their margin, nothing beyond it)."""
    shape = (60, 60)
    left, right = ellipse(shape, (30, 18), (9, 9)), ellipse(shape, (30, 42), (9, 9))
    done = {0: left, 2: right}
    interpolated = interpolate_slices(done, 3)
    region = search_region(1, [0, 2], done, interpolated)
    assert interpolated[1].sum() < left.sum() and (region >= (left | right)).all()
    margin = max(3, int(round(0.2 * np.sqrt((interpolated[1] | left | right).sum()))))
    assert region.sum() == ndimage.binary_dilation(interpolated[1] | left | right, iterations=margin).sum()
    outside = search_region(3, [0, 2], {**done}, interpolated)  # beyond: the neighbour's result, 2 px
    assert (outside == ndimage.binary_dilation(right, iterations=2)).all()


def test_expected_area_is_the_linear_interpolation_of_the_annotated_areas():
    given = {2: np.ones((10, 10), bool), 6: np.zeros((10, 10), bool)}
    given[6][:2, :5] = True  # 10 pixels against 100
    assert expected_area(3, [2, 6], given) == pytest.approx(0.75 * 100 + 0.25 * 10)
    assert expected_area(2, [2, 6], given) is None and expected_area(8, [2, 6], given) is None


def test_most_confident_takes_the_highest_pixels_of_the_region_and_breaks_ties_in_order():
    rng = np.random.default_rng(0)
    confidence = rng.random((12, 12))
    region = np.zeros((12, 12), bool)
    region[2:9, 3:10] = True
    chosen = most_confident(confidence, region, 10)
    inside = np.sort(confidence[region])[::-1]
    assert chosen.sum() == 10 and not (chosen & ~region).any()
    assert confidence[chosen].min() == inside[9]  # the ten highest of the region, found by sorting
    ties = most_confident(np.ones((3, 3)), None, 4)
    assert ties.ravel().tolist() == [True] * 4 + [False] * 5
    assert most_confident(confidence, region, 100).sum() == region.sum()  # no more than the region holds


def test_a_result_that_fills_a_ring_between_annotations_falls_back_to_the_map():
    """A ring-shaped target annotated on slices 0 and 2; on slice 1 the result fills the ring (the
    area is 2.4 times the annotated ones'), and the map is high on the ring: the rule keeps the
    map's ring. Within the limit, or outside the annotated range, the result stands."""
    shape = (64, 64)
    outer, inner = ellipse(shape, (32, 32), (16, 16)), ellipse(shape, (32, 32), (11, 11))
    ring = outer & ~inner
    given = {0: ring, 2: ring}
    confidence = np.where(ring, 0.9, 0.1) + np.linspace(0, 0.01, 64)[None, :]
    region = ndimage.binary_dilation(outer, iterations=4)
    kept = within_expected_area(1, outer, confidence, region, [0, 2], given)
    assert outer.sum() > 1.5 * ring.sum() and (kept == ring).all()
    slightly = ring | ndimage.binary_dilation(ring, iterations=1)
    assert (within_expected_area(1, slightly, confidence, region, [0, 2], given) == slightly).all()
    assert (within_expected_area(3, outer, confidence, region, [0, 2], {**given, 1: ring}) == outer).all()


def test_beyond_the_annotations_the_target_ends_after_a_shrinking_step():
    """Discs of radius 10 and 5 (the area quartered in one step). On thick slices the target ends
    after such a step, between annotated slices or segmented ones; on thin slices only after a step
    between two annotated slices. A result over 1.25 times its neighbour's is cut to the
    neighbour's footprint, one under a fifth of it is dropped, and inside the range nothing changes."""
    shape = (48, 48)
    big, small = disc(shape, (24, 24), 10), disc(shape, (24, 24), 5)
    assert small.sum() < 0.5 * big.sum()
    found = disc(shape, (24, 24), 4)
    annotated = {4: big, 5: small}
    segmented = {5: big, 6: big, 7: big, 8: small}  # annotated 5 and 6, segmented 7 and 8
    for thin in (False, True):
        assert not beyond_annotations(6, found, [4, 5], annotated, thin).any()
    assert not beyond_annotations(9, found, [5, 6], segmented).any()
    assert (beyond_annotations(9, found, [5, 6], segmented, thin=True) == found).all()
    grown = disc(shape, (24, 24), 8)
    assert (beyond_annotations(9, grown, [5, 6], segmented, thin=True) == (grown & small)).all()
    assert not beyond_annotations(9, disc(shape, (24, 24), 2), [5, 6], segmented, thin=True).any()
    assert (beyond_annotations(5, found, [4, 6], {4: big, 6: small}) == found).all()


def test_thin_slices_compare_the_slice_step_with_the_targets_radius():
    """A disc of radius 20 pixels at 0.5 mm (10 mm): slices 2.5 mm apart are thin (a quarter of the
    radius), 3 mm apart are not; along another axis the in-plane spacing is the other two values."""
    given = {3: disc((64, 64), (32, 32), 20), 5: np.zeros((64, 64), bool)}
    radius = np.sqrt(given[3].sum() * 0.25 / np.pi)
    assert 9.8 < radius < 10.2
    assert thin_slices((0.5, 0.5, 0.25 * radius), 2, given) is True  # a plain bool: records print and serialise it
    assert not thin_slices((0.5, 0.5, 0.26 * radius), 2, given)
    assert thin_slices((0.25 * radius, 0.5, 0.5), 0, given)
    assert not thin_slices(None, 2, given) and not thin_slices((1, 1, 1), 2, {3: given[5]})


def test_3d_consistency_keeps_what_touches_the_annotations_and_fills_holes():
    mask = np.zeros((10, 8, 8), bool)
    mask[2:7, 2:5, 2:5] = True  # the target, touching the annotated slice 4
    mask[8, 6:8, 6:8] = True  # a speck elsewhere
    annotated = np.zeros_like(mask)
    annotated[4] = mask[4]
    kept, dropped = keep_connected_to_annotations(mask, annotated)
    assert dropped == 1 and kept.sum() == mask[2:7].sum() - 0 and not kept[8].any()
    holes = kept.copy()
    holes[5] = False
    filled, which = fill_between_annotations(holes, [4, 6], interpolate_slices({4: kept[4], 6: kept[6]}, 10))
    assert which == [5] and filled[5].any()


def test_segment_volume_from_three_slices_beats_nothing_and_keeps_the_annotations(features_model):
    image, target = ellipsoid_volume(shape=(72, 80, 16), centre=(36, 38, 8), radii=(18, 22, 6))
    chosen = annotated_slices(target, 3)
    annotations = {z: target[:, :, z] for z in chosen}
    result = segment_volume(features_model, image, annotations, axis=2, spacing=(1.0, 1.0, 2.0))
    for z in chosen:
        assert np.array_equal(result.mask[:, :, z], target[:, :, z])
    metrics = volume_metrics(result.mask, target, (1.0, 1.0, 2.0))
    baseline = volume_metrics(
        segment_volume(features_model, image, annotations, method="interpolation").mask, target, (1.0, 1.0, 2.0)
    )
    assert metrics["dice"] > 0.8 and metrics["dice"] > baseline["dice"], (metrics, baseline)
    assert result.confidence.shape == (image.shape[2],) and result.record["segmented"] > 0


@pytest.mark.slow  # ~30 s (three volume runs)
def test_segment_volume_along_another_axis_is_the_same_segmentation(features_model):
    image, target = ellipsoid_volume(shape=(60, 64, 10), centre=(30, 30, 5), radii=(16, 18, 4))
    annotations = {z: target[:, :, z] for z in annotated_slices(target, 2)}
    along_z = segment_volume(features_model, image, annotations, axis=2)
    moved = np.moveaxis(image, 2, 0)
    along_0 = segment_volume(features_model, moved, annotations, axis=0)
    assert np.array_equal(np.moveaxis(along_0.mask, 0, 2), along_z.mask)
    # every slice has its own support set: the per-support-set fusion choices do not apply
    chooser = ICLSAM(sam=features_model.sam, icl=features_model.icl, fusion="auto")
    assert np.array_equal(segment_volume(chooser, image, annotations, axis=2).mask, along_z.mask)


@pytest.mark.parametrize(
    "volume, annotations, axis, words",
    [
        (np.zeros((16, 16)), {0: np.zeros((16, 16))}, 2, "must be 3-D"),
        (np.zeros((16, 16, 4, 2)), {0: np.zeros((16, 16))}, 2, "must be 3-D"),
        (np.full((16, 16, 4), np.nan), {0: np.zeros((16, 16))}, 2, "NaN"),
        (np.zeros((16, 16, 4)), {}, 2, "no annotated slice"),
        (np.zeros((16, 16, 4)), {7: np.zeros((16, 16))}, 2, "out of range"),
        (np.zeros((16, 16, 4)), {0: np.zeros((16, 16))}, 3, "axis"),
        (np.zeros((16, 16, 4)), {0: np.zeros((12, 16))}, 2, "slices are"),
        (np.zeros((16, 16, 4)), {0: np.linspace(0, 1, 256).reshape(16, 16)}, 2, "whole numbers"),
    ],
)
def test_bad_volume_input_is_one_clear_error(features_model, volume, annotations, axis, words):
    with pytest.raises(ValueError, match=words):
        segment_volume(features_model, volume, annotations, axis=axis)


def test_blending_trusts_interpolation_next_to_an_annotation_and_iclsam_half_way():
    shape = (40, 40)
    annotations = {0: disc(shape, (20, 20), 10), 4: disc(shape, (20, 20), 10)}
    mask = np.zeros((5, *shape), bool)
    mask[0], mask[4] = annotations[0], annotations[4]
    mask[1] = mask[2] = mask[3] = disc(shape, (20, 20), 4)  # ICL-SAM's slices: smaller
    blended = blend_between_annotations(mask.copy(), [0, 4], interpolate_slices(annotations, 5))
    assert np.array_equal(blended[2], disc(shape, (20, 20), 4))  # w = 1 half way: ICL-SAM's own
    assert disc(shape, (20, 20), 4).sum() < blended[1].sum() < annotations[0].sum()  # w = 0.5 at slice 1
    assert np.array_equal(blended[0], annotations[0])


def test_blending_in_the_shapes_bounding_box_equals_blending_on_the_whole_slice():
    rng = np.random.default_rng(0)
    shape = (48, 40)
    cases = [(disc(shape, (20, 18), 9), disc(shape, (26, 22), 6)), (np.zeros(shape, bool), disc(shape, (3, 2), 5))]
    cases += [(np.ones(shape, bool), disc(shape, (24, 20), 4)), (np.zeros(shape, bool), np.zeros(shape, bool))]
    for _ in range(40):  # random blobs in random windows, some at the slice's edge, some empty
        pair = []
        for _ in range(2):
            blob = np.zeros(shape, bool)
            top, left = rng.integers(0, 40), rng.integers(0, 32)
            window = (slice(top, top + rng.integers(2, 24)), slice(left, left + rng.integers(2, 24)))
            blob[window] = ndimage.binary_opening(rng.random(blob[window].shape) < 0.7) & (rng.random() < 0.9)
            pair.append(blob)
        cases.append(tuple(pair))
    for a, b in cases:
        for t in np.linspace(0.0, 1.0, 11):
            whole = (1.0 - t) * signed_distance(a) + t * signed_distance(b) > 0
            assert np.array_equal(blend_shapes(a, b, t), whole)


def test_check_annotations_keeps_empty_slices_as_information():
    checked = check_annotations({3: np.zeros((8, 8)), 5: disc((8, 8), (4, 4), 2)}, (8, 8), 10)
    assert not checked[3].any() and checked[5].any()


def write_nifti(path, array, affine):
    nib.save(nib.Nifti1Image(array, affine), str(path))


def test_nifti_round_trip_keeps_the_affine_values_and_dtype_class(tmp_path):
    affine = np.array([[0.8, 0, 0, -10], [0, 0.7, 0, 5], [0, 0, 3.0, 2], [0, 0, 0, 1]])
    write_nifti(tmp_path / "scan.nii.gz", np.zeros((10, 12, 5), np.int16), affine)
    scan = read_scan(tmp_path / "scan.nii.gz")
    assert scan.spacing == pytest.approx((0.8, 0.7, 3.0))
    labels = np.zeros((10, 12, 5), np.int64)
    labels[2:5, 3:6, 1:3] = 4
    write_label_volume(tmp_path / "out.nii.gz", labels, scan, like=np.dtype(np.int16))
    back = nib.load(str(tmp_path / "out.nii.gz"))
    assert np.allclose(back.affine, affine) and back.get_data_dtype() == np.int16
    assert np.array_equal(np.asarray(back.dataobj), labels)


def test_nrrd_and_mha_read_through_simpleitk_on_nibabels_axes(tmp_path):
    sitk = pytest.importorskip("SimpleITK")
    array = np.arange(5 * 6 * 7, dtype=np.int16).reshape(5, 6, 7)  # x, y, z as nibabel would give
    image = sitk.GetImageFromArray(np.transpose(array))  # SimpleITK's arrays are z, y, x
    image.SetSpacing((0.5, 0.6, 2.5))
    for name in ("scan.mha", "scan.nrrd"):
        sitk.WriteImage(image, str(tmp_path / name))
        scan = read_scan(tmp_path / name)
        assert np.array_equal(scan.array, array) and scan.spacing == pytest.approx((0.5, 0.6, 2.5))
    (tmp_path / "bad.mha").write_bytes(b"not an image")
    with pytest.raises(ValueError, match="bad.mha"):
        read_scan(tmp_path / "bad.mha")


def test_segment_volume_cli_writes_the_label_and_refuses_bad_files(tmp_path, capsys):
    image, target = ellipsoid_volume(shape=(48, 52, 14), centre=(24, 26, 7), radii=(12, 14, 5))
    affine = np.diag([0.9, 0.9, 2.5, 1.0])
    write_nifti(tmp_path / "scan.nii.gz", image, affine)
    partial = np.zeros(target.shape, np.uint8)
    partial[:, :, 7] = target[:, :, 7] * 2
    write_nifti(tmp_path / "partial.nii.gz", partial, affine)
    base = ["segment-volume", "--image", str(tmp_path / "scan.nii.gz")]
    assert (
        main(
            [
                *base,
                "--annotations",
                str(tmp_path / "partial.nii.gz"),
                "--slices",
                "3,7",
                "--out",
                str(tmp_path / "pred.nii.gz"),
            ]
        )
        == 0
    )
    pred = nib.load(str(tmp_path / "pred.nii.gz"))
    values = np.asarray(pred.dataobj)
    assert np.allclose(pred.affine, affine) and set(np.unique(values)) <= {0, 2} and pred.get_data_dtype() == np.uint8
    assert not values[:, :, 3].any()  # slice 3 was annotated empty: kept so
    capsys.readouterr()
    write_nifti(tmp_path / "moved.nii.gz", partial, np.diag([1.0, 0.9, 2.5, 1.0]))
    cases = [
        (["--annotations", str(tmp_path / "moved.nii.gz")], "affine"),
        (["--annotations", str(tmp_path / "partial.nii.gz"), "--slices", "30"], "out of range"),
        (["--annotations", str(tmp_path / "partial.nii.gz"), "--label", "5"], "label value 5 is absent"),
        (["--annotations", str(tmp_path / "partial.nii.gz"), "--axis", "3"], "axis"),
        # slice 7 holds the drawing: left out of --slices, it is named, not dropped
        (["--annotations", str(tmp_path / "partial.nii.gz"), "--slices", "3"], "slices [7] hold labels but are not"),
    ]
    for extra, words in cases:
        assert main([*base, *extra, "--out", str(tmp_path / "bad.nii.gz")]) == 2
        error = capsys.readouterr().err
        assert words in error and error.count("\n") == 1, error
        assert not (tmp_path / "bad.nii.gz").exists()


def test_segment_volume_out_never_replaces_an_input_or_a_file_it_did_not_write(tmp_path, capsys):
    """--out naming a support volume, or a file of the user's, is refused and the file kept; a file
    segment-volume wrote may be replaced by a rerun, any other only with --overwrite."""
    image, target = ellipsoid_volume(shape=(40, 44, 12), centre=(20, 22, 6), radii=(10, 12, 4))
    affine = np.diag([0.9, 0.9, 2.5, 1.0])
    partial = np.zeros(target.shape, np.uint8)
    partial[:, :, [4, 8]] = target[:, :, [4, 8]]
    for name, array in (("scan", image), ("partial", partial), ("other", image), ("other_labels", target)):
        write_nifti(tmp_path / f"{name}.nii.gz", array.astype(np.uint8) if name != "scan" else array, affine)
    (tmp_path / "truth.nii.gz").write_bytes((tmp_path / "other_labels.nii.gz").read_bytes())
    kept = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    base = [
        "segment-volume",
        "--image",
        str(tmp_path / "scan.nii.gz"),
        "--annotations",
        str(tmp_path / "partial.nii.gz"),
    ]
    base += ["--method", "interpolation"]
    support = ["--support-volumes", f"{tmp_path / 'other.nii.gz'}:{tmp_path / 'other_labels.nii.gz'}"]
    assert main([*base, *support, "--out", str(tmp_path / "other_labels.nii.gz")]) == 2
    assert "is an input file" in capsys.readouterr().err
    assert main([*base, "--out", str(tmp_path / "truth.nii.gz")]) == 2
    error = capsys.readouterr().err
    assert "exists and was not written by iclsam segment-volume" in error and "--overwrite" in error
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == kept
    assert main([*base, "--out", str(tmp_path / "pred.nii.gz")]) == 0
    assert main([*base, "--out", str(tmp_path / "pred.nii.gz")]) == 0  # our own file: a rerun replaces it
    assert main([*base, "--out", str(tmp_path / "truth.nii.gz"), "--overwrite"]) == 0
    assert (tmp_path / "truth.nii.gz").read_bytes() != kept["truth.nii.gz"]
