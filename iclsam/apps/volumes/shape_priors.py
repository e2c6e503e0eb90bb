"""What the annotated slices of a volume say about another slice's target, before and after it is
segmented: where it can be (`search_region`), how large it can be between two annotated slices
(`within_expected_area`) and where it ends beyond them (`beyond_annotations`). Slices are indexed
along the propagation axis; `positive` lists the annotated slices that hold the target."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

OUTSIDE_MARGIN = 2  # pixels a result outside the annotated range may reach beyond its neighbour's
GROWTH_LIMIT = 1.25  # outside the annotated range, a result larger than its neighbour's times this is cut back
TAPER = 0.5  # ... the target ends after a step that shrank it below this fraction
VANISH = 0.2  # ... and where a result is under this fraction of its neighbour's
AREA_LIMIT = 1.5  # between annotated slices, a result larger than the expected area times this is a leak
THIN = 0.25  # slices closer than this times the target's radius are thin (`thin_slices`)


def thin_slices(spacing: Sequence[float] | None, axis: int, given: dict[int, np.ndarray]) -> bool:
    """Whether the slices are thin against the target: the step between slices (mm) at most `THIN`
    times the radius of a disc as large as the largest annotated cross-section (mm). Then the
    target's area changes little from one slice to the next, except in the last slices before its
    end. Unknown spacing (None) or no annotated target: not thin."""
    areas = [float(m.sum()) for m in given.values()]
    if spacing is None or not areas or max(areas) == 0:
        return False
    plane = [float(s) for i, s in enumerate(spacing) if i != axis]
    radius = np.sqrt(max(areas) * plane[0] * plane[1] / np.pi)
    return bool(float(spacing[axis]) <= THIN * radius)


def step_towards_annotation(z: int, positive: Sequence[int]) -> int:
    """The neighbour of slice z on the side of its nearest annotated slice holding the target."""
    nearest = min(positive, key=lambda k: (abs(k - z), k))
    return z + (1 if nearest > z else -1)


def bracketing_slices(z: int, annotated: Sequence[int]) -> list[int]:
    """The annotated slices around slice z: the nearest on each side inside the annotated range
    (z alone when it is annotated), the nearest one outside it."""
    marks = sorted(annotated)
    if z in marks:
        return [z]
    below, above = [k for k in marks if k < z], [k for k in marks if k > z]
    return ([below[-1]] if below else []) + ([above[0]] if above else [])


def search_region(z: int, positive: Sequence[int], done: dict[int, np.ndarray], interpolated: np.ndarray) -> np.ndarray:
    """Where slice z's target can be: inside the annotated range, around the interpolation and the
    two annotated slices on either side of z (the target moves between them, and the interpolation
    of two shapes that overlap little is smaller than either); outside it, around the neighbour's
    result. Grown by a margin of a fifth of the shape's size (at least 3 pixels)."""
    lo, hi = min(positive), max(positive)
    inside = lo <= z <= hi
    if inside:
        prior = interpolated[z].copy()
        for k in bracketing_slices(z, positive):
            prior |= done[k]
    else:
        prior = done[step_towards_annotation(z, positive)]
    margin = max(3, int(round(0.2 * np.sqrt(prior.sum())))) if inside else OUTSIDE_MARGIN
    return ndimage.binary_dilation(prior, iterations=margin) if prior.any() else prior


def expected_area(z: int, positive: Sequence[int], given: dict[int, np.ndarray]) -> float | None:
    """Between two annotated slices, the target's area on slice z interpolated linearly from theirs
    (in pixels); None outside the annotated range or on an annotated slice."""
    around = bracketing_slices(z, positive)
    if len(around) != 2 or not around[0] < z < around[1]:
        return None
    t = (z - around[0]) / (around[1] - around[0])
    return (1 - t) * float(given[around[0]].sum()) + t * float(given[around[1]].sum())


def most_confident(confidence: np.ndarray, region: np.ndarray | None, count: int) -> np.ndarray:
    """The `count` pixels of `region` (everywhere when None) where the confidence map is highest
    (ties: the first in row-major order)."""
    scores = np.where(region, confidence, -np.inf) if region is not None else confidence
    order = np.argsort(-scores.ravel(), kind="stable")[: max(0, int(round(count)))]
    chosen = np.zeros(scores.size, bool)
    chosen[order] = True
    return chosen.reshape(scores.shape) & np.isfinite(scores)


def within_expected_area(
    z: int,
    mask: np.ndarray,
    confidence: np.ndarray,
    region: np.ndarray | None,
    positive: Sequence[int],
    given: dict[int, np.ndarray],
) -> np.ndarray:
    """Between two annotated slices the target's area changes little from theirs: a result more than
    `AREA_LIMIT` times the `expected_area` has leaked (SAM fills a ring-shaped target or takes the
    tissue beside it), and is replaced by the expected area's most confident pixels of the search
    region (Eq. 2's map). Elsewhere, or within the limit, the mask is returned as it is."""
    expected = expected_area(z, positive, given)
    if expected is None or mask.sum() <= AREA_LIMIT * expected:
        return mask
    return most_confident(confidence, region, expected)


def beyond_annotations(
    z: int, mask: np.ndarray, positive: Sequence[int], done: dict[int, np.ndarray], thin: bool = False
) -> np.ndarray:
    """Outside the annotated range the target tapers off. A result more than `GROWTH_LIMIT` times its
    neighbour's (towards the annotations) is cut back to the neighbour's footprint (a leak into other
    tissue); the target ends after a step that shrank it below `TAPER` (the step between the two
    slices before z), and where the result is under `VANISH` of its neighbour's. On `thin` slices
    (`thin_slices`) only a step between two annotated slices ends it: there a segmented result that
    halves from one slice to the next is SAM losing the target, not the target ending."""
    if min(positive) <= z <= max(positive):
        return mask
    step = step_towards_annotation(z, positive)
    neighbour, further = done[step], 2 * step - z  # further: the next slice inwards
    inwards = further >= min(positive) if z > max(positive) else further <= max(positive)
    trusted = (step in positive and further in positive) if thin else inwards
    if trusted and further in done and neighbour.sum() < TAPER * done[further].sum():
        return np.zeros_like(mask)
    if mask.sum() > GROWTH_LIMIT * neighbour.sum():
        mask = mask & neighbour
    return mask if mask.sum() >= VANISH * neighbour.sum() else np.zeros_like(mask)
