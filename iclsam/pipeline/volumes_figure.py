"""The `volumes` stage's figure: three orthogonal views of one volume with each method's result over
the truth (annotated slices marked), and Dice per slice against the distance to the nearest
annotated slice."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from iclsam.pipeline.figures import _save_with_footer, plt
from iclsam.pipeline.report import Provenance

METHOD_STYLE = {
    "iclsam": ("ICL-SAM", "#d62728", "-"),
    "interpolation": ("interpolation", "#1f77b4", "--"),
    "contour-interpolation": ("contour interpolation", "#9467bd", ":"),
}
TRUTH_COLOUR = "#2ca02c"


def view_planes(truth: np.ndarray, annotated: list[int]) -> dict[str, tuple[int, int]]:
    """{view: (axis, index)}: the axial slice (axis 2) half way between the first two annotated
    slices (or the target's largest slice beside a single one), and the coronal and sagittal
    planes through the target's centre."""
    centre = [int(round(c)) for c in np.argwhere(truth).mean(axis=0)]
    if len(annotated) > 1:
        axial = (annotated[0] + annotated[1]) // 2
    else:
        areas = truth.sum(axis=(0, 1)).astype(float)
        areas[annotated] = -1
        axial = int(np.argmax(areas))
    return {"axial": (2, axial), "coronal": (0, centre[0]), "sagittal": (1, centre[1])}


def _plane(volume: np.ndarray, axis: int, index: int) -> np.ndarray:
    """A plane of an H x W x D volume; coronal and sagittal ones with the slices running upwards."""
    cut = np.take(volume, index, axis=axis)
    return cut if axis == 2 else cut.T


def _view(ax, case, masks: dict, annotated: list[int], axis: int, index: int, title: str) -> None:
    """One plane of the image with the truth (shaded) and each method's outline."""
    origin = "upper" if axis == 2 else "lower"
    aspect = 1.0 if axis == 2 else case.spacing[2] / case.spacing[1 - axis]
    ax.imshow(_plane(case.image, axis, index), cmap="gray", aspect=aspect, origin=origin)
    truth = _plane(case.truth, axis, index).astype(float)
    if truth.any():
        ax.contourf(truth, levels=[0.5, 1.5], colors=TRUTH_COLOUR, alpha=0.35, origin=origin)
    outlines = []
    for method, mask in masks.items():
        _, colour, style = METHOD_STYLE.get(method, (method, "k", ":"))
        outlines.append((mask, colour, 1.0, style))
    for mask, colour, width, style in outlines:
        plane = _plane(mask, axis, index).astype(float)
        if plane.any():
            ax.contour(plane, levels=[0.5], colors=colour, linewidths=width, linestyles=style, origin=origin)
    if axis != 2:
        for z in annotated:
            ax.axhline(z, color="yellow", lw=0.5, ls=":")
    ax.set_title(title, fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])


def draw_views(axes, case, masks: dict, annotated: list[int]) -> None:
    """Three orthogonal views (`view_planes`) of `case` (a `stage.VolumeCase`) on three axes: the
    truth shaded, each method's mask {method: H x W x D} outlined, annotated slices dotted."""
    for ax, (view, (axis, index)) in zip(axes, view_planes(case.truth, annotated).items()):
        title = f"{view}, slice {index}" + (" (annotated slices dotted)" if axis != 2 else "")
        _view(ax, case, masks, annotated, axis, index, title)


def volume_figure(example: dict, per_slice: pd.DataFrame, k: int, provenance: Provenance, path: str | Path) -> Path:
    """Top: the example case (`volumes_stage`'s) at k annotated slices, three views; bottom: mean
    Dice per slice against the distance to the nearest annotated slice, one line per method and k."""
    case, masks = example["case"], {m: mask for (m, kk), mask in example["masks"].items() if kk == k}
    per_slice = per_slice[per_slice["case"] == case.name]
    annotated = sorted(set(per_slice.loc[(per_slice["k"] == k) & (per_slice["distance"] == 0), "slice"].astype(int)))
    fig = plt.figure(figsize=(10, 6.4))
    draw_views([fig.add_subplot(2, 3, i + 1) for i in range(3)], case, masks, annotated)
    ax = fig.add_subplot(2, 1, 2)
    means = (
        per_slice[per_slice["case"] == case.name].groupby(["method", "k", "distance"], as_index=False)["dice"].mean()
    )
    for (method, kk), group in means.groupby(["method", "k"], sort=True):
        name, colour, style = METHOD_STYLE.get(method, (method, "k", ":"))
        alpha = 1.0 if kk == k else 0.45
        ax.plot(
            group["distance"],
            group["dice"],
            style,
            color=colour,
            alpha=alpha,
            marker="o",
            ms=3,
            label=f"{name}, k = {kk}",
        )
    ax.set_xlabel("distance to the nearest annotated slice (slices)", fontsize=8)
    ax.set_ylabel("Dice of the slice", fontsize=8)
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=7, loc="lower left")
    ax.tick_params(labelsize=7)
    fig.suptitle(
        f"Volumes: {case.name}, k = {k} annotated slices; truth shaded green, ICL-SAM red, interpolation blue "
        "dashed, contour interpolation purple dotted",
        fontsize=10,
    )
    return _save_with_footer(fig, provenance, path)
