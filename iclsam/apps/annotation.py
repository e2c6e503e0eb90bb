"""Annotating a folder image by image (not in the paper): ICL-SAM proposes a mask from the images
annotated so far (the context), the user corrects it with clicks or a box, and the accepted mask
joins the context, so each finished image helps the next.

`Annotator.propose(image)`: the full method's mask from the current context (empty with none).
`Annotator.correct(positive, negative, box)`: the proposal corrected by every click given so far
(the positive ones, then the negative ones, each in the order given). A box-trained SAM
(LiteMedSAM, MedSAM) ignores clicks as prompts, so a click is turned into the object SAM finds
under it (`click_objects`: square boxes centred on the click at `CLICK_SCALES` of the image's
shorter side, and a box around the proposal's region holding the click, in one decoder call): a
positive click adds the best such object that holds no negative click; a negative click removes, from the region of the mask it falls in, the best object under it
that holds no positive click (when SAM finds none, the whole region if it holds no positive click,
else the pixels at the click). A box replaces the proposal by
SAM's mask of the box. SAM's encoder runs once per image; the candidates of a click are kept.
`Annotator.accept(mask)`: the image and its mask join the context. At most `max_context` images
stay: the starting support images always, then the most recent accepted ones (a folder drifts; the
nearest images are the likeliest to look like the next). The context's fits (Eq. 2, the ICL
model's support) are made on the next proposal from the cached encodings: no image is encoded again.

`simulated_clicks` is the standard simulated user of interactive segmentation: each next click at
the centre of the largest error region (positive in a missed region, negative in a false one)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from scipy import ndimage

from iclsam.common.inputs import check_image, check_mask
from iclsam.common.metrics import dice
from iclsam.method.densify import boxes_from_mask

if TYPE_CHECKING:
    from iclsam.method.model import ICLSAM

CLICK_RADIUS = 2  # pixels around a click that follow it when SAM finds no object there
CLICK_SCALES = (0.06, 0.15, 0.35)
SLIVER_FRACTION = 0.1  # what a negative click's cut leaves of a region: pieces below this share of the largest go too  # the sides of the boxes centred on a click (of the shorter side)


@dataclass
class ImageState:
    """The image being annotated: its proposal and the candidates of each click so far."""

    image: np.ndarray
    proposal: np.ndarray
    candidates: dict = field(default_factory=dict)  # (x, y) -> (masks, scores)
    mask: np.ndarray | None = None


class Annotator:
    """See the module. `images` / `masks`: a starting context (may be empty)."""

    def __init__(self, model: ICLSAM, images: Sequence = (), masks: Sequence = (), max_context: int = 16):
        if len(images) != len(masks):
            raise ValueError(f"{len(images)} starting images but {len(masks)} masks")
        if max_context < max(len(images), 1):
            raise ValueError(f"max_context {max_context} is below the {len(images)} starting images")
        self.model, self.max_context = model, max_context
        self.seeds = [
            (check_image(x, f"context image {i}"), self._mask(m, x, i)) for i, (x, m) in enumerate(zip(images, masks))
        ]
        self.accepted: list[tuple[np.ndarray, np.ndarray]] = []
        self.current: ImageState | None = None

    @staticmethod
    def _mask(mask, image, i) -> np.ndarray:
        return check_mask(mask, np.asarray(image).shape[:2], f"context mask {i}")

    @property
    def context(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """The images and masks the next proposal learns from (see the module for which stay)."""
        room = self.max_context - len(self.seeds)
        return self.seeds + (self.accepted[-room:] if room > 0 else [])

    def propose(self, image) -> np.ndarray:
        """ICL-SAM's mask for `image` from the current context; an empty mask when there is none."""
        image = check_image(image, "image")
        self.model.sam.encode(image)  # once per image: the corrections decode from it
        context = self.context
        if context:
            support = self.model.support_set([x for x, _ in context], [m for _, m in context])
            proposal = self.model.predict_query(support, image, variants={"iclsam"}).masks["iclsam"]
        else:
            proposal = np.zeros(image.shape[:2], bool)
        self.current = ImageState(image, proposal)
        return proposal.copy()

    def correct(self, positive: Sequence = (), negative: Sequence = (), box: Sequence | None = None) -> np.ndarray:
        """The proposal (or SAM's mask of `box`, XYXY pixels) corrected by the clicks (x, y), positive
        ones adding the object under them, negative ones removing it (see the module)."""
        state = self._state()
        h, w = state.proposal.shape
        clicks = [(*self._click(p, w, h), True) for p in positive] + [(*self._click(n, w, h), False) for n in negative]
        mask = state.proposal.copy() if box is None else self._box_mask(state, box)
        pos = [(x, y) for x, y, keep in clicks if keep]
        neg = [(x, y) for x, y, keep in clicks if not keep]
        for x, y, keep in clicks:
            blocked = neg if keep else pos
            found = self._best_object(state, x, y, blocked)
            near = disc((h, w), x, y, CLICK_RADIUS)
            if keep:
                mask |= found if found is not None else near
            else:
                region = ndimage.label(mask)[0]
                inside = region == region[y, x] if region[y, x] else np.zeros_like(mask)
                if found is not None and (found & inside).any():
                    removed = found & inside
                elif any(inside[v, u] for u, v in pos):  # never a positive click's object: only the click's pixels
                    removed = near & inside
                else:
                    removed = inside
                mask &= ~(removed | (near & inside))
                mask &= ~slivers(inside & mask, pos)
        state.mask = mask
        return mask.copy()

    def accept(self, mask=None) -> None:
        """The current image joins the context with `mask` (default: the last corrected mask, else
        the proposal)."""
        state = self._state()
        chosen = state.mask if mask is None and state.mask is not None else state.proposal if mask is None else mask
        self.accepted.append((state.image, check_mask(chosen, state.image.shape[:2], "accepted mask")))
        self.current = None

    def add_context(self, image, mask) -> None:
        """An image annotated elsewhere (or in an earlier session) joins the context as if accepted."""
        image = check_image(image, "context image")
        self.accepted.append((image, check_mask(mask, image.shape[:2], "context mask")))

    def skip(self) -> None:
        """Leaves the current image out of the context (nothing worth learning from: an empty mask)."""
        self._state()
        self.current = None

    def _state(self) -> ImageState:
        if self.current is None:
            raise ValueError("no image is being annotated: call propose(image) first")
        return self.current

    @staticmethod
    def _click(point, w: int, h: int) -> tuple[int, int]:
        x, y = (int(round(float(v))) for v in point)
        if not (0 <= x < w and 0 <= y < h):
            raise ValueError(f"click ({x}, {y}) is outside the image ({w} x {h} pixels)")
        return x, y

    def _best_object(self, state: ImageState, x: int, y: int, blocked) -> np.ndarray | None:
        if (x, y) not in state.candidates:
            embedding = self.model.sam.encode(state.image)
            state.candidates[(x, y)] = click_objects(self.model.sam, embedding, x, y, state.proposal)
        masks, scores = state.candidates[(x, y)]
        allowed = [(s, k) for k, (m, s) in enumerate(zip(masks, scores)) if not any(m[v, u] for u, v in blocked)]
        return masks[max(allowed)[1]] if allowed else None

    def _box_mask(self, state: ImageState, box) -> np.ndarray:
        from iclsam.method.densify import densify_boxes

        return densify_boxes(self.model.sam, state.image, np.asarray([box], np.int64).reshape(1, 4))


