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

import dataclasses
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from iclsam.apps.run_folder import StagedRun, previous_outputs
from iclsam.apps.segment_inputs import Query, list_images, output_name, read_query, read_weak_annotations, unique_stems
from iclsam.apps.segment_labels import label_dice_rows, label_map_writer, read_support_masks, segment_label_query
from iclsam.common.metrics import dice
from iclsam.common.readers import read_image
from iclsam.method.label_maps import enclosed_labels, support_label_values
from iclsam.method.model import ICLSAM


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


def support_labels(
    model: ICLSAM,
    support_files: list[Path],
    support: list[np.ndarray],
    support_masks: Path | None,
    support_boxes: Path | None,
    support_points: Path | None,
) -> tuple[list[np.ndarray], bool]:
    """The support masks, and whether they are label maps: read from their folder
    (`segment_labels.read_support_masks`), or densified from weak annotations (`ICLSAM.densify`)."""
    if support_masks is not None:
        return read_support_masks(support_files, support_masks, support)
    kind, path = ("boxes", support_boxes) if support_boxes is not None else ("points", support_points)
    if path is None:
        raise ValueError("the support set needs masks, boxes or points")
    try:
        return model.densify(support, **{kind: read_weak_annotations(path, support_files, kind)}), False
    except ValueError as error:  # name the file: "support image i" is the i-th file in name order
        raise ValueError(f"{path}: {error} (support images in name order: {[p.name for p in support_files]})") from None


def check_label_choices(label_maps: bool, where: Path, variant: str, labels, nested) -> None:
    """A choice the run cannot honour is an error naming the support folder, not ignored."""
    if label_maps and variant != "iclsam":
        raise ValueError(f"{where} holds label maps: they are segmented with the full method, not {variant!r}")
    if not label_maps and (labels or nested):
        given = "--labels" if labels else "--nested"
        raise ValueError(f"{given} applies to label-map support masks; {where} holds binary masks (one target)")


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
    labels: Iterable[int] | None = None,
    nested: Mapping[int, int] | None = None,
) -> pd.DataFrame | None:
    """Segments every query; returns the Dice table when query masks are given (also written to
    `<out>/dice.csv`). The support masks come from `support_masks`, or from weak annotations
    (`support_boxes` / `support_points` CSVs), densified by SAM and written to
    `<out>/densified_<support stem>.png` for inspection. Every input and `out` are checked before
    anything is computed; the files appear together with their record (`run_folder.StagedRun`)."""
    support_files = list_images(support_images, "support images")
    unique_stems(support_files, "support images")
    query_files = list_images(queries, "query", allow_nifti=True)
    folders = {"support images": support_images, "support masks": support_masks, "query": queries}
    check_outputs(out, {**folders, "query masks": query_masks}, query_files)
    previous_outputs(out)  # refuses a folder holding files we did not write, before any work
    if variant not in model.variants() or variant == "sam+gt":
        raise ValueError(
            f"unknown variant {variant!r}; this model gives {[v for v in model.variants() if v != 'sam+gt']}"
        )
    support = [read_image(p) for p in support_files]
    masks, label_maps = support_labels(model, support_files, support, support_masks, support_boxes, support_points)
    where = support_masks if support_masks is not None else support_boxes or support_points
    check_label_choices(label_maps, where, variant, labels, nested)
    values = support_label_values(masks) if label_maps else None  # every query's labels checked before any work
    nesting = label_nesting(masks, values, nested) if label_maps else None
    nested = nesting["nested"] if label_maps else nested
    items = [read_query(p, query_masks, label_maps, values) for p in query_files]
    prepared = None if label_maps else model.support_set(support, masks)  # features and Eq. 2 fit once
    rows = []
    with StagedRun(out) as run:
        if support_masks is None:  # the densified support masks, for inspection
            for path, mask in zip(support_files, masks):
                run.write(f"densified_{path.stem}.png", png_writer(mask))
        for query in progress(items, desc="queries") if progress else items:
            if label_maps:
                rows += write_label_query(run, model, support, masks, query, labels, nested)
                continue
            per_slice = segment_query(model, prepared, query, variant)
            run.write(output_name(query.path), mask_writer(query, [p.masks[variant] for p in per_slice]))
            if query.truth is not None:
                rows.append(dice_row(query, per_slice))
        table = pd.DataFrame(rows) if rows else None
        if table is not None:
            run.write("dice.csv", lambda p: table.to_csv(p, index=False, float_format="%.4f"))
        record = run_record(
            model, variant, support_images, support_masks, support_boxes, support_points, queries, query_masks
        )
        run.commit(record if nesting is None else {**record, **nesting})
    return table


def label_nesting(masks, values, nested) -> dict:
    """The nesting a label-map run uses, for its record: the one given, else the labels every support
    map shows enclosed in another (`labels.enclosed_labels`)."""
    if nested is not None:
        return {"nested": dict(nested), "nested_from": "given (--nested)"}
    found = enclosed_labels(masks, values)
    return {"nested": found, "nested_from": "found: every support map holding it shows it enclosed" if found else None}


def write_label_query(run: StagedRun, model: ICLSAM, support, maps, query: Query, labels, nested) -> list[dict]:
    """A query segmented with label maps (`segment_labels`), its label map written; its Dice rows."""
    results = segment_label_query(model, support, maps, query, labels, nested)
    run.write(output_name(query.path), label_map_writer(query, [r.labels for r in results]))
    return [] if query.truth is None else label_dice_rows(query, results)


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
        "sam_steering": model.sam_steering,
        "device": str(model.device),
        "config": dataclasses.asdict(model.config),  # every setting (ICLSAMConfig), as the model ran
        "sam": model.sam.backbone.name,
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "support_images": str(support_images),
        "support_masks": text(support_masks),
        "support_boxes": text(support_boxes),
        "support_points": text(support_points),
        "query": str(queries),
        "query_masks": text(query_masks),
    }
