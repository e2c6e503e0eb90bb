"""`iclsam evaluate-volumes`: ICL-SAM and the interpolation baseline on a folder of
`<case>_image.nii.gz` / `<case>_label.nii.gz` pairs (the real-dev-3d layout; sets as sub-folders),
with k annotated slices per volume placed as a user would: evenly inside the target's extent along
the axis, slice i of k at lo + (hi - lo)(i + 1)/(k + 1), rounded. Also a leave-one-volume-out row:
the other volumes of the set as support volumes, no annotated slice in the target volume."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from iclsam.apps.volumes.api import segment_volume
from iclsam.apps.volumes.scan_io import label_values, read_scan, same_grid
from iclsam.apps.volumes.volume_metrics import slice_scores, volume_metrics

if TYPE_CHECKING:
    from iclsam.method.model import ICLSAM

LEAVE_ONE_OUT = "other volumes"  # the `annotated` value of leave-one-volume-out rows


def annotated_slices(label: np.ndarray, k: int, axis: int = 2) -> list[int]:
    """k slices evenly inside the target's extent [lo, hi] along `axis`: lo + (hi - lo)(i + 1)/(k + 1)."""
    holding = np.nonzero(np.moveaxis(label, axis, 0).reshape(label.shape[axis], -1).any(axis=1))[0]
    if not len(holding):
        raise ValueError("the label volume holds no target")
    lo, hi = int(holding[0]), int(holding[-1])
    return sorted({int(round(lo + (hi - lo) * (i + 1) / (k + 1))) for i in range(k)})


