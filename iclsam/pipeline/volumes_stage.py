"""The pipeline's `volumes` stage: ICL-SAM and the interpolation baseline on volumes from k
annotated slices (placed as `evaluate-volumes` places them), with Dice per slice against the
distance to the nearest annotated slice, on the bundled SYNTHETIC volumes (`synthetic`; real
volumes: `iclsam evaluate-volumes`, whose placement of the slices this stage shares)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from iclsam.apps.volumes.api import segment_volume
from iclsam.apps.volumes.evaluate_volumes import LEAVE_ONE_OUT, annotated_slices
from iclsam.apps.volumes.volume_metrics import slice_scores, volume_metrics
from iclsam.pipeline.synthetic_volumes import synthetic_volume

if TYPE_CHECKING:
    from iclsam.method.model import ICLSAM


@dataclass
class VolumeCase:
    """One scan of the stage: its set and name, image, target (bool) and voxel spacing in mm."""

    set: str
    name: str
    image: np.ndarray
    truth: np.ndarray
    spacing: tuple


def stage_cases(cases: int, seed: int) -> list[VolumeCase]:
    """`cases` synthetic volumes (`synthetic_volume`) from seeds seed, seed + 1, ..."""
    made = [(f"synthetic_{seed + i}", *synthetic_volume(seed + i)) for i in range(cases)]
    return [VolumeCase("synthetic", name, image, label != 0, spacing) for name, image, label, spacing in made]


def run_case(model: ICLSAM, case: VolumeCase, ks: Sequence[int], methods: Sequence[str]) -> tuple[list, list, dict]:
    """Each method with k annotated slices on one case: the rows (3-D metrics), the per-slice rows,
    and the predictions {(method, k): mask} for figures."""
    rows, slices, masks = [], [], {}
    for k in ks:
        chosen = annotated_slices(case.truth, k)
        annotations = {z: case.truth[..., z] for z in chosen}
        for method in methods:
            result = segment_volume(model, case.image, annotations, spacing=case.spacing, method=method)
            key = {"set": case.set, "case": case.name, "method": method, "k": k}
            rows.append(
                {
                    **key,
                    "annotated": " ".join(map(str, chosen)),
                    **volume_metrics(result.mask, case.truth, case.spacing),
                }
            )
            slices.append(slice_scores(result.mask, case.truth, chosen).assign(**key))
            masks[(method, k)] = result.mask
    return rows, slices, masks


def volumes_stage(model: ICLSAM, params: dict) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """The stage's work on `params["volumes"]`: the synthetic volume of `seed` with each k of
    `slices` and each of `methods`; with `context_volumes` > 0, also ICL-SAM from that many other
    synthetic volumes alone (leave-one-volume-out, k = 0). Returns the 3-D rows, the per-slice rows,
    and the case with its predictions (for the figure)."""
    p = params["volumes"]
    case, *others = stage_cases(1 + p["context_volumes"], p["seed"])
    rows, slices, masks = run_case(model, case, p["slices"], p["methods"])
    if others and "iclsam" in p["methods"]:
        context = [(c.image, c.truth) for c in others]
        result = segment_volume(model, case.image, None, spacing=case.spacing, support_volumes=context)
        rows.append(
            {
                "set": case.set,
                "case": case.name,
                "method": "iclsam",
                "k": 0,
                "annotated": LEAVE_ONE_OUT,
                **volume_metrics(result.mask, case.truth, case.spacing),
            }
        )
    return pd.DataFrame(rows), pd.concat(slices, ignore_index=True), {"case": case, "masks": masks}
