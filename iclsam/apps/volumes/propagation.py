"""ICL-SAM on a volume: the annotated slices of the same scan (and, optionally, slices of other
annotated scans) are the context; the other slices are segmented outward from the annotated ones,
each with the nearest annotated slices and its already segmented neighbours as its support set
(the context grows as propagation proceeds); the result is made consistent in 3-D.

Steps, each a function below: `check_volume` / `check_annotations` (bad input: one line, nothing
done), `normalise_intensities` (one window for the whole scan), `propagation_order`, `slice_support`
(the context of one slice), `target_present`, then from `shape_priors` what the annotated slices
say of a slice's target (`search_region`, `within_expected_area`, `beyond_annotations`),
`keep_connected_to_annotations`, `blend_between_annotations` and
`fill_between_annotations` (3-D consistency, `consistency`); the input checks are in `checks`."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from iclsam.apps.volumes.checks import check_annotations, check_volume, normalise_intensities
from iclsam.apps.volumes.consistency import (
    blend_between_annotations,
    fill_between_annotations,
    keep_connected_to_annotations,
)
from iclsam.apps.volumes.contour_interpolation import contour_interpolation
from iclsam.apps.volumes.interpolation import interpolate_slices
from iclsam.apps.volumes.shape_priors import (
    beyond_annotations,
    search_region,
    step_towards_annotation,
    thin_slices,
    within_expected_area,
)

if TYPE_CHECKING:
    from iclsam.method.model import ICLSAM

METHODS = (
    "iclsam",
    "interpolation",
    "contour-interpolation",
)  # the baselines: `interpolation`, `contour_interpolation`
CONTEXT = 2  # already segmented neighbour slices that join a slice's support set
SUPPORT_PER_VOLUME = 6  # slices taken from each other annotated scan


@dataclass
class VolumeResult:
    """mask: the target on the input grid (annotated slices exactly as given); confidence: per slice
    along the axis, the confidence map's mean over the predicted target (1 on annotated slices that
    hold the target, 0 where nothing was predicted); record: what was done, in words and numbers."""

    mask: np.ndarray
    confidence: np.ndarray
    record: dict = field(default_factory=dict)


def propagation_order(depth: int, annotated: Sequence[int]) -> list[int]:
    """The slices to segment, nearest to an annotated slice first (ties: lower index first)."""
    marks = np.array(sorted(annotated))
    rest = [z for z in range(depth) if z not in set(annotated)]
    return sorted(rest, key=lambda z: (int(np.abs(marks - z).min()), z))


def slice_support(z: int, positive: Sequence[int], done: dict[int, np.ndarray], context: int = CONTEXT) -> list[int]:
    """The slices whose images and masks are slice z's support set: the nearest annotated slice
    holding the target on each side of z, and up to `context` already segmented slices next to z on
    the way to its nearest one (the context grows as propagation moves out)."""
    below = [k for k in positive if k < z]
    above = [k for k in positive if k > z]
    chosen = ([below[-1]] if below else []) + ([above[0]] if above else [])
    step = z - step_towards_annotation(z, positive)
    for distance in range(1, context + 1):
        neighbour = z - step * distance
        if neighbour in done and done[neighbour].any() and neighbour not in chosen:
            chosen.append(neighbour)
    return sorted(chosen)


def target_present(
    z: int, positive: Sequence[int], empty: Sequence[int], done: dict[int, np.ndarray], flat: bool = False
) -> bool:
    """Whether slice z may hold the target: inside the annotated range always; outside it only while
    the neighbour towards the annotations still holds it, no slice annotated as empty lies between
    them, and the slice is not `flat` (one intensity everywhere: no signal to follow)."""
    lo, hi = min(positive), max(positive)
    if lo <= z <= hi:
        return True
    if flat:
        return False
    side = range(z + 1, lo) if z < lo else range(hi + 1, z)
    if any(k in side for k in empty):
        return False
    neighbour = step_towards_annotation(z, positive)
    return neighbour in positive or (neighbour in done and bool(done[neighbour].any()))


def support_slices(
    volumes: Sequence[tuple[np.ndarray, np.ndarray]], axis: int, per_volume: int = SUPPORT_PER_VOLUME
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Support pairs from other annotated scans: up to `per_volume` slices holding the target,
    evenly spread over its extent along `axis`, each scan with its own intensity window."""
    pairs = []
    for i, (image, label) in enumerate(volumes):
        image = np.moveaxis(check_volume(image, f"support volume {i}"), axis, 0)
        label = np.moveaxis(np.asarray(label), axis, 0) != 0
        if label.shape != image.shape:
            raise ValueError(f"support volume {i}: labels of shape {label.shape} differ from the image's {image.shape}")
        holding = np.nonzero(label.reshape(len(label), -1).any(axis=1))[0]
        if not len(holding):
            raise ValueError(f"support volume {i}: its labels hold no target")
        picks = np.unique(np.round(np.linspace(holding[0], holding[-1], min(per_volume, len(holding)) + 2)[1:-1]))
        picks = [int(holding[np.abs(holding - p).argmin()]) for p in picks]
        window = normalise_intensities(image)
        pairs += [(window[k], label[k]) for k in dict.fromkeys(picks)]
    return pairs


