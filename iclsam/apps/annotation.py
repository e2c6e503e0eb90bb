"""Annotating a folder image by image (not in the paper): ICL-SAM proposes a mask from the images
annotated so far (the context), the user corrects it with clicks or a box, and the accepted mask
joins the context, so each finished image helps the next.

`Annotator.propose(image)`: the full method's mask from the current context (empty with none). A
proposal whose confidence (the confidence map's mean over it) is below `min_confidence` is withheld:
the image starts empty, since correcting a poor proposal costs more clicks than drawing from
nothing (`PROPOSAL_MIN_CONFIDENCE`, chosen on real-wide tasks: docs/annotate.md).
`Annotator.correct(clicks=[(x, y, positive), ...], box=None)`: the proposal (or SAM's mask of the
box) corrected by every click so far, applied in the order given, each to the mask the earlier ones
left: a positive click adds the object it means, a negative one removes it from the region it falls
in (`apps.annotation_clicks`: an edit of that region first, else the object under the click;
never an object holding an earlier click of the other sign). SAM's encoder runs once per image;
each click's candidates are kept.
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

from iclsam.apps.annotation_clicks import CLICK_RADIUS, best_object, click_objects, disc, edit_objects, slivers
from iclsam.common.inputs import check_image, check_mask
from iclsam.common.metrics import dice

if TYPE_CHECKING:
    from iclsam.method.model import ICLSAM

PROPOSAL_MIN_CONFIDENCE = 0.8  # a proposal less confident than this is withheld (the image starts empty)


@dataclass
class ImageState:
    """The image being annotated: its proposal and the candidates of each click so far."""

    image: np.ndarray
    proposal: np.ndarray
    confidence: float | None = None  # the confidence map's mean over ICL-SAM's mask (None: no context)
    withheld: np.ndarray | None = None  # ICL-SAM's mask when it was too unsure to be the proposal
    candidates: dict = field(default_factory=dict)  # a click (and the mask it edits) -> its candidates
    mask: np.ndarray | None = None


class Annotator:
    """See the module. `images` / `masks`: a starting context (may be empty)."""

    def __init__(
        self,
        model: ICLSAM,
        images: Sequence = (),
        masks: Sequence = (),
        max_context: int = 16,
        min_confidence: float = PROPOSAL_MIN_CONFIDENCE,
    ):
        if len(images) != len(masks):
            raise ValueError(f"{len(images)} starting images but {len(masks)} masks")
        if max_context < max(len(images), 1):
            raise ValueError(f"max_context {max_context} is below the {len(images)} starting images")
        if not 0.0 <= min_confidence <= 1.0:
            raise ValueError(f"min_confidence must be within [0, 1], got {min_confidence}")
        self.model, self.max_context, self.min_confidence = model, max_context, min_confidence
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
        """ICL-SAM's mask for `image` from the current context; an empty mask when there is none or
        when its confidence is below `min_confidence` (then kept as `current.withheld`)."""
        image = check_image(image, "image")
        self.model.sam.encode(image)  # once per image: the corrections decode from it
        empty = np.zeros(image.shape[:2], bool)
        context = self.context
        if not context:
            self.current = ImageState(image, empty)
            return empty
        support = self.model.support_set([x for x, _ in context], [m for _, m in context])
        prediction = self.model.predict_query(support, image, variants={"iclsam"})
        proposal = prediction.masks["iclsam"]
        confidence = proposal_confidence(prediction.confidence, proposal)
        if confidence is not None and confidence < self.min_confidence:
            self.current = ImageState(image, empty, confidence, withheld=proposal)
            return empty
        self.current = ImageState(image, proposal, confidence)
        return proposal.copy()

    def correct(
        self,
        positive: Sequence = (),
        negative: Sequence = (),
        box: Sequence | None = None,
        clicks: Sequence | None = None,
    ) -> np.ndarray:
        """The proposal (or SAM's mask of `box`, XYXY pixels) corrected by `clicks`, (x, y, positive)
        in the order made (see the module); or by `positive` then `negative` clicks (x, y)."""
        state = self._state()
        h, w = state.proposal.shape
        if clicks is None:
            clicks = [(*p, True) for p in positive] + [(*n, False) for n in negative]
        clicks = [(*self._click((x, y), w, h), bool(keep)) for x, y, keep in clicks]
        mask = state.proposal.copy() if box is None else self._box_mask(state, box)
        for i, (x, y, keep) in enumerate(clicks):
            earlier = [(u, v) for u, v, k in clicks[:i] if k != keep]  # of the other sign
            found = self._object(state, mask, x, y, keep, earlier)
            near = disc((h, w), x, y, CLICK_RADIUS)
            if keep:
                mask |= found if found is not None else near
                continue
            region = ndimage.label(mask)[0]
            inside = region == region[y, x] if region[y, x] else np.zeros_like(mask)
            if found is not None and (found & inside).any():
                removed = found & inside
            elif any(inside[v, u] for u, v in earlier):  # never a positive click's object: only the click's pixels
                removed = near & inside
            else:
                removed = inside
            mask &= ~(removed | (near & inside))
            mask &= ~slivers(inside & mask, earlier)
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

    def _object(
        self, state: ImageState, mask: np.ndarray, x: int, y: int, positive: bool, blocked
    ) -> np.ndarray | None:
        """What the click means on `mask` (`annotation_clicks.best_object`): an edit of `mask` first,
        else an object under the click; each kept, so replaying the clicks decodes nothing again."""
        sam = self.model.sam
        edit = (x, y, positive, hash(np.packbits(mask).tobytes()))
        if edit not in state.candidates:
            state.candidates[edit] = edit_objects(sam, sam.encode(state.image), x, y, mask, positive)
        if (x, y) not in state.candidates:
            state.candidates[(x, y)] = click_objects(sam, sam.encode(state.image), x, y, state.proposal)
        return best_object([state.candidates[edit], state.candidates[(x, y)]], x, y, blocked)

    def _box_mask(self, state: ImageState, box) -> np.ndarray:
        from iclsam.method.densify import densify_boxes

        return densify_boxes(self.model.sam, state.image, np.asarray([box], np.int64).reshape(1, 4))


def proposal_confidence(confidence_map: np.ndarray | None, mask: np.ndarray) -> float | None:
    """How sure ICL-SAM is of `mask`: the confidence map's (Eq. 2's) mean over it; 0 for an empty
    mask, None without a map."""
    if confidence_map is None:
        return None
    return float(confidence_map[mask].mean()) if mask.any() else 0.0


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
    clicks, seconds = [], []
    while dice(mask, truth) < target and len(clicks) < max_clicks:
        clicks.append(next_click(mask, truth))
        start = time.perf_counter()
        mask = annotator.correct(clicks=clicks)
        seconds.append(time.perf_counter() - start)
    if mask.any():
        annotator.accept(mask)
    else:  # an empty mask teaches the context nothing (and is no valid support mask)
        annotator.skip()
    return {
        "clicks": len(clicks),
        "dice": dice(mask, truth),
        "seconds": float(np.median(seconds)) if seconds else 0.0,
    }
