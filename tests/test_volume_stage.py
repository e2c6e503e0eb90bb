"""The `volumes` stage: the bundled synthetic volume, Dice per slice against an independent
computation, the stage's tables and figure (interpolation only, so no model is needed here; the
stage with ICL-SAM runs in `dvc repro`)."""

from __future__ import annotations

import numpy as np
import pytest

from iclsam.apps.volumes import interpolate_slices
from iclsam.apps.volumes.evaluate_volumes import volume_summary
from iclsam.pipeline.report import Provenance
from iclsam.pipeline.synthetic_volumes import SHAPE, synthetic_volume
from iclsam.pipeline.volumes_figure import view_planes, volume_figure
from iclsam.pipeline.volumes_stage import slice_scores, volumes_stage


def test_the_synthetic_volume_is_seeded_and_its_target_tapers_off_inside_the_scan():
    image, label, spacing = synthetic_volume(3)
    again, label_again, _ = synthetic_volume(3)
    other, _, _ = synthetic_volume(4)
    assert image.shape == label.shape == SHAPE and len(spacing) == 3
    assert np.array_equal(image, again) and np.array_equal(label, label_again) and not np.array_equal(image, other)
    areas = label.sum(axis=(0, 1))
    holding = np.nonzero(areas)[0]
    assert holding[0] > 0 and holding[-1] < SHAPE[2] - 1  # empty slices on both ends
    assert areas.argmax() not in (holding[0], holding[-1])  # larger in the middle
    assert image[label == 1].mean() > image[(label == 0) & (image > 0.3)].mean()  # brighter than the body
    with pytest.raises(ValueError, match="three sides"):
        synthetic_volume(0, (96, 96))


def test_slice_scores_agree_with_a_dice_computed_slice_by_slice():
    _, label, _ = synthetic_volume(0)
    truth = label != 0
    prediction = np.roll(truth, 2, axis=0)
    prediction[..., 10] = False
    scores = slice_scores(prediction, truth, [8, 12])
    for row in scores.itertuples():
        p, t = prediction[..., row.slice], truth[..., row.slice]
        assert row.dice == pytest.approx(2 * (p & t).sum() / (p.sum() + t.sum()))
        assert row.distance == min(abs(row.slice - 8), abs(row.slice - 12))
    assert scores.loc[scores["slice"] == 10, "dice"].item() == 0.0
    assert set(scores["slice"]) == set(np.nonzero(truth.any(axis=(0, 1)) | prediction.any(axis=(0, 1)))[0])


def test_the_stage_with_interpolation_matches_interpolate_slices_and_draws_its_figure(tmp_path):
    params = {"volumes": {"seed": 0, "context_volumes": 0, "slices": [1, 3], "methods": ["interpolation"]}}
    rows, per_slice, example = volumes_stage(None, params)
    _, label, _ = synthetic_volume(0)
    truth = label != 0
    for row in rows.itertuples():
        chosen = [int(z) for z in row.annotated.split()]
        expected = np.moveaxis(interpolate_slices({z: truth[..., z] for z in chosen}, truth.shape[2]), 0, 2)
        inter = (expected & truth).sum()
        assert row.dice == pytest.approx(2 * inter / (expected.sum() + truth.sum()))
    assert list(volume_summary(rows)["k"]) == [1, 3]
    planes = view_planes(example["case"].truth, [5, 9, 13])
    assert planes["axial"] == (2, 7)
    source = Provenance(data="SYNTHETIC volume (test)", sam="none", icl_weights="none", profile="test")
    first = volume_figure(example, per_slice, 3, source, tmp_path / "a.png").read_bytes()
    second = volume_figure(example, per_slice, 3, source, tmp_path / "b.png").read_bytes()
    assert first[:8] == b"\x89PNG\r\n\x1a\n" and first == second
