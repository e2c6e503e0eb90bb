"""Several labels in one pass: support label maps (0 = background, other values = labels) in, a
label map out. Each label is segmented as its own binary task (the support images holding it, its
pixels as the target), all sharing one SAM encoding per image (the embedding cache) and the
tokens Eq. 2 is fit on; where two labels claim a pixel, the one whose fused score (Eq. 1's F, the
map whose > 0 is that label's mask) is higher keeps it, so no pixel carries two labels. A nested
label (`nested={inner: outer}`, e.g. a cup inside a disc) is part of its outer label: the outer
label's target includes the inner one's pixels, the inner label wins inside both, and neither
conflicts with the other. Left unsaid (`nested=None`), a label that every support map holding it
shows enclosed by another is taken as nested in it (`enclosed_labels`); `nested={}` turns that off."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from iclsam.common.metrics import dice
from iclsam.method.prediction import Prediction

if TYPE_CHECKING:
    from iclsam.method.model import ICLSAM

MAX_LABELS = 65535  # the most a uint16 label map holds


@dataclass
class LabelPrediction:
    """labels: the H x W label map with the support's values (the support maps' dtype), 0 where no
    label; per_label: each label's binary `Prediction` (its masks, confidence map, boxes), before
    overlaps were resolved; dice: per label, of `labels`, when query labels were given."""

    labels: np.ndarray
    per_label: dict[int, Prediction]
    nested: dict[int, int] = field(default_factory=dict)
    dice: dict[int, float] = field(default_factory=dict)

    @property
    def values(self) -> tuple[int, ...]:
        return tuple(self.per_label)

    def mask(self, value: int) -> np.ndarray:
        """Label `value`'s pixels in the resolved map (with a nested label's, for an outer one)."""
        inner = [i for i, o in self.nested.items() if o == value]
        return np.isin(self.labels, [value, *inner])


BINARY_VALUES = {1, 255}  # the usual target values of binary masks (True counts as 1)


def is_label_map_set(masks: Sequence) -> bool:
    """Whether the support masks are label maps: two or more distinct nonzero values over them.
    A binary set keeps today's path, bit for bit, also when its masks mix 0/1 and 0/255."""
    values, each_binary = set(), True
    for m in masks:
        own = set(np.unique(np.asarray(m)).tolist()) - {0}
        values |= own
        each_binary &= len(own) <= 1
    return len(values) > 1 and not (each_binary and values <= BINARY_VALUES)


def support_label_values(masks: Sequence, names: Sequence[str] | None = None) -> tuple[int, ...]:
    """The labels of a label-map support set, checked: integer maps (a float map only when its
    values are whole numbers), no binary bool / 0-255 mask among label maps, at most `MAX_LABELS`."""
    names = list(names) if names is not None else [f"support {i}" for i in range(len(masks))]
    values, kinds, owns = set(), [], []
    for m, name in zip(masks, names):
        x = np.asarray(m)
        if np.issubdtype(x.dtype, np.floating):
            if not np.isfinite(x).all() or (x != np.round(x)).any():
                raise ValueError(f"{name}: a label map must hold whole numbers, got float values")
        elif not (np.issubdtype(x.dtype, np.integer) or x.dtype == bool):
            raise ValueError(f"{name}: a label map must be integer, got {x.dtype}")
        if (x < 0).any():
            raise ValueError(f"{name}: label values must be >= 0 (0 = background)")
        own = set(np.unique(x).astype(np.int64).tolist()) - {0}
        kinds.append((name, x.dtype == bool or own == {255}))
        owns.append(own)
        values |= own
    binary = [name for name, is_binary in kinds if is_binary]
    if binary and len(values) > 1:
        odd = next((name, own) for (name, is_binary), own in zip(kinds, owns) if not is_binary)
        shown = ", ".join(str(v) for v in [0, *sorted(odd[1])][:5]) + (" ..." if len(odd[1]) > 4 else "")
        raise ValueError(
            f"{odd[0]}: mask is not binary (values {shown}) while {binary[0]} is a binary mask (a binary mask "
            "mixed with label maps): give every support image 0 and one target value, or every one a label map"
        )
    if not values:
        raise ValueError(f"the support masks ({names[0]}, ...) hold no label: every pixel is 0")
    if len(values) > MAX_LABELS:
        raise ValueError(f"the support label maps hold {len(values)} labels; at most {MAX_LABELS}")
    return tuple(sorted(int(v) for v in values))


