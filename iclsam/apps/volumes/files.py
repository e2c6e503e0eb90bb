"""`iclsam segment-volume` on files: the scan, a label volume holding the annotated slices, other
annotated scans; every input read and checked before any work, the result written atomically as
NIfTI on the scan's grid with the annotations' label values and dtype class. Annotations holding
two or more label values give a label map (`labels`), unless `label` picks one of them."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from iclsam.apps.volumes.api import next_slice_to_annotate, segment_volume
from iclsam.apps.volumes.checks import check_axis, check_volume
from iclsam.apps.volumes.scan_io import label_values, read_scan, same_grid, write_label_volume, written_by_iclsam

if TYPE_CHECKING:
    from iclsam.method.model import ICLSAM


def check_out(out: Path, inputs: Sequence[str | Path], overwrite: bool) -> None:
    """`out` is none of the inputs (compared as resolved paths), and replaces no file that iclsam did
    not write (`scan_io.written_by_iclsam`) unless `overwrite`."""
    for given in inputs:
        if out.resolve() == Path(given).resolve():
            raise ValueError(f"--out {out} is an input file ({given}); choose another name")
    if out.exists() and not overwrite and not written_by_iclsam(out):
        raise ValueError(
            f"--out {out} exists and was not written by iclsam segment-volume; choose another name, or pass "
            "--overwrite to replace it"
        )


def annotated_targets(
    labels: np.ndarray, slices: Sequence[int] | None, axis: int, label: int | None, path: Path
) -> dict[int, np.ndarray]:
    """{slice: mask} from a label volume: the listed slices (empty ones count), else those holding any
    label; the target is `label`, else the label map itself when it holds two or more values, else
    every value > 0."""
    if label is not None and not (labels == label).any():
        present = sorted(int(v) for v in np.unique(labels) if v != 0)
        raise ValueError(f"{path}: label value {label} is absent from the annotations (they hold {present})")
    multi = label is None and len(np.unique(labels[labels != 0])) > 1
    target = labels if multi else labels != 0 if label is None else labels == label
    depth = labels.shape[axis]
    if slices is None:
        slices = [int(z) for z in np.nonzero(np.moveaxis(labels, axis, 0).reshape(depth, -1).any(axis=1))[0]]
        if not slices:
            raise ValueError(
                f"{path}: no slice holds a label, so no slice is annotated; draw the target on one to three "
                "slices (or pass --support-volumes)"
            )
    bad = [z for z in slices if not 0 <= z < depth]
    if bad:
        raise ValueError(
            f"{path}: slice index {bad[0]} is out of range (the scan has {depth} slices along axis {axis})"
        )
    drawn = np.nonzero(np.moveaxis(labels, axis, 0).reshape(depth, -1).any(axis=1))[0]
    left_out = sorted(int(z) for z in set(drawn.tolist()) - set(slices))
    if left_out:  # a drawing is never dropped without a word
        raise ValueError(
            f"{path}: slices {left_out} hold labels but are not among --slices {sorted(slices)}; list them too, "
            "or leave --slices out to use every slice that holds a label"
        )
    return {int(z): np.take(target, z, axis=axis) for z in slices}


def check_label_options(values: np.ndarray, label, labels, nested, path: Path) -> None:
    """--labels / --nested apply to label-map annotations (two or more values, no --label); with a
    binary mask, with --label, or naming a value the annotations lack, the run could not honour them."""
    given = "--labels" if labels else "--nested" if nested else None
    if given is None:
        return
    if label is not None:
        raise ValueError(f"{given} and --label {label} exclude each other: --label segments that one label alone")
    if len(values) < 2:
        raise ValueError(
            f"{given} given, but {path} is a binary mask (label values {[int(v) for v in values]}); {given} "
            "applies to label-map annotations holding two or more label values"
        )
    named = {int(v) for v in [*(labels or []), *(nested or {}), *(nested or {}).values()]}
    missing = sorted(named - {int(v) for v in values})
    if missing:
        raise ValueError(f"{path}: labels {missing} given by {given} are absent (it holds {values.tolist()})")


BOX_COLUMNS = ("slice", "x0", "y0", "x1", "y1")


def read_slice_boxes(path: str | Path, depth: int) -> dict[int, np.ndarray]:
    """{slice: K x 4 XYXY boxes} from a CSV with columns slice, x0, y0, x1, y1 (one row per box, in
    pixels of the slice: x along its columns, y along its rows); bad files are named."""
    import pandas as pd

    path = Path(path)
    try:
        table = pd.read_csv(path)
    except (OSError, ValueError) as error:
        raise ValueError(f"{path}: unreadable boxes CSV ({error})") from None
    missing = [c for c in BOX_COLUMNS if c not in table.columns]
    if missing or table.empty:
        raise ValueError(f"{path}: a boxes CSV needs rows with columns {', '.join(BOX_COLUMNS)} (missing {missing})")
    values = table[list(BOX_COLUMNS)].to_numpy(dtype=float)
    if not np.isfinite(values).all() or (values != np.round(values)).any():
        raise ValueError(f"{path}: slice and box coordinates must be whole numbers of pixels")
    out: dict[int, list] = {}
    for z, *box in values.astype(np.int64):
        if not 0 <= z < depth:
            raise ValueError(f"{path}: slice {z} is out of range (the scan has {depth} slices along the axis)")
        out.setdefault(int(z), []).append(box)
    return {z: np.asarray(b, np.int64) for z, b in out.items()}


def read_support_volumes(specs: Sequence[str], label: int | None) -> list[tuple[np.ndarray, np.ndarray]]:
    """`image:labels` pairs, each on its own grid, the target as in the annotations (a label map
    when it holds two or more values and no `label` is picked)."""
    pairs = []
    for spec in specs:
        if spec.count(":") != 1:
            raise ValueError(f"--support-volumes {spec!r}: give image:labels")
        image_path, label_path = spec.split(":")
        image, labels = read_scan(image_path), read_scan(label_path)
        same_grid(image, labels)
        values = label_values(labels)
        multi = label is None and len(np.unique(values[values != 0])) > 1
        target = values if multi else values != 0 if label is None else values == label
        if not target.any():
            raise ValueError(f"{label_path}: no target voxel" + ("" if label is None else f" of label {label}"))
        pairs.append((check_volume(image.array, str(image_path)), target))
    return pairs


def segment_volume_files(
    model: ICLSAM | None,
    image: str | Path,
    annotations: str | Path | None,
    out: str | Path,
    slices: Sequence[int] | None = None,
    axis: int = 2,
    label: int | None = None,
    support_volumes: Sequence[str] = (),
    method: str = "iclsam",
    labels: Sequence[int] | None = None,
    nested: dict[int, int] | None = None,
    overwrite: bool = False,
    boxes: str | Path | None = None,
) -> dict:
    """Reads, checks, segments and writes; returns the run's record. `labels` / `nested`: with
    label-map annotations, see `ICLSAM.segment_volume`. `out` may replace only a file this command
    wrote, unless `overwrite` (`check_out`)."""
    out = Path(out)
    axis = check_axis(axis)
    inputs = [image, annotations, boxes, *(part for spec in support_volumes for part in str(spec).split(":"))]
    check_out(out, [p for p in inputs if p is not None], overwrite)
    scan = read_scan(image)
    check_volume(scan.array, str(scan.path))
    given, like, value = {}, None, 1 if label is None else label
    if annotations is not None:
        given, like, value = read_annotations(annotations, scan, slices, axis, label, labels, nested)
    elif not support_volumes and boxes is None:
        raise ValueError("give --annotations (the annotated slices), --boxes or --support-volumes")
    boxed = read_slice_boxes(boxes, scan.array.shape[axis]) if boxes is not None else None
    others = read_support_volumes(support_volumes, label)
    options = {"labels": labels, "nested": nested} if labels or nested else {}
    result = segment_volume(
        model,
        scan.array,
        given or None,
        axis=axis,
        spacing=scan.spacing,
        support_volumes=others,
        method=method,
        boxes=boxed,
        **options,
    )
    found = result.labels if hasattr(result, "labels") else result.mask.astype(np.int64) * value
    write_label_volume(out, found, scan, like)
    mask, annotated = found != 0, sorted({*given, *(boxed or {})})
    holding = np.moveaxis(mask, axis, 0).reshape(mask.shape[axis], -1).any(axis=1)
    return {
        **result.record,
        "method": method,
        "annotated": annotated,
        "target_voxels": int(mask.sum()),
        "target_slices": int(holding.sum()),
        "next_slice": next_slice_to_annotate(result, annotated, axis),  # where one more annotation helps most
    }


def read_annotations(path, scan, slices, axis: int, label, labels, nested) -> tuple[dict, np.dtype, int]:
    """The annotated slices of `--annotations` ({slice: target}, checked against the scan's grid and
    the label options), the annotations' dtype, and the value the result carries (their one label
    value, else 1 or `label`)."""
    marked = read_scan(path)
    same_grid(scan, marked)
    drawn = label_values(marked)
    given = annotated_targets(drawn, slices, axis, label, marked.path)
    values = np.unique(drawn[drawn != 0])
    check_label_options(values, label, labels, nested, marked.path)
    value = int(values[0]) if label is None and len(values) == 1 else 1 if label is None else label
    return given, marked.array.dtype, value
