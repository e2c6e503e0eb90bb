"""2-D development tasks cut from volumes (`iclsam slice-volumes`): the prepared format, one window
per volume, the target's slices, a one-volume set split into contiguous slabs."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pandas as pd
from PIL import Image

from iclsam.apps.volumes.checks import normalise_intensities
from iclsam.cli import main
from iclsam.data.folder import open_task
from iclsam.pipeline.synthetic_volumes import synthetic_volume


def test_slice_volumes_writes_prepared_tasks_split_by_slab(tmp_path):
    image, label, _ = synthetic_volume(2)
    folder = tmp_path / "raw" / "chaos_ct_liver"
    folder.mkdir(parents=True)
    nib.save(nib.Nifti1Image(image, np.eye(4)), str(folder / "case_image.nii.gz"))
    nib.save(nib.Nifti1Image(label, np.eye(4)), str(folder / "case_label.nii.gz"))
    out = tmp_path / "out"
    assert main(["slice-volumes", "--data", str(tmp_path / "raw"), "--out", str(out), "--tasks", "rd3d-liver-ct"]) == 0
    task = open_task(out / "rd3d-liver-ct")
    meta = task.meta
    areas = label.sum(axis=(0, 1))
    expected = [z for z in range(label.shape[2]) if areas[z] >= 0.1 * areas.max()]
    slices = [int(i.rsplit("_", 1)[1]) for i in meta["id"]]
    assert slices == expected  # fewer than 24 such slices: every one of them
    window = np.moveaxis(normalise_intensities(np.moveaxis(image, 2, 0)), 0, 2)
    for image_id, z in zip(meta["id"], slices):
        stored, mask = task.load(image_id)
        assert np.array_equal(stored, window[..., z]) and np.array_equal(mask, label[..., z] != 0)
    assert set(meta["split"]) == {"support", "query"}
    by_slab = pd.Series(slices).groupby(meta["case"].to_numpy()).agg(["min", "max"]).sort_values("min")
    assert (by_slab["min"].to_numpy()[1:] > by_slab["max"].to_numpy()[:-1]).all()  # contiguous slabs
    assert np.asarray(Image.open(out / "rd3d-liver-ct" / "images" / f"{meta['id'][0]}.png")).dtype == np.uint8
