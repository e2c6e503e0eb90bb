"""Volumes in and out. NIfTI (`.nii`, `.nii.gz`) through nibabel, keeping the affine, the header and
the label values' dtype class; DICOM series (a folder), NRRD and MHA/MHD through SimpleITK, the
field's reader for them. Arrays are indexed as nibabel loads a NIfTI (x, y, z): SimpleITK's (z, y, x)
arrays are transposed, so `axis=2` is the third, usually axial, axis for every format. Spacing
(mm per voxel along each array axis) comes from the header, and must be positive. The affine
(voxel to world, RAS as in NIfTI) is the NIfTI's own, or SimpleITK's origin, direction and
spacing converted from its LPS world, so a label volume written as NIfTI lines up with the scan."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from iclsam.common.atomic import write_atomic

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
        return checked_spacing(_read_nifti(path))
    if path.is_dir() or name.endswith(SIMPLEITK):
        return checked_spacing(_read_simpleitk(path))
    raise ValueError(f"{path}: not a volume file (NIfTI .nii/.nii.gz, NRRD, MHA/MHD, or a DICOM series folder)")


def _read_nifti(path: Path) -> Scan:
    import nibabel as nib

    try:
        image = nib.load(str(path))
        array = np.asarray(image.dataobj)
    except Exception as error:  # nibabel raises several types for damaged files
        raise ValueError(f"{path}: unreadable NIfTI ({type(error).__name__}: {error})") from None
    array = _three_d(array, path)
    zooms = tuple(float(z) for z in stored_zooms(path, image))
    return Scan(array, zooms, path, reference=image, affine=image.affine)


def stored_zooms(path: Path, image) -> tuple:
    """The voxel sizes as the file stores them: nibabel's loader replaces a zero pixdim by 1 with a
    warning, which would pass a wrong spacing on; the header is read again here, unchecked."""
    from nibabel.openers import ImageOpener

    try:
        with ImageOpener(str(path)) as stream:
            header = type(image.header).from_fileobj(stream, check=False)
        return header.get_zooms()[:3]
    except Exception:  # noqa: BLE001 (a header type without a raw reader: nibabel's own values)
        return image.header.get_zooms()[:3]


def checked_spacing(scan: Scan) -> Scan:
    """`scan`, refused when a voxel size is zero, negative or not a number (distances in mm would be
    wrong)."""
    for axis, size in enumerate(scan.spacing):
        if not (np.isfinite(size) and size > 0):
            raise ValueError(
                f"{scan.path}: voxel size {size} along axis {axis} in its header (pixdim / spacing); every voxel "
                "size must be positive: fix the header"
            )
    return scan


def _read_simpleitk(path: Path) -> Scan:
    import SimpleITK as sitk

    try:
        if path.is_dir():
            reader = sitk.ImageSeriesReader()
            reader.SetFileNames(dicom_series_files(path))
            image = reader.Execute()
        else:
            image = sitk.ReadImage(str(path))
    except (RuntimeError, ValueError) as error:
        reason = (str(error).strip().splitlines() or [type(error).__name__])[-1]
        raise ValueError(f"{path}: unreadable volume ({reason})") from None
    array = _three_d(np.transpose(sitk.GetArrayFromImage(image)), path)  # (z, y, x) -> (x, y, z)
    spacing = tuple(float(s) for s in image.GetSpacing()[:3])
    return Scan(array, spacing, path, affine=ras_affine(image) if image.GetDimension() == 3 else None)


def dicom_series_files(folder: Path) -> list[str]:
    """The files of the one DICOM series in `folder`; a folder holding several is refused, listing
    each (UID, description, number of files), since reading one of them silently is a guess."""
    import SimpleITK as sitk

    uids = sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(folder))
    if not uids:
        raise ValueError("no DICOM series in the folder")
    if len(uids) > 1:
        listed = []
        for uid in uids:
            files = sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder), uid)
            listed.append(f"{uid} ({series_description(files[0])!r}, {len(files)} files)")
        raise ValueError(
            f"{len(uids)} DICOM series in one folder: " + "; ".join(listed) + ". Put each series in its own folder"
        )
    return list(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder), uids[0]))


def series_description(file: str) -> str:
    """A DICOM file's Series Description (0008,103E), or '' when it has none."""
    import SimpleITK as sitk

    reader = sitk.ImageFileReader()
    reader.SetFileName(file)
    reader.ReadImageInformation()
    key = "0008|103e"
    return reader.GetMetaData(key).strip() if reader.HasMetaDataKey(key) else ""


LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0])  # SimpleITK's world is LPS, NIfTI's RAS


def ras_affine(image) -> np.ndarray:
    """The NIfTI affine of a 3-D SimpleITK image: world = origin + direction . (spacing * index), in
    RAS. The index is (x, y, z), as our transposed arrays are indexed."""
    direction = np.asarray(image.GetDirection(), float).reshape(3, 3)
    affine = np.eye(4)
    affine[:3, :3] = LPS_TO_RAS @ direction @ np.diag(image.GetSpacing())
    affine[:3, 3] = LPS_TO_RAS @ np.asarray(image.GetOrigin(), float)
    return affine


def _three_d(array: np.ndarray, path: Path) -> np.ndarray:
    if array.ndim == 4 and array.shape[3] == 1:
        array = array[..., 0]
    if array.ndim != 3:
        raise ValueError(f"{path}: a volume must be 3-D, got shape {array.shape}")
    return array


def same_grid(scan: Scan, other: Scan) -> None:
    """`other` (labels) must lie on `scan`'s grid: the same shape and, where both are known, the same
    affine (voxel-to-world mapping)."""
    if other.array.shape != scan.array.shape:
        raise ValueError(
            f"{other.path}: shape {other.array.shape} differs from the scan {scan.path}'s {scan.array.shape}"
        )
    if scan.affine is not None and other.affine is not None and not np.allclose(scan.affine, other.affine, atol=1e-3):
        raise ValueError(
            f"{other.path}: its affine (voxel-to-world mapping) differs from the scan {scan.path}'s; "
            "resample it onto the scan's grid first"
        )


def label_values(labels: Scan) -> np.ndarray:
    """A label volume's array as integers: float volumes are accepted when every value is a whole
    number (a label value 0.5 is no label), anything else is refused naming the file."""
    array = labels.array
    if array.dtype == bool or np.issubdtype(array.dtype, np.integer):
        return array
    if not np.issubdtype(array.dtype, np.floating):
        raise ValueError(f"{labels.path}: a label volume must hold integers, got {array.dtype}")
    if not np.isfinite(array).all():
        raise ValueError(f"{labels.path}: the label volume holds NaN or infinite values")
    odd = array[array != np.round(array)]
    if odd.size:
        shown = ", ".join(f"{v:g}" for v in np.unique(odd)[:4])
        raise ValueError(
            f"{labels.path}: label values must be whole numbers (0 = background), found {shown}; save the "
            "labels as integers (for a binary mask: 0 and 1)"
        )
    return array.astype(np.int64)


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
    else:  # the scan's geometry (`ras_affine`) as both sform and qform, so every viewer places it
        image = nib.Nifti1Image(data, scan.affine if scan.affine is not None else np.diag([*scan.spacing, 1.0]))
        image.set_qform(image.affine, code=1)
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
