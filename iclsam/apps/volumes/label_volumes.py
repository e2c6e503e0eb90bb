"""Several labels of a volume in one pass: annotated slices that are label maps in, a label volume
out. Each label is propagated as its own binary target (`segment_target`, the same annotated
slices: a slice without the label says "not here"), the labels sharing the scan's intensity window
and one SAM encoding per slice (the embedding cache). Each label's mask has passed its 3-D
consistency steps, so no one fused score describes a voxel; a voxel that two labels claim goes,
slice by slice (`overlap_scores`):
- where the voxel's intensity is far more typical of one claimant than of the others (`DECISIVE`
  times as likely, by each label's intensity histogram over its annotated pixels in this scan:
  `intensity_log_likelihoods`), to that one: a dark necrotic core inside a bright enhancing rim, a
  tumour against the air of a lung;
- elsewhere, where the annotations outline every claimant on the annotated slices around that slice, to the
  label whose outline, interpolated between them (`outline_depth`), the voxel lies deepest inside:
  the user's own outlines tell a necrotic core from the rim around it;
- elsewhere (a claimant missing from an annotated slice around it, so its outline cannot be
  interpolated there) to the label whose cross-section on the slice is smaller: a tumour beside a
  lung, a cup in a disc, the small structure being the one a big mask swallows.
A nested label (`nested={inner: outer}`) is part of its outer one, as in `iclsam.method.label_maps`."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from iclsam.apps.volumes.checks import check_axis, check_volume, normalise_intensities
from iclsam.apps.volumes.interpolation import signed_distance
from iclsam.apps.volumes.propagation import VolumeResult, segment_target
from iclsam.apps.volumes.shape_priors import bracketing_slices
from iclsam.method.label_maps import (
    check_nested,
    chosen_labels,
    label_map_dtype,
    label_target,
    resolve_overlaps,
    support_label_values,
)

if TYPE_CHECKING:
    from iclsam.method.model import ICLSAM

OUTLINED = 1e6  # added to an outline depth so that it ranks above any (negative) smaller-first score
TYPICAL = 1e7  # added to an intensity log-likelihood so that it ranks above any outline depth
DECISIVE = float(np.log(4))  # a claimant must be this much more likely (log) than the next to win by intensity
INTENSITY_BINS = 32  # histogram bins over the scan's 0..255 window; a label needs this many annotated pixels


@dataclass
class LabelVolumeResult:
    """labels: the label volume on the input grid (the annotations' values and dtype); per_label:
    each label's `VolumeResult` before overlaps were resolved; record: what was done."""

    labels: np.ndarray
    per_label: dict[int, VolumeResult]
    record: dict = field(default_factory=dict)


def outline_depth(z: int, distances: Mapping[int, np.ndarray]) -> np.ndarray:
    """How deep inside a label's annotated outline each pixel of slice z lies (pixels; negative
    outside): `distances` {annotated slice: `signed_distance` of the label's mask there}, linear in
    z between the bracketing annotated slices."""
    around = bracketing_slices(z, list(distances))
    if len(around) == 1:
        return distances[around[0]]
    a, b = around
    t = (z - a) / (b - a)
    return (1.0 - t) * distances[a] + t * distances[b]


def intensity_log_likelihoods(
    window: np.ndarray, annotations: Mapping[int, np.ndarray], values: Iterable[int], bins: int = INTENSITY_BINS
) -> dict[int, np.ndarray]:
    """log P(intensity bin | label) for each label with at least `bins` annotated pixels: the
    histogram of the windowed scan (depth first, 0..255) over the label's own pixels on the annotated
    slices {slice: label map}, each bin counted once more (add-one smoothing)."""
    found = {}
    for value in values:
        counts = np.ones(bins)
        for z, labels in annotations.items():
            counts += np.bincount(intensity_bins(window[z][np.asarray(labels) == value], bins), minlength=bins)
        if counts.sum() >= 2 * bins:
            found[value] = np.log(counts / counts.sum())
    return found


def intensity_bins(pixels: np.ndarray, bins: int = INTENSITY_BINS) -> np.ndarray:
    """The histogram bin of each 0..255 intensity."""
    return np.asarray(pixels, np.int64) * bins // 256


def decisive_intensity(
    claims: Mapping[int, np.ndarray], likelihoods: Mapping[int, np.ndarray], binned: np.ndarray
) -> dict[int, np.ndarray]:
    """Per claimant, its intensity log-likelihood plus `TYPICAL` where two or more claim a pixel, each
    of them has a histogram, and the most likely beats the next by `DECISIVE`; else -inf."""
    unknown = np.zeros(binned.shape, bool)
    for v, claim in claims.items():
        if v not in likelihoods:
            unknown |= claim
    stacked = np.stack(
        [np.where(claim, likelihoods[v][binned] if v in likelihoods else 0.0, -np.inf) for v, claim in claims.items()]
    )
    ranked = np.sort(stacked, axis=0)
    with np.errstate(invalid="ignore"):  # -inf - -inf where fewer than two claim a pixel
        decided = ~unknown & np.isfinite(ranked[-2]) & (ranked[-1] - ranked[-2] > DECISIVE)
    return {v: np.where(decided, TYPICAL + row, -np.inf) for v, row in zip(claims, stacked)}


def overlap_scores(
    z: int,
    claims: Mapping[int, np.ndarray],
    outlines: Mapping[int, Mapping[int, np.ndarray]],
    intensity: tuple[Mapping[int, np.ndarray], np.ndarray] | None = None,
) -> dict[int, np.ndarray]:
    """Scores for `resolve_overlaps` on slice z (see the module): claims {label: its mask on the
    slice}; outlines {label: {annotated slice: signed distance of its mask there}}; intensity
    (`intensity_log_likelihoods`, the slice's intensity bins) or None. A pixel where intensity is
    decisive (`decisive_intensity`) scores each claimant by its log-likelihood plus `TYPICAL`; else a
    pixel whose claimants are all outlined on every bracketing annotated slice scores each by
    `outline_depth` (plus `OUTLINED`); any other pixel scores each claimant by minus its area on the
    slice."""
    outlined = {
        v: bool(outlines.get(v)) and all(outlines[v][k].max() > 0 for k in bracketing_slices(z, list(outlines[v])))
        for v in claims
    }
    every_outlined = np.ones(next(iter(claims.values())).shape, bool)
    for v, claim in claims.items():
        if not outlined[v]:
            every_outlined &= ~claim
    scores = {}
    for v, claim in claims.items():
        scores[v] = np.full(claim.shape, -float(claim.sum()))
        if outlined[v] and every_outlined.any():
            scores[v] = np.where(every_outlined, OUTLINED + outline_depth(z, outlines[v]), scores[v])
    if intensity is not None:
        typical = decisive_intensity(claims, *intensity)
        scores = {v: np.maximum(typical[v], scores[v]) for v in claims}
    return scores


def resolve_volume_overlaps(
    masks: Mapping[int, np.ndarray],
    outlines: Mapping[int, Mapping[int, np.ndarray]],
    nested: Mapping[int, int],
    dtype,
    window: np.ndarray | None = None,
    likelihoods: Mapping[int, np.ndarray] | None = None,
) -> np.ndarray:
    """The label volume (depth first) from each label's mask, slice by slice: `resolve_overlaps`,
    scored by `overlap_scores` on slices where two labels that are not nested claim a pixel (by
    intensity too when the windowed scan and `intensity_log_likelihoods` are given)."""
    flat = [v for v in masks if v not in nested]
    out = np.zeros(next(iter(masks.values())).shape, dtype)
    for z in range(len(out)):
        claims = {v: m[z] for v, m in masks.items()}
        overlapping = len(flat) > 1 and (np.sum([claims[v] for v in flat], axis=0, dtype=np.int32) > 1).any()
        scores = {}
        if overlapping:  # the slice's intensity bins only where they may decide something
            intensity = None if window is None else (likelihoods or {}, intensity_bins(window[z]))
            scores = overlap_scores(z, {v: claims[v] for v in flat}, outlines, intensity)
        out[z] = resolve_overlaps(claims, {v: scores.get(v, 0.0) for v in claims}, nested, dtype)
    return out


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
    """`segment_target` for each label of label-map annotations (see the module); `options` as
    `segment_volume`'s (spacing, method, keep_connected, context)."""
    start = time.perf_counter()
    annotations = dict(annotations or {})
    values = annotation_values(annotations, support_volumes)
    nested = check_nested(nested, values)
    chosen = chosen_labels(values, labels)
    axis = check_axis(axis)
    x = np.moveaxis(check_volume(volume), axis, 0)
    window = normalise_intensities(x) if options.get("method", "iclsam") == "iclsam" else None
    per_label, outlines = {}, {}
    for value in chosen:
        given = {z: label_target(m, value, nested) for z, m in annotations.items()}
        others = [(image, label_target(label, value, nested)) for image, label in support_volumes]
        others = [(image, target) for image, target in others if target.any()]
        if not any(m.any() for m in given.values()) and not others:
            raise ValueError(f"label {value}: no annotated slice and no support volume holds it")
        per_label[value] = segment_target(
            model, x, given or None, axis, support_volumes=others, window=window, **options
        )
        outlines[value] = {int(z) % len(x): signed_distance(m) for z, m in given.items()}
    masks = {v: np.moveaxis(r.mask, axis, 0) for v, r in per_label.items()}
    likelihoods = None
    if window is not None:
        own = {int(z) % len(x): np.asarray(m) for z, m in annotations.items()}
        likelihoods = intensity_log_likelihoods(window, own, [v for v in chosen if v not in nested])
    dtype = label_map_dtype(annotations.values())
    label_map = resolve_volume_overlaps(masks, outlines, nested, dtype, window, likelihoods)
    record = {"labels": chosen, "nested": {i: o for i, o in nested.items() if i in chosen}}
    record["seconds"] = round(time.perf_counter() - start, 2)
    return LabelVolumeResult(np.moveaxis(label_map, 0, axis), per_label, record)
