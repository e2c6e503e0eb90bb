"""What `iclsam segment` reads: image folders, masks paired by file name (stem), queries (2-D
images or NIfTI volumes), and weak annotations (boxes or clicks) from a CSV. Every input is read
and checked before anything is written; every error names the file."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from iclsam.common.inputs import check_image
from iclsam.common.readers import (
    IMAGE_SUFFIXES,
    NIFTI_SUFFIXES,
    is_nifti,
    read_image,
    read_mask,
    read_mask_values,
    read_volume,
)


def stem_of(path: Path) -> str:
    name = path.name
    for suffix in NIFTI_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def list_images(folder: Path, what: str, allow_nifti: bool = False) -> list[Path]:
    if not folder.is_dir():
        raise FileNotFoundError(f"{what} folder not found: {folder}")
    files = sorted(
        p
        for p in folder.iterdir()
        if p.is_file()
        and not p.name.startswith(".")
        and (p.suffix.lower() in IMAGE_SUFFIXES or (allow_nifti and is_nifti(p)))
    )
    if not files:
        kinds = ", ".join(IMAGE_SUFFIXES + (NIFTI_SUFFIXES if allow_nifti else ()))
        raise FileNotFoundError(f"{what} folder {folder} has no image files ({kinds})")
    return files


def output_name(path: Path) -> str:
    """The mask file a query gives: <stem>.nii.gz for NIfTI, <stem>.png otherwise."""
    return f"{stem_of(path)}.nii.gz" if is_nifti(path) else f"{stem_of(path)}.png"


MASK_SUFFIXES = (".png", ".tif", ".tiff", ".bmp", ".nii.gz", ".nii")


def unique_stems(files: list[Path], what: str) -> None:
    """Two files whose names differ only in their extension cannot be paired by stem: an error naming both."""
    seen: dict[str, Path] = {}
    for path in files:
        stem = stem_of(path)
        if stem in seen:
            raise ValueError(
                f"{what} {seen[stem]} and {path} have the same name without extension, so which one a "
                "mask belongs to is ambiguous; rename one of them"
            )
        seen[stem] = path


def find_mask(folder: Path, stem: str, for_file: Path) -> Path:
    """The one mask named `stem` (any mask extension) in `folder`; none or several is an error."""
    found = [folder / f"{stem}{suffix}" for suffix in MASK_SUFFIXES if (folder / f"{stem}{suffix}").is_file()]
    if len(found) > 1:
        raise ValueError(f"{for_file} has several masks in {folder}: {', '.join(p.name for p in found)}; keep one")
    if not found:
        raise FileNotFoundError(f"no mask for {for_file} in {folder} (looked for {stem}.png, .tif, .bmp, .nii.gz)")
    return found[0]


@dataclass
class Query:
    path: Path
    slices: list[np.ndarray]  # one 2-D image, or the slices of a volume (last axis)
    truth: list[np.ndarray] | None
    header: object | None = None  # the NIfTI image, to copy its header and affine


def read_query(
    path: Path, masks: Path | None, label_maps: bool = False, label_values: Sequence[int] | None = None
) -> Query:
    """A query file with its truth (`masks`: their folder): binary masks as bool, or, with
    `label_maps`, the stored label values, each one of `label_values` (the support's labels) when given."""
    mask_path = None if masks is None else find_mask(masks, stem_of(path), path)
    query = _read_query(path, mask_path, label_maps)
    if query.truth is not None and label_maps and label_values is not None:
        extra = sorted(set(np.unique(np.stack(query.truth)).astype(np.int64).tolist()) - {0, *label_values})
        if extra:
            raise ValueError(
                f"{mask_path}: holds label values {extra} that no support label map has (labels {list(label_values)})"
            )
    return query


def _read_query(path: Path, mask_path: Path | None, label_maps: bool) -> Query:
    if is_nifti(path):
        import nibabel as nib

        volume = read_volume(path)
        if volume.ndim != 3:
            raise ValueError(f"{path}: a NIfTI query must be a 3-D volume, got shape {volume.shape}")
        slices = [check_image(volume[..., k].astype(np.float32), f"{path} slice {k}") for k in range(volume.shape[-1])]
        truth = None
        if mask_path is not None:
            labels = read_volume(mask_path)
            if labels.shape != volume.shape:
                raise ValueError(f"{mask_path}: shape {labels.shape} differs from its volume's {volume.shape}")
            truth = [labels[..., k] if label_maps else labels[..., k] != 0 for k in range(labels.shape[-1])]
        return Query(path, slices, truth, nib.load(str(path)))
    image = read_image(path)
    truth = None
    if mask_path is not None:
        truth = [read_label_truth(mask_path, image.shape[:2]) if label_maps else read_mask(mask_path, image.shape[:2])]
    return Query(path, [image], truth)


def read_label_truth(path: Path, shape: tuple[int, int]) -> np.ndarray:
    """A query's label map, checked: the image's size, whole numbers."""
    values = read_mask_values(path)
    if values.shape != tuple(shape):
        raise ValueError(
            f"{path}: label map is {values.shape[0]} x {values.shape[1]} but its image is {shape[0]} x {shape[1]}"
        )
    if np.issubdtype(values.dtype, np.floating) and (~np.isfinite(values) | (values != np.round(values))).any():
        raise ValueError(f"{path}: a label map must hold whole numbers")
    return values


WEAK_COLUMNS = {"boxes": ["x0", "y0", "x1", "y1"], "points": ["x", "y"]}


def read_weak_annotations(path: Path, support_files: list[Path], kind: str) -> list[np.ndarray]:
    """Boxes (columns image, x0, y0, x1, y1) or points (image, x, y) per support image from a CSV,
    several rows per image for several objects; `image` is the support file's name or stem."""
    try:
        table = pd.read_csv(path)
    except (OSError, ValueError) as error:
        raise ValueError(f"{path}: not a readable CSV ({error})") from None
    missing = [c for c in ["image", *WEAK_COLUMNS[kind]] if c not in table.columns]
    if missing:
        raise ValueError(
            f"{path}: missing column(s) {missing}; {kind} need columns image, {', '.join(WEAK_COLUMNS[kind])}"
        )
    names = {**{p.stem: p for p in support_files}, **{p.name: p for p in support_files}}
    unknown = sorted({str(n) for n in table["image"]} - set(names))
    if unknown:
        raise ValueError(f"{path}: rows for {unknown[:3]}, which are not support images")
    table["file"] = [names[str(n)] for n in table["image"]]
    annotations = []
    for file in support_files:
        rows = table[table["file"] == file]
        if rows.empty:
            raise ValueError(f"{path}: no {kind[:-1]} for the support image {file}")
        annotations.append(rows[WEAK_COLUMNS[kind]].to_numpy(dtype=float))
    return annotations
