"""A box on one slice instead of a mask (issue 43, item 2): the box becomes the slice's mask through
SAM (as 2-D weak context) and the volume is segmented from it; on a synthetic scan the result is
close to the one from the true mask on that slice. Bad box input is one clear error."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from test_volumes import ellipsoid_volume

from iclsam import segment_volume
from iclsam.cli import main
from iclsam.common.metrics import dice


def box_of(mask: np.ndarray) -> list[int]:
    rows, cols = np.nonzero(mask)
    return [int(cols.min()), int(rows.min()), int(cols.max()), int(rows.max())]  # XYXY: x along columns


@pytest.mark.slow  # two volumes segmented by ICL-SAM
def test_a_box_on_the_largest_slice_does_nearly_what_its_mask_does(features_model):
    image, target = ellipsoid_volume()
    z = int(target.reshape(-1, target.shape[2]).sum(axis=0).argmax())
    from_mask = segment_volume(features_model, image, {z: target[..., z]})
    from_box = segment_volume(features_model, image, boxes={z: [box_of(target[..., z])]})
    assert from_box.record["boxes"] == [z] and from_box.record["annotated"] == [z]
    assert dice(from_box.mask[..., z], target[..., z]) > 0.85  # SAM's mask of the box on that slice
    assert dice(from_box.mask, target) >= 0.9 * dice(from_mask.mask, target)
    with pytest.raises(ValueError, match="both a mask and boxes"):
        segment_volume(features_model, image, {z: target[..., z]}, boxes={z: [box_of(target[..., z])]})
    with pytest.raises(ValueError, match="need the model's SAM"):
        segment_volume(None, image, boxes={z: [box_of(target[..., z])]}, method="interpolation")


def test_segment_volume_reads_boxes_from_a_csv_and_names_a_bad_one(tmp_path, capsys):
    image, target = ellipsoid_volume(shape=(48, 52, 12), centre=(24, 26, 6), radii=(12, 14, 4))
    nib.save(nib.Nifti1Image(image, np.eye(4)), str(tmp_path / "scan.nii.gz"))
    x0, y0, x1, y1 = box_of(target[..., 6])
    (tmp_path / "boxes.csv").write_text(f"slice,x0,y0,x1,y1\n6,{x0},{y0},{x1},{y1}\n")
    base = ["segment-volume", "--icl", "features", "--image", str(tmp_path / "scan.nii.gz")]
    assert main([*base, "--boxes", str(tmp_path / "boxes.csv"), "--out", str(tmp_path / "out.nii.gz")]) == 0
    found = np.asarray(nib.load(str(tmp_path / "out.nii.gz")).dataobj) != 0
    assert dice(found, target) > 0.7 and "annotated slices [6]" in capsys.readouterr().out
    for text, words in [
        ("slice,x0\n6,1\n", "needs rows with columns"),
        ("slice,x0,y0,x1,y1\n40,1,1,5,5\n", "slice 40 is out of range"),
    ]:
        (tmp_path / "bad.csv").write_text(text)
        assert main([*base, "--boxes", str(tmp_path / "bad.csv"), "--out", str(tmp_path / "bad.nii.gz")]) == 2
        error = capsys.readouterr().err
        assert "bad.csv" in error and words in error and error.count("\n") == 1, error
        assert not (tmp_path / "bad.nii.gz").exists()
