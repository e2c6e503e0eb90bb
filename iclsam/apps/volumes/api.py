"""`segment_volume`, the volumes' entry point: binary annotations go to `propagation`, label-map
annotations (two or more label values) to `label_volumes`, which propagates each label."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from iclsam.apps.volumes.checks import check_axis, check_volume
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
    **label_options,
) -> VolumeResult:
    """A 3-D scan from a few annotated slices of it: `annotations` {slice index along `axis`: H x W
    mask} (an empty mask says "no target on this slice"); `spacing` (mm per voxel); `support_volumes`
    [(image, label), ...] from other scans (alone: no annotated slice needed); `method`
    ("interpolation": the "fill between slices" baseline); `keep_connected`. Returns a `VolumeResult`:
    the mask on the input grid (annotated slices as given), a confidence per slice, a record of what
    was done (`propagation`). Label-map annotations: a `LabelVolumeResult` (`label_volumes`; options
    `labels`, `nested`)."""
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
    return segment_target(model, x, annotations, axis, support_volumes=support_volumes, **options)