def label_map_dtype(maps: Iterable) -> np.dtype:
    """The dtype a resolved label map takes: the maps' common integer type (at least uint8); int64
    for float maps (their values are whole numbers, checked)."""
    dtype = np.result_type(*[np.asarray(m).dtype for m in maps], np.uint8)
    return np.dtype(np.int64) if np.issubdtype(dtype, np.floating) else dtype


def check_nested(nested: Mapping[int, int] | None, values: Sequence[int]) -> dict[int, int]:
    """{inner: outer}, both labels of the support, one level deep."""
    nested = {int(i): int(o) for i, o in (nested or {}).items()}
    for inner, outer in nested.items():
        for v in (inner, outer):
            if v not in values:
                raise ValueError(f"nested label {v} is not in the support label maps (labels {list(values)})")
        if inner == outer or outer in nested:
            raise ValueError(f"nested={nested}: a label cannot contain itself, and nesting is one level deep")
    return nested


ENCLOSED = 0.95  # the share of a label's pixels inside another's filled outline that makes it enclosed


def enclosed_labels(maps: Sequence[np.ndarray], values: Sequence[int]) -> dict[int, int]:
    """{inner: outer} for each label that every support map holding it shows enclosed by one other
    label: at least `ENCLOSED` of its pixels inside that label's outline with its holes filled (a cup
    in a disc rim, a tumour core in its oedema). Of several enclosing labels the tightest (smallest
    filled area) is its outer; nesting is one level deep, so a label that encloses another is not
    itself taken as nested."""
    from scipy import ndimage

    maps = [np.asarray(m) for m in maps]
    found = {}
    for inner in values:
        common, areas = None, {}
        for m in (m for m in maps if (m == inner).any()):
            target = m == inner
            around = set()
            for outer in values:
                if outer == inner or not (m == outer).any():
                    continue
                filled = ndimage.binary_fill_holes(m == outer)
                if (filled & target).sum() >= ENCLOSED * target.sum():
                    around.add(outer)
                    areas[outer] = areas.get(outer, 0) + int(filled.sum())
            common = around if common is None else common & around
        if common:
            found[inner] = min(common, key=lambda o: (areas[o], o))
    return {i: o for i, o in found.items() if i not in found.values()}


def label_target(label_map: np.ndarray, value: int, nested: Mapping[int, int]) -> np.ndarray:
    """Label `value`'s binary target in a label map: its pixels, plus those of labels nested in it."""
    inner = [i for i, o in nested.items() if o == value]
    return np.isin(np.asarray(label_map), [value, *inner])


def chosen_labels(values: Sequence[int], labels: Iterable[int] | None) -> list[int]:
    """The labels to segment: all, or the subset `labels` (each one of `values`)."""
    if labels is None:
        return list(values)
    chosen = [int(v) for v in labels]
    missing = [v for v in chosen if v not in values]
    if missing:
        raise ValueError(f"labels {missing} are in no support label map (labels {list(values)})")
    return chosen


def resolve_overlaps(
    masks: Mapping[int, np.ndarray], scores: Mapping[int, np.ndarray], nested: Mapping[int, int], dtype
) -> np.ndarray:
    """The label map: each pixel takes, among the labels whose mask holds it, the one of highest
    score; an inner label (`nested`) takes its pixels inside its outer label, never conflicting."""
    values = list(masks)
    shape = next(iter(masks.values())).shape
    out = np.zeros(shape, dtype)
    flat = [v for v in values if v not in nested]
    if flat:
        stacked = np.stack([np.where(masks[v], scores[v], -np.inf) for v in flat])
        best = stacked.argmax(axis=0)
        claimed = np.isfinite(stacked.max(axis=0))
        out[claimed] = np.asarray(flat, dtype=np.int64)[best[claimed]]
    for inner, outer in nested.items():
        if inner in masks:
            free = out == 0 if outer not in masks else (out == 0) | (out == outer)
            out[masks[inner] & free] = inner
    return out


