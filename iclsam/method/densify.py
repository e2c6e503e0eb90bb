"""Weak context (not in the paper): support sets annotated with boxes or points instead of masks.
SAM turns each weak annotation into a support mask (`densify_boxes`, `densify_points`); the method then runs unchanged.
Also the weak annotations a mask implies (`boxes_from_mask`, `points_from_mask`), with which the
pipeline simulates annotators: a tight box per component; one click per component at the maximum of
its distance transform (the point deepest inside it)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from scipy import ndimage

from iclsam.common.metrics import dice
from iclsam.method.prompts import FOUR_CONNECTED, boxes_from_components
from iclsam.method.sam import SamPredictor

ANNOTATION_KINDS = ("mask", "box", "point")
# WS-ICL's estimates of annotation time per support image (seconds), for the weak-context figure
ANNOTATION_SECONDS = {"point": 5.0, "box": 10.0, "mask": 80.0}


def _annotation_rows(values, columns: str, what: str, name: str) -> np.ndarray:
    """K x len(columns) finite numbers, K >= 1 (one row alone may be given flat)."""
    width = len(columns.split(", "))
    a = np.asarray(values, dtype=float)
    if a.ndim == 1 and a.size == width:
        a = a[None]
    if a.ndim != 2 or a.shape[1] != width:
        raise ValueError(f"{name}: {what}s must be K x {width} ({columns}), got shape {a.shape}")
    if len(a) == 0:
        raise ValueError(f"{name}: no {what} (at least one per support image)")
    if not np.isfinite(a).all():
        raise ValueError(f"{name}: {what}s contain NaN or infinite values")
    return a


def check_boxes(boxes, shape: tuple[int, int], name: str) -> np.ndarray:
    """K x 4 XYXY inclusive pixel boxes (K >= 1), x0 <= x1 < W, y0 <= y1 < H, all >= 0."""
    b = _annotation_rows(boxes, "x0, y0, x1, y1", "box", name)
    h, w = shape
    bad = (b[:, 0] < 0) | (b[:, 1] < 0) | (b[:, 2] >= w) | (b[:, 3] >= h) | (b[:, 0] > b[:, 2]) | (b[:, 1] > b[:, 3])
    if bad.any():
        raise ValueError(
            f"{name}: box {b[bad][0].tolist()} is not inside the {h} x {w} image "
            "(need 0 <= x0 <= x1 < W and 0 <= y0 <= y1 < H)"
        )
    return b.round().astype(np.int64)


def check_points(points, shape: tuple[int, int], name: str) -> np.ndarray:
    """K x 2 (x, y) pixel positions of positive clicks (K >= 1), inside the image."""
    p = _annotation_rows(points, "x, y", "point", name)
    h, w = shape
    bad = (p[:, 0] < 0) | (p[:, 1] < 0) | (p[:, 0] > w - 1) | (p[:, 1] > h - 1)
    if bad.any():
        raise ValueError(f"{name}: point {p[bad][0].tolist()} is outside the {h} x {w} image")
    return p


def boxes_from_mask(mask: np.ndarray) -> np.ndarray:
    """A tight box per 4-connected component of the mask (every component, however small)."""
    return boxes_from_components(mask, min_fraction=0.0)


def points_from_mask(mask: np.ndarray) -> np.ndarray:
    """One click per 4-connected component: its pixel farthest from the background (the first such
    pixel in row-major order), as (x, y)."""
    labels, count = ndimage.label(np.asarray(mask, dtype=bool), structure=FOUR_CONNECTED)
    distance = ndimage.distance_transform_edt(labels > 0)
    points = []
    for k in range(1, count + 1):
        inside = np.where(labels == k, distance, -1.0)
        y, x = np.unravel_index(int(np.argmax(inside)), inside.shape)
        points.append((float(x), float(y)))
    return np.array(points, dtype=float).reshape(-1, 2)


# boxes tried around a click: sides as fractions of the image's shorter side, and width / height
# ratios (round, wide and tall objects), each at each side (the box's area is side ** 2)
POINT_BOX_SCALES = (0.03, 0.05, 0.1, 0.2, 0.35, 0.5, 0.75)
POINT_BOX_ASPECTS = (1.0, 2.5, 0.4)


@torch.inference_mode()
def densify_support(
    sam: SamPredictor,
    images: Sequence[np.ndarray],
    boxes: Sequence[np.ndarray] | None = None,
    points: Sequence[np.ndarray] | None = None,
) -> list[np.ndarray]:
    """Support masks from weak annotations: boxes[i] K x 4 XYXY pixel boxes of image i, or points[i]
    K x 2 (x, y) positive clicks, one per object (give one of the two); each checked, then
    `densify_boxes` / `densify_points`."""
    from iclsam.common.inputs import check_image

    if (boxes is None) == (points is None):
        raise ValueError("densify needs either boxes or points (one of the two)")
    images = [check_image(x, f"support image {i}") for i, x in enumerate(images)]
    annotations = list(boxes if boxes is not None else points)
    if not images:
        raise ValueError("densify needs at least one support image")
    if len(annotations) != len(images):
        raise ValueError(f"{len(images)} support images but {len(annotations)} annotation lists")
    check = check_boxes if boxes is not None else check_points
    checked = [check(a, x.shape[:2], f"support image {i}") for i, (x, a) in enumerate(zip(images, annotations))]
    if boxes is not None:
        return [densify_boxes(sam, x, a) for x, a in zip(images, checked)]
    return densify_points(sam, images, checked)


def densify_boxes(sam: SamPredictor, image: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """One support mask from checked boxes: the union of SAM's masks, one per box; where SAM gives
    nothing for a box, the box itself stands in, so every annotated object is in the mask."""
    embedding = sam.encode(image)
    h, w = embedding.original
    mask = np.zeros((h, w), dtype=bool)
    logits = sam.decode(embedding, boxes)
    for k, (x0, y0, x1, y1) in enumerate(boxes):
        found = (logits[k] > 0).numpy()
        mask |= found if found.any() else _region(h, w, x0, y0, x1, y1)
    return mask


@torch.inference_mode()
def densify_points(sam: SamPredictor, images: Sequence[np.ndarray], points: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Support masks from checked clicks. A SAM that takes boxes (LiteMedSAM and MedSAM were
    trained on boxes only; measured: LiteMedSAM gives empty masks for clicks) is prompted with
    boxes centred on each click, of each side in `POINT_BOX_SCALES` and shape in
    `POINT_BOX_ASPECTS`; of each mask, the component holding the click is a candidate, and the
    click takes the candidate with the best score (`point_candidates`). A support mask is the
    union of its clicks' masks; where no candidate holds a click, the 3 x 3 pixels around it
    stand in."""
    masks = []
    for image, clicks in zip(images, points):
        embedding = sam.encode(image)
        h, w = embedding.original
        mask = np.zeros((h, w), dtype=bool)
        for x, y in np.round(clicks).astype(int):
            candidates, scores = point_candidates(sam, embedding, x, y)
            mask |= candidates[int(np.argmax(scores))] if candidates else _region(h, w, x - 1, y - 1, x + 1, y + 1)
        masks.append(mask)
    return masks


