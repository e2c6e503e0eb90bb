"""What a click means to a box-trained SAM (LiteMedSAM, MedSAM ignore clicks as prompts): the
objects SAM finds for boxes built from the click and the mask being corrected. Used by
`apps.annotation.Annotator.correct`, which applies the clicks in the order given:

- **editing a region** (`edit_objects`, preferred): a positive click near a region of the mask
  means "this belongs to it": SAM's mask of the region's box grown to hold the click; a negative
  click inside a region means "this is not it": the part of the region that SAM's mask of its box,
  one side moved past the click, no longer holds (the four sides tried, in one decoder call);
- **an object under the click** (`click_objects`): square boxes centred on the click at
  `CLICK_SCALES` of the image's shorter side and a box around the proposal's region holding it;
- of each SAM mask, the component holding the click; candidates that hold an earlier click of the
  other sign are passed over; when every one does, the best is carved around those clicks
  (`carve`)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from iclsam.method.densify import boxes_from_mask

CLICK_RADIUS = 2  # pixels around a click that follow it when SAM finds no object there
CLICK_SCALES = (0.06, 0.15, 0.35)  # the sides of the boxes centred on a click (of the shorter side)
SLIVER_FRACTION = 0.1  # what a negative click's cut leaves of a region: pieces below this share of the largest go too
EDIT_REACH = 0.5  # a positive click edits a region when within this share of the region's longer side (+2 px)
CARVE_FRACTION = 0.03  # the radius carved around an opposite click (of the shorter side)

Candidates = tuple[list[np.ndarray], list[float]]  # objects and SAM's IoU estimate of each


def click_objects(sam, embedding, x: int, y: int, hint: np.ndarray) -> Candidates:
    """The objects a click may mean on its own: SAM prompted in one call by square boxes centred on
    the click (`CLICK_SCALES`) and, when the click falls in a region of `hint` (the proposal), a box
    around that region."""
    h, w = embedding.original
    boxes = []
    for scale in CLICK_SCALES:
        half = max(2, int(round(scale * min(h, w) / 2)))
        boxes.append([max(x - half, 0), max(y - half, 0), min(x + half, w - 1), min(y + half, h - 1)])
    labelled = ndimage.label(hint)[0]
    if labelled[y, x]:
        boxes.append(boxes_from_mask(labelled == labelled[y, x])[0].tolist())
    return holding_click(sam, embedding, boxes, x, y)


def edit_objects(sam, embedding, x: int, y: int, mask: np.ndarray, positive: bool) -> Candidates:
    """The objects a click means as an edit of a region of `mask` (see the module): for a positive
    click, what to add; for a negative one, what to remove. No candidates when the click edits no
    region."""
    h, w = mask.shape
    if positive:
        boxes = boxes_from_mask(mask)
        if not len(boxes):
            return [], []
        gaps = [max(x0 - x, 0, x - x1) + max(y0 - y, 0, y - y1) for x0, y0, x1, y1 in boxes]
        x0, y0, x1, y1 = boxes[int(np.argmin(gaps))]
        if min(gaps) > EDIT_REACH * max(x1 - x0, y1 - y0) + 2:
            return [], []
        grown = [max(min(x0, x - 2), 0), max(min(y0, y - 2), 0), min(max(x1, x + 2), w - 1), min(max(y1, y + 2), h - 1)]
        return holding_click(sam, embedding, [grown], x, y)
    labelled = ndimage.label(mask)[0]
    if not labelled[y, x]:
        return [], []
    rows, cols = ndimage.find_objects(labelled)[labelled[y, x] - 1]
    x0, y0, x1, y1 = cols.start, rows.start, cols.stop - 1, rows.stop - 1
    moved = [[x + 1, y0, x1, y1], [x0, y0, x - 1, y1], [x0, y + 1, x1, y1], [x0, y0, x1, y - 1]]
    moved = [b for b in moved if b[2] - b[0] >= 2 and b[3] - b[1] >= 2]
    region = labelled == labelled[y, x]
    return holding_click(sam, embedding, moved, x, y, within=region) if moved else ([], [])


def holding_click(sam, embedding, boxes, x: int, y: int, within: np.ndarray | None = None) -> Candidates:
    """SAM's mask of each box (one decoder call), as the component holding the click: of the mask
    itself, or, with `within`, of what the mask leaves of `within`."""
    logits, iou = sam.decode(embedding, np.asarray(boxes, np.int64), with_iou=True)
    objects, scores = [], []
    for mask_logits, estimate in zip(logits, iou):
        found = (mask_logits > 0).numpy()
        if within is not None:
            found = within & ~found
        components = ndimage.label(found)[0]
        if components[y, x]:
            objects.append(components == components[y, x])
            scores.append(float(estimate))
    return objects, scores


def best_object(candidates: list[Candidates], x: int, y: int, blocked) -> np.ndarray | None:
    """The first group's best-scored object holding none of `blocked` (the earlier clicks of the
    other sign), else the next group's; when every object holds one, the best carved (`carve`)."""
    for objects, scores in candidates:
        allowed = [(s, k) for k, (m, s) in enumerate(zip(objects, scores)) if not any(m[v, u] for u, v in blocked)]
        if allowed:
            return objects[max(allowed)[1]]
    everything = [(s, m) for objects, scores in candidates for m, s in zip(objects, scores)]
    if not everything:
        return None
    return carve(max(everything, key=lambda pair: pair[0])[1], x, y, blocked)


def carve(found: np.ndarray, x: int, y: int, blocked) -> np.ndarray | None:
    """`found` without discs (`CARVE_FRACTION` of the shorter side) around the `blocked` clicks: the
    component left holding (x, y), None when none is."""
    h, w = found.shape
    radius = max(CLICK_RADIUS, int(round(CARVE_FRACTION * min(h, w))))
    kept = found.copy()
    for u, v in blocked:
        kept &= ~disc((h, w), u, v, radius)
    pieces = ndimage.label(kept)[0]
    return pieces == pieces[y, x] if pieces[y, x] else None


def slivers(rest: np.ndarray, keep_points, fraction: float = SLIVER_FRACTION) -> np.ndarray:
    """The pieces a cut left of a region that are too small to be meant: each under `fraction` of
    the largest piece's area and holding none of `keep_points` (the positive clicks)."""
    pieces, count = ndimage.label(rest)
    if count < 2:
        return np.zeros_like(rest)
    areas = ndimage.sum(rest, pieces, range(1, count + 1))
    kept = {pieces[v, u] for u, v in keep_points} - {0}
    small = [k + 1 for k in range(count) if areas[k] < fraction * areas.max() and k + 1 not in kept]
    return np.isin(pieces, small)


def disc(shape: tuple[int, int], x: int, y: int, radius: int) -> np.ndarray:
    yy, xx = np.ogrid[: shape[0], : shape[1]]
    return (yy - y) ** 2 + (xx - x) ** 2 <= radius**2
