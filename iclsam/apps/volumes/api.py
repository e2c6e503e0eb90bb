"""`segment_volume`, the volumes' entry point: binary annotations go to `propagation`, label-map
annotations (two or more label values) to `label_volumes`, which propagates each label."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from iclsam.apps.volumes.checks import check_axis, check_volume, normalise_intensities
from iclsam.apps.volumes.label_volumes import segment_label_volume
from iclsam.apps.volumes.propagation import CONTEXT, VolumeResult, segment_target
from iclsam.method.label_maps import is_label_map_set

if TYPE_CHECKING:
    from iclsam.method.model import ICLSAM


def segment_volume(
    model: ICLSAM,
    volume,
    annotations: dict | None = None,
    axis: int = 2,
    spacing: Sequence[float] | None = None,
    support_volumes=(),
    method: str = "iclsam",
    keep_connected: bool = True,
    context: int = CONTEXT,
    boxes: dict | None = None,
    **label_options,
) -> VolumeResult:
    """A 3-D scan from a few annotated slices of it: `annotations` {slice index along `axis`: H x W
    mask} (an empty mask says "no target on this slice"); `spacing` (mm per voxel; it also tells
    whether the slices are thin against the target, `shape_priors.thin_slices`, which decides where
    the target is taken to end; without it the slices count as thick); `support_volumes`
    [(image, label), ...] from other scans (alone: no annotated slice needed); `method`
    ("interpolation": the "fill between slices" baseline); `keep_connected`. Returns a `VolumeResult`:
    the mask on the input grid (annotated slices as given), a confidence per slice, a record of what
    was done (`propagation`). Label-map annotations: a `LabelVolumeResult` (`label_volumes`; options
    `labels`, `nested`). `boxes` {slice: K x 4 XYXY boxes, one per object}: slices marked with boxes
    instead of masks (`boxed_slices`), which then count as annotated slices."""
    if boxes:
        annotations = {**(annotations or {}), **boxed_slices(model, volume, boxes, axis, annotations)}
    options = {"spacing": spacing, "method": method, "keep_connected": keep_connected, "context": context}
    if is_label_map_set([*(annotations or {}).values(), *(label for _, label in support_volumes)]):
        return segment_label_volume(
            model, volume, annotations, axis, support_volumes=support_volumes, **options, **label_options
        )
    unused = sorted(name for name, value in label_options.items() if value)
    if unused:
        raise ValueError(f"{', '.join(unused)} given, but the annotations are binary masks: they apply to label maps")
    axis = check_axis(axis)
    x = np.moveaxis(check_volume(volume), axis, 0)
    result = segment_target(model, x, annotations, axis, support_volumes=support_volumes, **options)
    if boxes:
        result.record["boxes"] = sorted(int(z) for z in boxes)
    return result


def boxed_slices(model: ICLSAM | None, volume, boxes: dict, axis: int, annotations: dict | None) -> dict:
    """Masks for the slices marked with boxes: each slice (as `np.take(volume, z, axis)` gives it,
    x along its columns and y along its rows) with the scan's one intensity window, its boxes
    densified by the model's SAM (`ICLSAM.densify`, as 2-D weak context)."""
    if model is None:
        raise ValueError("boxes need the model's SAM to become masks; give a model")
    axis = check_axis(axis)
    x = np.moveaxis(check_volume(volume), axis, 0)
    both = sorted(set(boxes) & set(annotations or {}))
    if both:
        raise ValueError(f"slices {both} have both a mask and boxes; give one of the two per slice")
    bad = [z for z in boxes if not -len(x) <= int(z) < len(x)]
    if bad:
        raise ValueError(f"box slice {bad[0]} is out of range (the scan has {len(x)} slices along axis {axis})")
    window = normalise_intensities(x)
    chosen = sorted(int(z) for z in boxes)
    masks = model.densify([window[z] for z in chosen], boxes=[np.asarray(boxes[z]) for z in chosen])
    return dict(zip(chosen, masks))


def next_slice_to_annotate(result, annotated: Sequence[int], axis: int = 2) -> int | None:
    """Where one more annotation would help most: of the slices along `axis` that the result holds
    the target on and no annotation covers, the one of lowest confidence (the confidence map's mean
    over the predicted target; for a label volume, its least confident label there); ties (the
    baselines' confidence is 1 on every filled slice) go to the slice farthest from an annotated one.
    None when every slice holding the target is annotated."""
    parts = list(result.per_label.values()) if hasattr(result, "per_label") else [result]
    depth = parts[0].mask.shape[axis]
    holding = [np.moveaxis(r.mask, axis, 0).reshape(depth, -1).any(axis=1) for r in parts]
    marks = np.asarray(sorted(annotated)) if len(annotated) else np.asarray([-(10**9)])
    scores = {}
    for z in range(depth):
        held = [float(r.confidence[z]) for r, h in zip(parts, holding) if h[z]]
        if held and z not in set(annotated):
            scores[z] = (round(min(held), 6), -int(np.abs(marks - z).min()), z)
    return min(scores, key=scores.get) if scores else None
