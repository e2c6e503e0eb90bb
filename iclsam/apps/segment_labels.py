"""`iclsam segment` with label maps: support masks holding two or more label values (0 =
background) give one label map per query, with the support's values (`iclsam.method.label_maps`). PNG label
maps are 8-bit when every value fits, else 16-bit; NIfTI ones keep the support maps' dtype class."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
from PIL import Image

from iclsam.apps.segment_inputs import Query, find_mask
from iclsam.common.inputs import check_mask
from iclsam.common.metrics import dice
from iclsam.common.readers import read_mask_values
from iclsam.method.label_maps import is_label_map_set, label_target, predict_label_maps, support_label_values
from iclsam.method.model import ICLSAM


def read_support_masks(files: list[Path], folder: Path, images: list[np.ndarray]) -> tuple[list[np.ndarray], bool]:
    """The support masks of `files` from `folder`, and whether they are label maps: binary masks as
    bool (checked as today), label maps as stored (checked as label maps, naming the file)."""
    paths = [find_mask(folder, p.stem, p) for p in files]
    raw = [read_mask_values(path) for path in paths]
    for path, values, image in zip(paths, raw, images):
        if values.shape != image.shape[:2]:
            raise ValueError(
                f"{path}: mask is {values.shape[0]} x {values.shape[1]} but its image is {image.shape[0]} x {image.shape[1]}"
            )
    if not is_label_map_set(raw):
        return [
            check_mask(values, image.shape[:2], str(path)) for path, values, image in zip(paths, raw, images)
        ], False
    support_label_values(raw, [str(p) for p in paths])
    return raw, True


def segment_label_query(
    model: ICLSAM,
    support: list[np.ndarray],
    maps: list[np.ndarray],
    query: Query,
    labels: Iterable[int] | None,
    nested: Mapping[int, int] | None,
) -> list:
    """A query's slices as label maps (`predict_label_maps`, the full method)."""
    truths = None if query.truth is None else list(query.truth)
    return predict_label_maps(model, support, maps, query.slices, truths, ["iclsam"], labels, nested)


def label_map_writer(query: Query, maps: list[np.ndarray]):
    """Writes a query's label map: PNG of the values (8-bit, or 16-bit above 255) for an image,
    NIfTI with the query's header for a volume."""
    if query.header is None:
        values = maps[0]
        if values.max(initial=0) > 65535:
            raise ValueError(f"{query.path}: label values above 65535 do not fit a PNG; use NIfTI")
        image = (
            Image.fromarray(values.astype(np.uint8))
            if values.max(initial=0) <= 255
            else Image.fromarray(values.astype(np.uint16))
        )
        return lambda p: image.save(p, format="PNG")
    import nibabel as nib

    stacked = np.stack(maps, axis=-1)
    result = nib.Nifti1Image(stacked, query.header.affine, query.header.header)
    result.set_data_dtype(stacked.dtype)
    return lambda p: nib.save(result, str(p))


def label_dice_rows(query: Query, results: list) -> list[dict]:
    """Per label: the Dice of the query's label map (all its slices) against its truth."""
    nested = results[0].nested
    rows = []
    for v in results[0].values:
        truth = np.stack([label_target(t, v, nested) for t in query.truth])
        rows.append(
            {"query": query.path.name, "label": int(v), "iclsam": dice(np.stack([r.mask(v) for r in results]), truth)}
        )
    return rows
