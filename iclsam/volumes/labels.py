"""Several labels of a volume in one pass: annotated slices that are label maps in, a label volume
out. Each label is propagated as its own binary target (`segment_volume`, the same annotated
slices: a slice without the label says "not here"), the labels sharing one SAM encoding per slice
(the embedding cache); a voxel that two labels claim goes to the label whose cross-section on that
slice is smaller (a tumour beside a lung, a cup in a disc: the small structure is the one a big
mask swallows; each label's mask has passed its 3-D consistency steps, so no one fused score
describes it), and a nested label (`nested={inner: outer}`) is part of its outer one, as in
`iclsam.labels`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from ..labels import (
    check_nested,
    chosen_labels,
    label_map_dtype,
    label_target,
    resolve_overlaps,
    support_label_values,
)
from .propagation import VolumeResult, segment_volume

if TYPE_CHECKING:
    from ..model import ICLSAM


@dataclass
class LabelVolumeResult:
    """labels: the label volume on the input grid (the annotations' values and dtype); per_label:
    each label's `VolumeResult` before overlaps were resolved; record: what was done."""

    labels: np.ndarray
    per_label: dict[int, VolumeResult]
    record: dict = field(default_factory=dict)


def smaller_first_scores(mask: np.ndarray, axis: int) -> np.ndarray:
    """Per voxel, minus the area of the mask's cross-section on its slice along `axis`: where two
    labels claim a voxel, the one smaller on that slice keeps it."""
    areas = np.moveaxis(mask, axis, 0).reshape(mask.shape[axis], -1).sum(axis=1).astype(np.float64)
    shape = [1, 1, 1]
    shape[axis] = -1
    return np.broadcast_to(-areas.reshape(shape), mask.shape)


def annotation_values(annotations: Mapping[int, np.ndarray], support_volumes: Sequence) -> tuple[int, ...]:
    """The labels of label-map annotations and support volumes, checked as support label maps."""
    maps = [np.asarray(m) for m in annotations.values()] + [np.asarray(label) for _, label in support_volumes]
    names = [f"annotated slice {z}" for z in annotations] + [f"support volume {i}" for i in range(len(support_volumes))]
    return support_label_values(maps, names)


def segment_label_volume(
    model: ICLSAM | None,
    volume,
    annotations: Mapping[int, np.ndarray] | None,
    axis: int = 2,
    labels: Iterable[int] | None = None,
    nested: Mapping[int, int] | None = None,
    support_volumes: Sequence = (),
    **options,
) -> LabelVolumeResult:
    """`segment_volume` for each label of label-map annotations (see the module); `options` as
    `segment_volume`'s (spacing, method, keep_connected, context)."""
    annotations = dict(annotations or {})
    values = annotation_values(annotations, support_volumes)
    nested = check_nested(nested, values)
    chosen = chosen_labels(values, labels)
    per_label, masks, scores = {}, {}, {}
    for value in chosen:
        given = {z: label_target(m, value, nested) for z, m in annotations.items()}
        others = [(image, label_target(label, value, nested)) for image, label in support_volumes]
        others = [(image, target) for image, target in others if target.any()]
        if not any(m.any() for m in given.values()) and not others:
            raise ValueError(f"label {value}: no annotated slice and no support volume holds it")
        result = segment_volume(model, volume, given or None, axis=axis, support_volumes=others, **options)
        per_label[value], masks[value] = result, result.mask
        scores[value] = smaller_first_scores(result.mask, axis)
    label_map = resolve_overlaps(masks, scores, nested, label_map_dtype(annotations.values()))
    record = {"labels": chosen, "nested": {i: o for i, o in nested.items() if i in chosen}}
    record["seconds"] = round(sum(r.record.get("seconds", 0.0) for r in per_label.values()), 2)
    return LabelVolumeResult(label_map, per_label, record)
