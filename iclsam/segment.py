"""`iclsam segment`: ICL-SAM on folders of your own images.

Support: image files with a mask of the same name (stem) in the masks folder. Queries: 2-D image
files (PNG, JPEG, TIFF, BMP, .npy) -> one PNG mask each; NIfTI volumes (.nii, .nii.gz) -> one NIfTI
mask each (same header), segmented slice by slice along the last axis. Every input is read and
checked before anything is written; each output file appears whole (written, then renamed).

The output folder is never an input folder, two queries never share an output name, and
`<out>/run.json` records what wrote the masks (variant, SAM backbone, ICL weights, time, files with
their sha256). A new run into the same folder replaces what the previous run there recorded, so no
stale result survives beside the new ones; a folder holding anything else is refused
(`run_folder`), and an interrupted run leaves nothing new.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from .inputs import check_image
from .metrics import dice
from .model import ICLSAM
from .readers import IMAGE_SUFFIXES, NIFTI_SUFFIXES, is_nifti, read_image, read_mask, read_volume
from .run_folder import StagedRun, previous_outputs


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


def check_outputs(out: Path, inputs: dict[str, Path], queries: list[Path]) -> None:
    """Refuses an output folder that is one of the input folders and queries whose masks would share
    a file name."""
    target = out.resolve()
    for what, folder in inputs.items():
        if folder is not None and folder.resolve() == target:
            raise ValueError(
                f"the output folder {out} is the {what} folder {folder}: its files would be "
                "overwritten or mixed with masks; choose another --out"
            )
    if out.exists() and not out.is_dir():
        raise ValueError(f"the output folder {out} is a file")
    by_name: dict[str, list[Path]] = {}
    for path in queries:
        by_name.setdefault(output_name(path), []).append(path)
    clashes = {name: paths for name, paths in by_name.items() if len(paths) > 1}
    if clashes:
        name, paths = next(iter(sorted(clashes.items())))
        raise ValueError(
            f"queries {', '.join(str(p) for p in paths)} would all be written to {out / name}; "
            "rename them so that their names without extension differ"
        )


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


def read_query(path: Path, masks: Path | None) -> Query:
    mask_path = None if masks is None else find_mask(masks, stem_of(path), path)
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
            truth = [labels[..., k] != 0 for k in range(labels.shape[-1])]
        return Query(path, slices, truth, nib.load(str(path)))
    image = read_image(path)
    truth = None
    if mask_path is not None:
        truth = [read_mask(mask_path, image.shape[:2])]
    return Query(path, [image], truth)


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


def support_labels(
    model: ICLSAM,
    support_files: list[Path],
    support: list[np.ndarray],
    support_masks: Path | None,
    support_boxes: Path | None,
    support_points: Path | None,
) -> list[np.ndarray]:
    """The support masks: read from their folder, or densified from weak annotations (`ICLSAM.densify`)."""
    if support_masks is not None:
        return [read_mask(find_mask(support_masks, p.stem, p), x.shape[:2]) for p, x in zip(support_files, support)]
    kind, path = ("boxes", support_boxes) if support_boxes is not None else ("points", support_points)
    if path is None:
        raise ValueError("the support set needs masks, boxes or points")
    try:
        return model.densify(support, **{kind: read_weak_annotations(path, support_files, kind)})
    except ValueError as error:  # name the file: "support image i" is the i-th file in name order
        raise ValueError(f"{path}: {error} (support images in name order: {[p.name for p in support_files]})") from None


def segment_folders(
    model: ICLSAM,
    support_images: Path,
    support_masks: Path | None,
    queries: Path,
    out: Path,
    query_masks: Path | None = None,
    variant: str = "iclsam",
    progress=None,
    support_boxes: Path | None = None,
    support_points: Path | None = None,
) -> pd.DataFrame | None:
    """Segments every query; returns the Dice table when query masks are given (also written to
    `<out>/dice.csv`). The support masks come from `support_masks`, or from weak annotations
    (`support_boxes` / `support_points` CSVs), densified by SAM and written to
    `<out>/densified_<support stem>.png` for inspection. Every input and `out` are checked before
    anything is computed; the files appear together with their record (`run_folder.StagedRun`)."""
    support_files = list_images(support_images, "support images")
    unique_stems(support_files, "support images")
    query_files = list_images(queries, "query", allow_nifti=True)
    check_outputs(
        out,
        {
            "support images": support_images,
            "support masks": support_masks,
            "query": queries,
            "query masks": query_masks,
        },
        query_files,
    )
    previous_outputs(out)  # refuses a folder holding files we did not write, before any work
    if variant not in model.variants() or variant == "sam+gt":
        raise ValueError(
            f"unknown variant {variant!r}; this model gives {[v for v in model.variants() if v != 'sam+gt']}"
        )
    support = [read_image(p) for p in support_files]
    items = [read_query(p, query_masks) for p in query_files]
    labels = support_labels(model, support_files, support, support_masks, support_boxes, support_points)
    prepared = model.support_set(support, labels)  # features and Eq. 2 fit once for every query
    rows = []
    with StagedRun(out) as run:
        if support_masks is None:  # the densified support masks, for inspection
            for path, label in zip(support_files, labels):
                run.write(f"densified_{path.stem}.png", png_writer(label))
        for query in progress(items, desc="queries") if progress else items:
            per_slice = segment_query(model, prepared, query, variant)
            run.write(output_name(query.path), mask_writer(query, [p.masks[variant] for p in per_slice]))
            if query.truth is not None:
                rows.append(dice_row(query, per_slice))
        table = pd.DataFrame(rows) if rows else None
        if table is not None:
            run.write("dice.csv", lambda p: table.to_csv(p, index=False, float_format="%.4f"))
        run.commit(
            run_record(
                model, variant, support_images, support_masks, support_boxes, support_points, queries, query_masks
            )
        )
    return table


def segment_query(model: ICLSAM, prepared, query: Query, variant: str) -> list:
    """Every slice of a query through the model: only `variant` without a query mask; with one, every
    variant (the Dice table compares them)."""
    wanted = [variant] if query.truth is None else [v for v in model.variants() if v != "sam+gt"]
    per_slice = []
    for k, image in enumerate(query.slices):
        truth = None if query.truth is None else query.truth[k]
        per_slice.append(
            model.predict_query(prepared, image, truth if truth is not None and truth.any() else None, wanted)
        )
    return per_slice


def png_writer(mask: np.ndarray):
    return lambda p: Image.fromarray(mask.astype(np.uint8) * 255).save(p, format="PNG")


def mask_writer(query: Query, masks: list[np.ndarray]):
    """Writes a query's mask: PNG (0 / 255) for an image, NIfTI with the query's header for a volume."""
    if query.header is None:
        return png_writer(masks[0])
    import nibabel as nib

    result = nib.Nifti1Image(np.stack(masks, axis=-1).astype(np.uint8), query.header.affine, query.header.header)
    result.set_data_dtype(np.uint8)
    return lambda p: nib.save(result, str(p))


def dice_row(query: Query, per_slice: list) -> dict:
    truth = np.stack(query.truth)
    row = {"query": query.path.name}
    for name in per_slice[0].masks:
        if name != "sam+gt":
            row[name] = dice(np.stack([p.masks[name] for p in per_slice]), truth)
    return row


def run_record(
    model: ICLSAM,
    variant: str,
    support_images: Path,
    support_masks: Path | None,
    support_boxes: Path | None,
    support_points: Path | None,
    queries: Path,
    query_masks: Path | None,
) -> dict:
    """What wrote the masks: the model's settings, the inputs, the time (`run.json`)."""

    def text(path):
        return None if path is None else str(path)

    return {
        "variant": variant,
        "icl": model.icl,
        "icl_weights": model.icl_weights,
        "box_confidence": model.config.box_confidence,
        "fusion": model.config.fusion,
        "sam_steering": model.sam_steering,
        "device": str(model.device),
        "sam": model.sam.backbone.name,
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "support_images": str(support_images),
        "support_masks": text(support_masks),
        "support_boxes": text(support_boxes),
        "support_points": text(support_points),
        "query": str(queries),
        "query_masks": text(query_masks),
    }