def segment_target(
    model: ICLSAM,
    x: np.ndarray,
    annotations: dict | None,
    axis: int,
    spacing: Sequence[float] | None = None,
    support_volumes=(),
    method: str = "iclsam",
    keep_connected: bool = True,
    context: int = CONTEXT,
    window: np.ndarray | None = None,
) -> VolumeResult:
    """One binary target of the checked volume `x` (depth first: the input moved from `axis`); the
    result on the input grid. `window`: `normalise_intensities(x)` when already computed (the labels
    of a label map share it)."""
    start = time.perf_counter()
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    given = check_annotations(annotations, x.shape[1:], len(x)) if annotations or not support_volumes else {}
    if method != "iclsam":
        if not given:
            raise ValueError(f"{method} needs annotated slices")
        mask = (interpolate_slices if method == "interpolation" else contour_interpolation)(given, len(x))
        confidence = mask.reshape(len(x), -1).any(axis=1).astype(np.float32)
        record = {"method": method, "axis": axis, "annotated": sorted(given), "seconds": 0.0}
        return VolumeResult(np.moveaxis(mask, 0, axis), confidence, record)
    window = normalise_intensities(x) if window is None else window
    thin = thin_slices(spacing, axis, given)
    mask, confidence, record = _propagate(
        model, window, given, support_slices(support_volumes, axis), keep_connected, context, thin
    )
    record.update(
        axis=axis,
        spacing=None if spacing is None else [float(s) for s in spacing],
        seconds=round(time.perf_counter() - start, 2),
    )
    return VolumeResult(np.moveaxis(mask, 0, axis), confidence, record)


def segment_slice(
    model: ICLSAM, images: list, masks: list, query: np.ndarray, region: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """Figure 1 on one slice (`figure1.run_figure1`), with the pseudo-label (and so SAM's boxes and
    the result) kept inside `region` when there is one; returns the mask and the confidence map
    (Eq. 2, H x W)."""
    from iclsam.method.figure1 import run_figure1

    support = model.support_set(images, masks)
    state = model.query_state(support, query, None, {"iclsam"})
    state.fixed_fusion = True  # every slice has its own support set: no per-support-set choice
    run_figure1(model, support, state, region=region, until="fusion")
    return state.masks["iclsam"], state.confidence.numpy()


def _propagate(
    model: ICLSAM,
    window: np.ndarray,
    given: dict[int, np.ndarray],
    extra: list,
    keep_connected: bool,
    context: int,
    thin: bool = False,
) -> tuple[np.ndarray, np.ndarray, dict]:
    """The slices of the windowed scan (depth first) segmented outward from the annotated ones; see
    the module."""
    positive = sorted(k for k, m in given.items() if m.any())
    empty = sorted(k for k, m in given.items() if not m.any())
    if not positive and not extra:
        raise ValueError("no annotated slice holds the target and no support volume was given: nothing to learn from")
    done = dict(given)
    confidence = np.zeros(len(window), np.float32)
    confidence[positive] = 1.0
    order = propagation_order(len(window), list(given)) if given else list(range(len(window)))
    interpolated = interpolate_slices({k: given[k] for k in positive}, len(window)) if positive else None
    segmented, skipped = [], []
    for z in order:
        flat = bool(window[z].min() == window[z].max())
        if positive and not target_present(z, positive, empty, done, flat):
            done[z] = np.zeros(window.shape[1:], bool)
            skipped.append(z)
            continue
        chosen = slice_support(z, positive, done, context) if positive else []
        images = [window[k] for k in chosen] + [image for image, _ in extra]
        masks = [done[k] for k in chosen] + [label for _, label in extra]
        region = search_region(z, positive, done, interpolated) if positive else None
        mask, confidence_map = segment_slice(model, images, masks, window[z], region)
        if positive:
            mask = within_expected_area(z, mask, confidence_map, region, positive, given)
            mask = beyond_annotations(z, mask, positive, done, thin)
        done[z], confidence[z] = mask, float(confidence_map[mask].mean()) if mask.any() else 0.0
        segmented.append(z)
    mask = np.stack([done[z] for z in range(len(window))])
    mask, dropped, filled = _consistent_in_3d(mask, given, positive, interpolated, keep_connected)
    confidence[~mask.reshape(len(mask), -1).any(axis=1)] = 0.0
    record = {
        "method": "iclsam",
        "annotated": sorted(given),
        "annotated_empty": empty,
        "segmented": len(segmented),
        "outside_target_range": len(skipped),
        "support_volume_slices": len(extra),
        "context": context,
        "thin_slices": thin,
        "components_dropped": dropped,
        "filled_by_interpolation": filled,
    }
    return mask, confidence, record


def _consistent_in_3d(
    mask: np.ndarray, given: dict, positive: list[int], interpolated: np.ndarray | None, keep_connected: bool
) -> tuple[np.ndarray, int, int]:
    """The propagated slices made consistent in 3-D (`consistency`): the components that touch an
    annotated target voxel kept, the annotated slices put back as given, the blend with the
    interpolation between annotated slices, empty slices there filled; with the number of
    components dropped and of slices filled."""
    annotated = np.zeros_like(mask)
    for k in positive:
        annotated[k] = given[k]
    dropped = 0
    if keep_connected:
        mask, dropped = keep_connected_to_annotations(mask, annotated)
    for k, m in given.items():
        mask[k] = m
    if positive:
        mask = blend_between_annotations(mask, positive, interpolated)
    mask, filled = fill_between_annotations(mask, positive, interpolated)
    return mask, dropped, filled
