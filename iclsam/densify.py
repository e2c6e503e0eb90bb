"""Weak context (not in the paper): support sets annotated with boxes or points instead of masks.
SAM turns each weak annotation into a support mask (`densify_boxes`, `densify_points`); the method then runs unchanged.
Also the weak annotations a mask implies (`boxes_from_mask`, `points_from_mask`), with which the
pipeline simulates annotators: a tight box per component; one click per component at the maximum of
its distance transform (the point deepest inside it)."""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch
from scipy import ndimage

from .metrics import dice
from .prompts import FOUR_CONNECTED, boxes_from_components
from .sam import SamPredictor

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
        raise ValueError(f"{name}: box {b[bad][0].tolist()} is not inside the {h} x {w} image "
                         "(need 0 <= x0 <= x1 < W and 0 <= y0 <= y1 < H)")
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


# box sides tried around a click, as fractions of the image's shorter side
POINT_BOX_SCALES = (0.05, 0.1, 0.2, 0.35, 0.5, 0.75)


@torch.inference_mode()
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
def densify_points(sam: SamPredictor, images: Sequence[np.ndarray], points: Sequence[np.ndarray],
                   fit_map: Callable) -> list[np.ndarray]:
    """Support masks from checked clicks, in two passes over the whole support set. A SAM that takes
    boxes (LiteMedSAM and MedSAM were trained on boxes only; measured: LiteMedSAM gives empty masks
    for clicks) is prompted with boxes centred on each click, of each side in `POINT_BOX_SCALES`;
    of each mask, the component holding the click is a candidate (`point_candidates`).
    1. Each click takes its self-consistent candidate: the one SAM reproduces best (Dice) when
       prompted again with the candidate's own tight box.
    2. The confidence map (Eq. 2, `fit_map(embeddings, masks)`) is fitted on those first masks of
       every support image, and each click takes the candidate with the best sum of its
       self-consistency and its Dice with the map's component (p > 0.5) under the click.
    Where no candidate holds a click, the 3 x 3 pixels around it stand in."""
    embeddings = [sam.encode(x) for x in images]
    found = [[(x, y, *point_candidates(sam, e, x, y)) for x, y in np.round(p).astype(int)]
             for e, p in zip(embeddings, points)]

    def masks(maps: list[np.ndarray] | None) -> list[np.ndarray]:
        """Each click's best candidate: by consistency, plus Dice with the map's component under
        the click when the image's thresholded map is given."""
        result = []
        for i, (e, clicks) in enumerate(zip(embeddings, found)):
            h, w = e.original
            mask = np.zeros((h, w), dtype=bool)
            if maps is not None:
                labels, _ = ndimage.label(maps[i], structure=FOUR_CONNECTED)
            for x, y, candidates, consistency in clicks:
                if not candidates:
                    mask |= _region(h, w, x - 1, y - 1, x + 1, y + 1)
                    continue
                score = list(consistency)
                if maps is not None:
                    reference = labels == labels[y, x] if labels[y, x] else maps[i]
                    score = [s + dice(c, reference) for c, s in zip(candidates, consistency)]
                mask |= candidates[int(np.argmax(score))]
            result.append(mask)
        return result

    classifier = fit_map(embeddings, masks(None))
    return masks([(e.grid_to_image(classifier.confidence_grid(e.features)) > 0.5).numpy() for e in embeddings])


def point_candidates(sam: SamPredictor, embedding, x: int, y: int) -> tuple[list[np.ndarray], list[float]]:
    """The masks a click may mean, with how self-consistent each is: boxes centred on the click (one
    per `POINT_BOX_SCALES`) prompt SAM in one call; of each mask the component holding the click;
    each candidate's tight box prompts SAM again, and its Dice with that second mask is its
    consistency. Empty lists when no mask holds the click."""
    h, w = embedding.original
    half = np.array(POINT_BOX_SCALES) * min(h, w) / 2
    boxes = np.stack([np.maximum(x - half, 0), np.maximum(y - half, 0),
                      np.minimum(x + half, w - 1), np.minimum(y + half, h - 1)], axis=1).round().astype(np.int64)
    candidates = []
    for logits in sam.decode(embedding, boxes):
        labels, _ = ndimage.label((logits > 0).numpy(), structure=FOUR_CONNECTED)
        if labels[y, x]:
            candidates.append(labels == labels[y, x])
    if not candidates:
        return [], []
    again = sam.decode(embedding, np.concatenate([boxes_from_mask(c)[:1] for c in candidates])) > 0
    return candidates, [dice(c, a.numpy()) for c, a in zip(candidates, again)]


def _region(h: int, w: int, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    region = np.zeros((h, w), dtype=bool)
    region[max(y0, 0): min(y1, h - 1) + 1, max(x0, 0): min(x1, w - 1) + 1] = True
    return region
