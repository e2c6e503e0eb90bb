"""Volumes in and out. NIfTI (`.nii`, `.nii.gz`) through nibabel, keeping the affine, the header and
the label values' dtype class; DICOM series (a folder), NRRD and MHA/MHD through SimpleITK, the
field's reader for them. Arrays are indexed as nibabel loads a NIfTI (x, y, z): SimpleITK's (z, y, x)
arrays are transposed, so `axis=2` is the third, usually axial, axis for every format. Spacing
(mm per voxel along each array axis) comes from the header."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..atomic import write_atomic

NIFTI = (".nii.gz", ".nii")
SIMPLEITK = (".nrrd", ".nhdr", ".mha", ".mhd")


@dataclass
class Scan:
    """A volume read from a file: the array (x, y, z), its spacing in mm per array axis, and what
    writing a label volume on its grid needs (`reference`: the nibabel image, or None)."""

    array: np.ndarray
    spacing: tuple[float, float, float]
    path: Path
    reference: object | None = None
    affine: np.ndarray | None = None


def is_volume_path(path: Path) -> bool:
    name = path.name.lower()
    return path.is_dir() or name.endswith(NIFTI) or name.endswith(SIMPLEITK)


def read_scan(path: str | Path) -> Scan:
    """A 3-D volume from a NIfTI file, a DICOM series folder, or an NRRD / MHA / MHD file; any
    failure is an error naming the file."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"volume not found: {path}")
    name = path.name.lower()
    if name.endswith(NIFTI):
        return _read_nifti(path)
    if path.is_dir() or name.endswith(SIMPLEITK):
        return _read_simpleitk(path)
    raise ValueError(f"{path}: not a volume file (NIfTI .nii/.nii.gz, NRRD, MHA/MHD, or a DICOM series folder)")


def _read_nifti(path: Path) -> Scan:
    import nibabel as nib

    try:
        image = nib.load(str(path))
        array = np.asarray(image.dataobj)
    except Exception as error:  # nibabel raises several types for damaged files
        raise ValueError(f"{path}: unreadable NIfTI ({type(error).__name__}: {error})") from None
    array = _three_d(array, path)
    zooms = tuple(float(z) for z in image.header.get_zooms()[:3])
    return Scan(array, zooms, path, reference=image, affine=image.affine)


def _read_simpleitk(path: Path) -> Scan:
    import SimpleITK as sitk

    try:
        if path.is_dir():
            reader = sitk.ImageSeriesReader()
            files = reader.GetGDCMSeriesFileNames(str(path))
            if not files:
                raise ValueError("no DICOM series in the folder")
            reader.SetFileNames(files)
            image = reader.Execute()
        else:
            image = sitk.ReadImage(str(path))
    except (RuntimeError, ValueError) as error:
        reason = (str(error).strip().splitlines() or [type(error).__name__])[-1]
        raise ValueError(f"{path}: unreadable volume ({reason})") from None
    array = _three_d(np.transpose(sitk.GetArrayFromImage(image)), path)  # (z, y, x) -> (x, y, z)
    return Scan(array, tuple(float(s) for s in image.GetSpacing()[:3]), path)


def _three_d(array: np.ndarray, path: Path) -> np.ndarray:
    if array.ndim == 4 and array.shape[3] == 1:
        array = array[..., 0]
    if array.ndim != 3:
        raise ValueError(f"{path}: a volume must be 3-D, got shape {array.shape}")
    return array


def label_dtype(labels: np.ndarray, like: np.dtype | None = None) -> np.dtype:
    """The dtype to write a label volume in: the input labels' own integer class when it holds the
    values, else the smallest unsigned type that does."""
    if like is not None and np.issubdtype(like, np.integer) and labels.max(initial=0) <= np.iinfo(like).max:
        return np.dtype(like)
    return np.dtype(np.uint8 if labels.max(initial=0) <= 255 else np.uint16)


WRITER_MARK = b"iclsam segment-volume"  # the NIfTI description of the label volumes we write


def write_label_volume(path: str | Path, labels: np.ndarray, scan: Scan, like: np.dtype | None = None) -> Path:
    """`labels` (on `scan`'s grid) as NIfTI at `path`, with `scan`'s affine and header (or its spacing
    when it was not a NIfTI), written atomically."""
    import nibabel as nib

    path = Path(path)
    if not path.name.lower().endswith(NIFTI):
        raise ValueError(f"{path}: label volumes are written as NIfTI (.nii.gz or .nii)")
    if labels.shape != scan.array.shape:
        raise ValueError(f"{path}: labels of shape {labels.shape} are not on the scan's grid {scan.array.shape}")
    dtype = label_dtype(labels, like)
    data = labels.astype(dtype)
    if scan.reference is not None:
        image = nib.Nifti1Image(data, scan.reference.affine, scan.reference.header)
    else:
        image = nib.Nifti1Image(data, np.diag([*scan.spacing, 1.0]))
    image.set_data_dtype(dtype)
    image.header.set_slope_inter(1.0, 0.0)
    image.header["descrip"] = WRITER_MARK  # so that a rerun may replace it (`written_by_iclsam`)
    return write_atomic(path, lambda p: nib.save(image, str(p)))


def written_by_iclsam(path: Path) -> bool:
    """Whether `path` is a label volume that `write_label_volume` wrote (its header's description)."""
    import nibabel as nib

    try:
        header = nib.load(str(path)).header
    except Exception:  # noqa: BLE001 (any file nibabel cannot read is not ours)
        return False
    return bytes(np.asarray(header.get("descrip", b""))).startswith(WRITER_MARK)