def predict_label_maps(
    model: ICLSAM,
    support_images: Sequence[np.ndarray],
    support_maps: Sequence[np.ndarray],
    query_images: Sequence[np.ndarray],
    query_labels: Sequence[np.ndarray | None] | None = None,
    variants: Iterable[str] | None = None,
    labels: Iterable[int] | None = None,
    nested: Mapping[int, int] | None = None,
) -> list[LabelPrediction]:
    """`ICLSAM.predict_many` with label maps: each label a binary task on the support images that
    hold it (its support set prepared once for every query), then `resolve_overlaps` per query."""
    values = support_label_values(support_maps)
    nested = check_nested(enclosed_labels(support_maps, values) if nested is None else nested, values)
    chosen = chosen_labels(values, labels)
    query_labels = [None] * len(query_images) if query_labels is None else list(query_labels)
    for i, truth in enumerate(query_labels):
        extra = [] if truth is None else sorted(set(np.unique(truth).astype(np.int64).tolist()) - {0, *values})
        if extra:
            raise ValueError(
                f"query labels {i} hold values {extra} that no support label map has (labels {list(values)})"
            )
    wanted = None if variants is None else {variants} if isinstance(variants, str) else set(variants) | {"iclsam"}
    per_label = {}
    for value in chosen:
        targets = [label_target(m, value, nested) for m in support_maps]
        holding = [i for i, t in enumerate(targets) if t.any()]
        truths = [None if t is None else label_target(t, value, nested) for t in query_labels]
        support = model.support_set([support_images[i] for i in holding], [targets[i] for i in holding])
        per_label[value] = model.predict_queries(
            support, query_images, [t if t is not None and t.any() else None for t in truths], wanted
        )
    dtype = label_map_dtype(support_maps)
    inner = {i: o for i, o in nested.items() if i in chosen}
    results = []
    for q, truth in enumerate(query_labels):
        mine = {v: per_label[v][q] for v in chosen}
        label_map = resolve_overlaps(
            {v: p.masks["iclsam"] for v, p in mine.items()}, {v: p.score for v, p in mine.items()}, nested, dtype
        )
        result = LabelPrediction(label_map, mine, inner)
        if truth is not None:
            result.dice = {v: dice(result.mask(v), label_target(truth, v, nested)) for v in chosen}
        results.append(result)
    return results


def densify_labels(sam, images: Sequence[np.ndarray], per_label: Mapping[int, Sequence], kind: str) -> list[np.ndarray]:
    """Weak context per label: `per_label` {label: [boxes or points of image i, or None where image i
    does not show the label]} (`kind` "boxes" or "points"); each label densified by SAM on the
    images that show it (`densify.densify_support`), then one label map per image (uint16 above 255,
    else uint8). Where two labels' masks overlap, the smaller mask's label keeps the pixels (an
    object drawn inside another is the smaller one)."""
    from iclsam.method.densify import densify_support

    if not per_label:
        raise ValueError(f"densify: no label given (a {{label: {kind} per image}} mapping)")
    maps_dtype = np.uint16 if max(per_label) > 255 else np.uint8
    masks: dict[int, list] = {}
    for value, given in per_label.items():
        if int(value) <= 0 or int(value) > MAX_LABELS:
            raise ValueError(f"densify: label {value} must be between 1 and {MAX_LABELS}")
        given = list(given)
        if len(given) != len(images):
            raise ValueError(f"label {value}: {len(images)} support images but {len(given)} annotation lists")
        shown = [i for i, a in enumerate(given) if a is not None]
        if not shown:
            raise ValueError(f"label {value}: no image has {kind} for it")
        found = densify_support(sam, [images[i] for i in shown], **{kind: [given[i] for i in shown]})
        masks[int(value)] = [None] * len(images)
        for i, mask in zip(shown, found):
            masks[int(value)][i] = mask
    out = []
    for i, image in enumerate(images):
        label_map = np.zeros(np.asarray(image).shape[:2], maps_dtype)
        mine = [(v, m[i]) for v, m in masks.items() if m[i] is not None]
        for value, mask in sorted(mine, key=lambda vm: -int(vm[1].sum())):  # largest first: smaller ones on top
            label_map[mask] = value
        out.append(label_map)
    return out