def click_objects(sam, embedding, x: int, y: int, hint: np.ndarray) -> tuple[list[np.ndarray], list[float]]:
    """The objects a click may mean, each with SAM's own IoU estimate as its score: SAM prompted in
    one call by square boxes centred on the click (`CLICK_SCALES`) and, when the click falls in a
    region of `hint` (the proposal), a box around that region; of each mask, the component holding
    the click."""
    h, w = embedding.original
    boxes = []
    for scale in CLICK_SCALES:
        half = max(2, int(round(scale * min(h, w) / 2)))
        boxes.append([max(x - half, 0), max(y - half, 0), min(x + half, w - 1), min(y + half, h - 1)])
    labelled = ndimage.label(hint)[0]
    if labelled[y, x]:
        boxes.append(boxes_from_mask(labelled == labelled[y, x])[0].tolist())
    logits, iou = sam.decode(embedding, np.asarray(boxes, np.int64), with_iou=True)
    objects, scores = [], []
    for mask_logits, estimate in zip(logits, iou):
        components = ndimage.label((mask_logits > 0).numpy())[0]
        if components[y, x]:
            objects.append(components == components[y, x])
            scores.append(float(estimate))
    return objects, scores


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


def next_click(mask: np.ndarray, truth: np.ndarray) -> tuple[int, int, bool]:
    """The simulated user's next click: the centre (the point farthest from its border) of the
    largest error region, positive when it is a missed region, negative when a false one."""
    best = None
    for positive, error in ((True, truth & ~mask), (False, mask & ~truth)):
        labelled, count = ndimage.label(error)
        if not count:
            continue
        sizes = ndimage.sum(error, labelled, range(1, count + 1))
        k = int(np.argmax(sizes)) + 1
        if best is None or sizes[k - 1] > best[0]:
            best = (sizes[k - 1], labelled == k, positive)
    if best is None:
        raise ValueError("the mask equals the truth: no click is needed")
    _, region, positive = best
    depth = ndimage.distance_transform_edt(np.pad(region, 1))[1:-1, 1:-1]
    y, x = np.unravel_index(int(np.argmax(depth)), depth.shape)
    return int(x), int(y), positive


def simulated_clicks(annotator: Annotator, image, truth, target: float = 0.9, max_clicks: int = 20) -> dict:
    """One image annotated by the simulated user: a proposal, then clicks (`next_click`) until the
    mask reaches Dice `target` or `max_clicks` were made; the final mask is accepted. Returns the
    clicks, the final Dice, and the seconds per interaction (median of the corrections)."""
    truth = np.asarray(truth).astype(bool)
    mask = annotator.propose(image)
    positive, negative, seconds = [], [], []
    while dice(mask, truth) < target and len(positive) + len(negative) < max_clicks:
        x, y, is_positive = next_click(mask, truth)
        (positive if is_positive else negative).append((x, y))
        start = time.perf_counter()
        mask = annotator.correct(positive, negative)
        seconds.append(time.perf_counter() - start)
    if mask.any():
        annotator.accept(mask)
    else:  # an empty mask teaches the context nothing (and is no valid support mask)
        annotator.skip()
    return {
        "clicks": len(positive) + len(negative),
        "dice": dice(mask, truth),
        "seconds": float(np.median(seconds)) if seconds else 0.0,
    }
