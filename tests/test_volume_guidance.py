"""Where to annotate next (issue 43): per-slice Dice against the distance to the nearest annotated
slice in `evaluate-volumes`, and the slice `segment-volume` names for one more annotation."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pandas as pd

from iclsam.apps.volumes.api import next_slice_to_annotate
from iclsam.apps.volumes.evaluate_volumes import distance_summary, evaluate_volumes
from iclsam.apps.volumes.propagation import VolumeResult
from iclsam.cli import main


def test_the_next_slice_is_the_least_confident_and_ties_go_far_from_the_annotations():
    mask = np.zeros((8, 8, 10), bool)
    mask[2:6, 2:6, 1:9] = True
    confidence = np.array([0, 1, 0.8, 0.6, 0.9, 1, 0.7, 0.75, 1, 0], np.float32)
    result = VolumeResult(mask, confidence)
    assert next_slice_to_annotate(result, [1, 5, 8]) == 3  # lowest confidence among slices not annotated
    flat = VolumeResult(mask, mask.reshape(-1, 10).any(axis=0).astype(np.float32))  # as interpolation gives
    assert next_slice_to_annotate(flat, [1, 8]) == 4  # 4 and 5 are 3 from an annotation: the lower index
    assert next_slice_to_annotate(flat, list(range(1, 9))) is None


def write_case(folder, name, shift=0):
    z, y, x = np.ogrid[:24, :24, :16]
    truth = ((x - 8 - shift * 0) / 6.0) ** 2 + ((y - 12) / 7.0) ** 2 + ((z - 12 - shift) / 7.0) ** 2 <= 1
    image = (40 + 150 * truth).astype(np.float32)
    folder.mkdir(exist_ok=True)
    nib.save(nib.Nifti1Image(image, np.eye(4)), str(folder / f"{name}_image.nii.gz"))
    nib.save(nib.Nifti1Image(truth.astype(np.uint8), np.eye(4)), str(folder / f"{name}_label.nii.gz"))
    return truth


def test_per_slice_dice_against_the_distance_to_the_nearest_annotated_slice(tmp_path, capsys):
    truth = write_case(tmp_path / "set", "a")
    slices: list = []
    evaluate_volumes(None, tmp_path, [3], ["interpolation"], leave_one_out=False, per_slice=slices)
    frame = pd.concat(slices, ignore_index=True)
    annotated = frame[frame["distance"] == 0]
    assert len(annotated) == 3 and (annotated["dice"] == 1.0).all()  # the annotated slices as given
    along = truth.any(axis=(0, 1))
    assert set(frame["slice"]) == set(np.nonzero(along)[0])  # every slice the target is on
    table = distance_summary(frame)
    assert "| 0 | 1.000 (3) |" in table and table.splitlines()[0] == "| distance | interpolation k = 3 |"
    out = tmp_path / "rows.csv"
    args = ["evaluate-volumes", "--data", str(tmp_path), "--slices", "3", "--methods", "interpolation"]
    assert main([*args, "--no-leave-one-out", "--per-slice", str(tmp_path / "slices.csv"), "--out", str(out)]) == 0
    assert "by its distance" in capsys.readouterr().out
    assert pd.read_csv(tmp_path / "slices.csv")[["slice", "distance", "dice"]].equals(
        frame[["slice", "distance", "dice"]]
    )


def test_segment_volume_names_the_slice_to_annotate_next(tmp_path, capsys):
    truth = write_case(tmp_path, "b")
    drawn = np.zeros(truth.shape, np.uint8)
    drawn[..., [7, 12]] = truth[..., [7, 12]]
    nib.save(nib.Nifti1Image(drawn, np.eye(4)), str(tmp_path / "drawn.nii.gz"))
    args = [
        "segment-volume",
        "--image",
        str(tmp_path / "b_image.nii.gz"),
        "--annotations",
        str(tmp_path / "drawn.nii.gz"),
    ]
    assert main([*args, "--method", "interpolation", "--out", str(tmp_path / "out.nii.gz")]) == 0
    assert "annotate slice 9 next" in capsys.readouterr().out  # the middle of the gap (9 and 10: the lower)