def click_boxes(x: int, y: int, shape: tuple[int, int]) -> np.ndarray:
    """The boxes centred on a click (`POINT_BOX_SCALES` x `POINT_BOX_ASPECTS`, side-major), clipped
    to the image: N x 4 XYXY integer pixels."""
    h, w = shape
    side = np.repeat(np.array(POINT_BOX_SCALES) * min(h, w), len(POINT_BOX_ASPECTS))
    aspect = np.tile(np.array(POINT_BOX_ASPECTS), len(POINT_BOX_SCALES))
    half_w, half_h = side * np.sqrt(aspect) / 2, side / np.sqrt(aspect) / 2
    return (
        np.stack(
            [
                np.maximum(x - half_w, 0),
                np.maximum(y - half_h, 0),
                np.minimum(x + half_w, w - 1),
                np.minimum(y + half_h, h - 1),
            ],
            axis=1,
        )
        .round()
        .astype(np.int64)
    )


# candidates re-prompted per click: the most promising by SAM's IoU estimate for the first mask
# (measured on the real-dev support sets at m = 4: every set's densified Dice equals that of
# re-prompting all of them, at about 27 decoded boxes per click instead of 35-42)
POINT_RESCORED = 6


def point_candidates(sam: SamPredictor, embedding, x: int, y: int) -> tuple[list[np.ndarray], list[float]]:
    """The masks a click may mean, with a score each: the boxes of `click_boxes` prompt SAM in one
    call; of each mask, the component holding the click is a candidate (each distinct one once).
    The `POINT_RESCORED` candidates with the best IoU estimate from SAM are kept; each one's tight
    box prompts SAM again, and its score is the Dice of that second mask with the candidate (SAM
    reproduces it: self-consistency) plus SAM's IoU estimate for the second mask. Empty lists when
    no mask holds the click."""
    candidates, first_iou, seen = [], [], set()
    logits, iou = sam.decode(embedding, click_boxes(x, y, embedding.original), with_iou=True)
    for mask_logits, estimate in zip(logits, iou):
        labels, _ = ndimage.label((mask_logits > 0).numpy(), structure=FOUR_CONNECTED)
        if labels[y, x]:
            candidate = labels == labels[y, x]
            key = np.packbits(candidate).tobytes()  # boxes often give the same mask: kept once, the first
            if key not in seen:
                seen.add(key)
                candidates.append(candidate)
                first_iou.append(float(estimate))
    if not candidates:
        return [], []
    best = np.argsort(-np.array(first_iou), kind="stable")[:POINT_RESCORED]
    candidates = [candidates[k] for k in best]
    again, iou = sam.decode(embedding, np.concatenate([boxes_from_mask(c)[:1] for c in candidates]), with_iou=True)
    return candidates, [dice(c, (a > 0).numpy()) + float(q) for c, a, q in zip(candidates, again, iou)]


def _region(h: int, w: int, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    region = np.zeros((h, w), dtype=bool)
    region[max(y0, 0) : min(y1, h - 1) + 1, max(x0, 0) : min(x1, w - 1) + 1] = True
    return region
