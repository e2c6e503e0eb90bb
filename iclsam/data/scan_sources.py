"""The volume data sets of the paper (BraTS 2020 MRI, KiTS23 CT): listing their cases and reading
axial slices of a case into (task, id, image, mask) records. MRI per volume clipped to the
0.5-99.5 percentiles of its non-zero voxels and scaled to 0..255; CT windowed to [-79, 304] HU."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from iclsam.common.readers import read_volume
from iclsam.data.source_files import Case, find_all, find_one
from iclsam.data.synthetic import CT_WINDOW


def mri_to_uint8(volume: np.ndarray) -> np.ndarray:
    """Clip to the 0.5-99.5 percentiles of the non-zero voxels, scale to 0..255 (zero stays zero
    when the volume is non-negative, as skull-stripped MRI is)."""
    volume = volume.astype(np.float32)
    nonzero = volume[volume != 0]
    if nonzero.size == 0:
        return np.zeros(volume.shape, np.uint8)
    lo, hi = np.percentile(nonzero, [0.5, 99.5])
    lo = min(lo, 0.0) if volume.min() >= 0 else lo
    scaled = (np.clip(volume, lo, hi) - lo) / max(hi - lo, 1e-6)
    return np.round(scaled * 255).astype(np.uint8)


def ct_to_uint8(volume: np.ndarray, window: tuple[float, float] = CT_WINDOW) -> np.ndarray:
    lo, hi = window
    return np.round((np.clip(volume.astype(np.float32), lo, hi) - lo) / (hi - lo) * 255).astype(np.uint8)


BRATS_MODALITIES = ("flair", "t1", "t1ce", "t2")


def brats_cases(raw: Path) -> list[Case]:
    mapping_path = find_one(raw, "**/name_mapping.csv", "BraTS2020 name_mapping.csv")
    mapping = pd.read_csv(mapping_path)
    for column in ("Grade", "BraTS_2020_subject_ID"):
        if column not in mapping.columns:
            raise ValueError(f"{mapping_path}: no column {column!r} (columns: {', '.join(mapping.columns)})")
    lgg = sorted(mapping.loc[mapping["Grade"].str.upper() == "LGG", "BraTS_2020_subject_ID"])
    if not lgg:
        raise ValueError(f"{mapping_path}: no LGG cases")
    cases = []
    for subject in lgg:
        folder = find_one(mapping_path.parent, subject, f"BraTS2020 case folder {subject}")
        files = {
            m: find_one(folder, f"{subject}_{m}.nii*", f"BraTS2020 {m} volume of {subject}") for m in BRATS_MODALITIES
        }
        try:
            files["seg"] = find_one(folder, f"{subject}_seg.nii*", "seg")
        except FileNotFoundError:  # one release names a mask differently (e.g. W39_1998.09.19_Segm.nii)
            files["seg"] = find_one(folder, "*Segm*.nii*", f"BraTS2020 segmentation of {subject}")
        cases.append(Case(subject, files))
    return cases


def brats_read(case: Case, options):
    seg = read_volume(case.files["seg"])
    labels = set(np.unique(seg).astype(int).tolist())
    if not labels <= {0, 1, 2, 4}:
        raise ValueError(f"{case.files['seg']}: labels {sorted(labels)}, expected a subset of 0, 1, 2, 4")
    tumour = seg > 0  # whole tumour = 1 NCR/NET + 2 oedema + 4 enhancing
    volumes = {}
    for m in BRATS_MODALITIES:
        volume = read_volume(case.files[m])
        if volume.shape != seg.shape:
            raise ValueError(f"{case.files[m]}: shape {volume.shape} differs from the mask's {seg.shape}")
        volumes[m] = mri_to_uint8(volume)
    for z in np.flatnonzero(tumour.any(axis=(0, 1))):  # axial slices are on the last axis
        for m in BRATS_MODALITIES:
            yield (
                f"brats_{m}",
                f"{case.case}_z{z:03d}",
                np.ascontiguousarray(np.rot90(volumes[m][:, :, z])),
                np.ascontiguousarray(np.rot90(tumour[:, :, z])),
                f"{case.files[m]} slice {z}",
            )


def kits_cases(raw: Path) -> list[Case]:
    folders = sorted({p.parent for p in find_all(raw, "**/case_*/imaging.nii.gz")})
    if not folders:
        raise FileNotFoundError(f"KiTS23: no case_NNNNN/imaging.nii.gz under {raw}")
    cases = []
    for folder in folders:
        seg = folder / "segmentation.nii.gz"
        if not seg.is_file():
            raise FileNotFoundError(f"KiTS23 segmentation not found: {seg}")
        cases.append(Case(folder.name, {"image": folder / "imaging.nii.gz", "seg": seg}))
    return cases


def kits_read(case: Case, options):
    seg, ct = read_volume(case.files["seg"]), read_volume(case.files["image"])
    if seg.shape != ct.shape:
        raise ValueError(f"{case.files['image']}: shape {ct.shape} differs from the segmentation's {seg.shape}")
    target = (seg == 1) | (seg == 2)  # kidney + tumour; cysts (3) count as background
    ct = ct_to_uint8(ct, options.get("window", CT_WINDOW))
    for z in np.flatnonzero(target.any(axis=(1, 2))):  # axial slices are on the first axis
        yield "kits23", f"{case.case}_z{z:03d}", ct[z], target[z], f"{case.files['image']} slice {z}"