def volume_pairs(root: str | Path) -> dict[str, list[tuple[str, Path, Path]]]:
    """{set: [(case, image path, label path), ...]}: the sub-folders of `root` holding
    `<case>_image.nii.gz` files with their `<case>_label.nii.gz` (or `root` itself as one set)."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"volume folder not found: {root}")
    folders = [root, *sorted(p for p in root.iterdir() if p.is_dir())]
    sets = {}
    for folder in folders:
        pairs = []
        for image in sorted(folder.glob("*_image.nii*")):
            case = image.name.split("_image.nii")[0]
            label = image.with_name(image.name.replace("_image.nii", "_label.nii"))
            if not label.is_file():
                raise FileNotFoundError(f"{image} has no label volume {label.name} beside it")
            pairs.append((case, image, label))
        if pairs:
            sets[folder.name] = pairs
    if not sets:
        raise FileNotFoundError(f"no <case>_image.nii.gz / <case>_label.nii.gz pairs under {root}")
    return sets


def target_of(label: np.ndarray, labels: Sequence[int] | None) -> np.ndarray:
    """The target: label > 0, or the voxels holding one of `labels`."""
    return label != 0 if not labels else np.isin(label, list(labels))


def evaluate_volumes(
    model: ICLSAM,
    root: str | Path,
    ks: Sequence[int] = (1, 3, 5),
    methods: Sequence[str] = ("iclsam", "interpolation"),
    axis: int = 2,
    sets: Sequence[str] | None = None,
    labels: Sequence[int] | None = None,
    leave_one_out: bool = True,
    progress=None,
    per_slice: list | None = None,
) -> pd.DataFrame:
    """One row per set, case, method and k (k = 0: leave-one-volume-out): dice, assd, hd95 (mm),
    the annotated slices, the target's extent in slices, seconds. Every volume is read and checked
    before any is segmented. `per_slice`: a list that receives, per case, method and k, the Dice of
    each slice with its distance to the nearest annotated slice (`slice_scores`)."""
    found = volume_pairs(root)
    if sets:
        unknown = sorted(set(sets) - set(found))
        if unknown:
            raise ValueError(f"sets {unknown} not found under {root} (it has {sorted(found)})")
        found = {name: found[name] for name in sets}
    cases = {
        name: {case: read_case(image, label, labels, axis) for case, image, label in pairs}
        for name, pairs in found.items()
    }
    rows = []
    for set_name, scans in cases.items():
        for case, (scan, truth) in scans.items():
            base = {"set": set_name, "case": case, "target_slices": target_extent(truth, axis)}
            others = [(s.array, t) for c, (s, t) in scans.items() if c != case] if leave_one_out else []
            slices = [] if per_slice is not None else None
            for row in evaluate_case(model, scan, truth, ks, methods, axis, others, slices):
                rows.append({**base, **row})
                if progress:
                    progress(rows[-1])
            if slices:
                per_slice += [frame.assign(set=set_name, case=case) for frame in slices]
    return pd.DataFrame(rows)


def read_case(image: Path, label: Path, labels: Sequence[int] | None, axis: int):
    """A case's scan and its target (`target_of`), checked as `segment-volume` checks its annotations:
    the same grid (shape and affine), whole-number labels, a target present."""
    scan, label_scan = read_scan(image), read_scan(label)
    same_grid(scan, label_scan)
    truth = target_of(label_values(label_scan), labels)
    if not truth.any():
        raise ValueError(
            f"{label}: the label volume holds no target" + (f" among labels {list(labels)}" if labels else "")
        )
    return scan, truth


def target_extent(truth: np.ndarray, axis: int) -> int:
    """How many slices along `axis` the target spans, first to last."""
    holding = np.nonzero(np.moveaxis(truth, axis, 0).reshape(truth.shape[axis], -1).any(axis=1))[0]
    return int(holding[-1] - holding[0] + 1)


def evaluate_case(
    model: ICLSAM,
    scan,
    truth: np.ndarray,
    ks: Sequence[int],
    methods: Sequence[str],
    axis: int,
    others: list,
    per_slice: list | None = None,
) -> list[dict]:
    """The rows of one case: each method with k annotated slices (`annotated_slices`), and ICL-SAM
    from the `others` volumes alone when there are any; `per_slice` receives each run's
    `slice_scores` (with method and k)."""
    rows = []
    for k in ks:
        chosen = annotated_slices(truth, k, axis)
        annotations = {z: np.take(truth, z, axis=axis) for z in chosen}
        for method in methods:
            result = segment_volume(model, scan.array, annotations, axis=axis, spacing=scan.spacing, method=method)
            if per_slice is not None:
                per_slice.append(slice_scores(result.mask, truth, chosen, axis).assign(method=method, k=k))
            rows.append(
                {
                    "method": method,
                    "k": k,
                    "annotated": " ".join(map(str, chosen)),
                    **volume_metrics(result.mask, truth, scan.spacing),
                    "seconds": result.record["seconds"],
                }
            )
    if others and "iclsam" in methods:
        result = segment_volume(model, scan.array, None, axis=axis, spacing=scan.spacing, support_volumes=others)
        rows.append(
            {
                "method": "iclsam",
                "k": 0,
                "annotated": LEAVE_ONE_OUT,
                **volume_metrics(result.mask, truth, scan.spacing),
                "seconds": result.record["seconds"],
            }
        )
    return rows


def volume_summary(rows: pd.DataFrame) -> pd.DataFrame:
    """Mean Dice and HD95 per set, method and k (k = 0: leave-one-volume-out), with the case count."""
    return rows.groupby(["set", "method", "k"], as_index=False, sort=True).agg(
        dice=("dice", "mean"), hd95=("hd95", "mean"), cases=("case", "count")
    )


def volume_markdown(summary: pd.DataFrame) -> str:
    """Rows set, columns method x k: 'Dice / HD95 mm'."""
    columns = [(m, k) for m, k in summary[["method", "k"]].drop_duplicates().itertuples(index=False)]
    columns.sort(key=lambda c: (c[1] == 0, c[1], c[0] != "iclsam"))
    names = [f"{m} k = {k}" if k else f"{m}, other volumes" for m, k in columns]
    lines = ["| set | " + " | ".join(names) + " |", "|---|" + "---|" * len(columns)]
    for set_name, rows in summary.groupby("set", sort=True):
        cells = []
        for method, k in columns:
            row = rows[(rows["method"] == method) & (rows["k"] == k)]
            cells.append("" if row.empty else f"{row['dice'].iloc[0]:.3f} / {row['hd95'].iloc[0]:.1f}")
        lines.append(f"| {set_name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


DISTANCE_BINS = ((0, 0), (1, 1), (2, 2), (3, 4), (5, 8), (9, None))  # slices from the nearest annotated one


def distance_summary(per_slice: pd.DataFrame) -> str:
    """Mean per-slice Dice by the slice's distance to the nearest annotated slice (rows: bins of
    `DISTANCE_BINS`; columns: method x k), with the number of slices: where the result is lost."""
    frame = per_slice[per_slice["distance"] >= 0]
    names = [f"{lo}" if hi == lo else f"{lo}+" if hi is None else f"{lo}-{hi}" for lo, hi in DISTANCE_BINS]
    bins = pd.cut(frame["distance"], [-0.5] + [b[1] + 0.5 for b in DISTANCE_BINS[:-1]] + [np.inf], labels=names)
    columns = sorted(frame[["method", "k"]].drop_duplicates().itertuples(index=False), key=lambda c: (c[1], c[0]))
    lines = ["| distance | " + " | ".join(f"{m} k = {k}" for m, k in columns) + " |", "|---|" + "---|" * len(columns)]
    for name in names:
        cells = []
        for method, k in columns:
            chosen = frame[(bins == name) & (frame["method"] == method) & (frame["k"] == k)]
            cells.append(f"{chosen['dice'].mean():.3f} ({len(chosen)})" if len(chosen) else "")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
