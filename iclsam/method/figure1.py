"""The paper's Figure 1, left to right, one named step each, and `run_figure1`, the one place that
calls them in order on a `QueryState` (which carries what each step hands to the next):

1. `semantic_confidence`: SAM's encoder on the query and the confidence map (Eq. 2);
2. `in_context_prediction`: the ICL model without and with the map (Eq. 4 for UniverSeg);
3. `box_prompts`: boxes around the pseudo-label's regions (the ICL mask with the map);
4. `sam_logits`: SAM's decoder on those boxes, plain and steered by the map (Eq. 3);
5. `sam_and_fusion`: the SAM variants and the fusion of SAM with the ICL model (Eq. 1);
6. `ground_truth_boxes`: the SAM upper bound, boxes from the query's true mask.

Each step receives what it reads (SAM, the ICL model, a setting, a fit made on demand), not the
model, and computes only what the asked-for variants need. Callers change the figure only through
`run_figure1`'s extension points: a region for the target, a box rule, refinements after fusion,
and where to stop."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from torch import Tensor

from iclsam.common.resampling import to_image_size
from iclsam.common.znorm import z_norm
from iclsam.method.confidence import ConfidenceClassifier
from iclsam.method.fusion import fuse
from iclsam.method.prompts import boxes_from_components, boxes_from_pseudo_label, confident_boxes
from iclsam.method.sam import decoder_confidence_bias
from iclsam.method.sam.cache import image_key
from iclsam.method.sam.embedding import ImageEmbedding

if TYPE_CHECKING:
    from iclsam.method.icl import ICLBackend
    from iclsam.method.model import ICLSAM
    from iclsam.method.sam import SamPredictor
    from iclsam.method.support import SupportSet

SAM_PROMPTED = frozenset({"sam", "sam+conf", "iclsam"})  # the variants SAM gives from the pseudo-label's boxes
BOX_CONFIDENCE_FROM_M = 2  # box_confidence applies from this support size on (at m = 1 it lost Dice on real-dev)


@dataclass
class QueryState:
    """One query on its way through Figure 1."""

    query: np.ndarray
    truth: np.ndarray | None
    wanted: set[str]
    needs_map: bool  # whether the asked variants need the confidence map (`ICLSAM.needs_map`)
    alpha: float  # Eq. 4's weight at this support size
    gamma: float  # Eq. 1's weight (the paper's schedule, or fusion="auto"'s choice)
    notes: list[str]
    embedding: ImageEmbedding | None = None
    classifier: ConfidenceClassifier | None = None
    confidence_grid: Tensor | None = None  # Eq. 2 on SAM's 64 x 64 token grid
    confidence: Tensor | None = None  # the same, H x W
    icl_probability: Tensor | None = None  # the ICL model's probability with the map, on its own grid
    fused: Tensor | None = None  # Eq. 1's F, H x W: "iclsam" is F > 0
    masks: dict[str, np.ndarray] = field(default_factory=dict)
    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), dtype=np.int64))
    gt_boxes: np.ndarray | None = None
    fixed_fusion: bool = False  # the paper's gamma and `sam_steering` whatever `fusion` says (volumes)

    @property
    def size(self) -> tuple[int, int]:
        return self.query.shape[:2]


def semantic_confidence(sam: SamPredictor, classifier: Callable[[], ConfidenceClassifier], state: QueryState) -> None:
    """Step 1: SAM's encoder on the query (when any variant needs SAM), and Eq. 2's map from the
    support set's logistic regression (`classifier()`, fitted once per support set)."""
    if state.needs_map or "sam+gt" in state.wanted:
        state.embedding = sam.encode(state.query)
    if state.needs_map:
        state.classifier = classifier()
        state.confidence_grid = state.classifier.confidence_grid(state.embedding.features)
        state.confidence = state.embedding.grid_to_image(state.confidence_grid)
        if not state.classifier.converged:
            state.notes.insert(0, "the confidence map's logistic regression stopped at its iteration limit")


def in_context_prediction(icl: ICLBackend, prepared: Callable[[], object], state: QueryState, icl_output=None) -> None:
    """Step 2: the ICL model's masks without and with the map (Eq. 4 for UniverSeg) from its prepared
    support (`prepared()`, once per support set); `icl_output`: this query's output when it was
    computed in a batch (`batched_in_context_outputs`)."""
    if not (state.needs_map or icl.plain_variant in state.wanted):
        return
    if icl_output is None:
        grid = None if state.confidence_grid is None else state.embedding.crop_valid(state.confidence_grid)
        icl_output = icl.predict(
            prepared(),
            state.query,
            grid,
            state.alpha,
            plain=icl.plain_variant in state.wanted,
            with_map=state.needs_map,
        )
    state.icl_probability = icl_output.with_map
    for name, probability in ((icl.plain_variant, icl_output.plain), (icl.map_variant, icl_output.with_map)):
        if probability is not None:
            state.masks[name] = (to_image_size(probability, state.size) > 0.5).numpy()


def batched_in_context_outputs(
    sam: SamPredictor,
    icl: ICLBackend,
    prepared: object,
    classifier: ConfidenceClassifier | None,
    queries: list[np.ndarray],
    alpha: float,
    plain: bool,
    batch: int,
) -> list:
    """Step 2 for several queries of one support set, `batch` at a time through SAM's encoder and the
    ICL model, as `in_context_prediction` would compute them one by one; `classifier` None: without
    the map. Whether a query mask was given does not change this part."""
    embeddings = sam.encode_many(queries, batch)  # the step-1 encodings then hit the cache
    grids = [None] * len(queries)
    if classifier is not None:
        grids = [e.crop_valid(classifier.confidence_grid(e.features)) for e in embeddings]
    out = []
    for start in range(0, len(queries), batch):
        out += icl.predict_batch(
            prepared,
            queries[start : start + batch],
            grids[start : start + batch],
            alpha,
            plain=plain,
            with_map=classifier is not None,
        )
    return out


def box_prompts(
    state: QueryState,
    pseudo_label: str,
    box_min_area: float,
    box_confidence: float | None,
    m: int,
    own_confidence: bool = False,
) -> None:
    """Step 3: a box around each region of the pseudo-label (`state.masks[pseudo_label]`) larger than
    `box_min_area` of the largest (the paper: 5 %); with `box_confidence` (not in the paper; from
    m = 2) only the regions the map is confident about (`own_confidence`: the ICL model's own
    probability instead of the map, for an ICL model that is not made of the map)."""
    if not state.needs_map:
        return
    state.boxes = boxes_from_pseudo_label(state.masks[pseudo_label], box_min_area)
    if box_confidence is not None and m >= BOX_CONFIDENCE_FROM_M:
        confidence = to_image_size(state.icl_probability, state.size) if own_confidence else state.confidence
        state.boxes = confident_boxes(state.boxes, confidence.numpy(), box_confidence)


def sam_logits(sam: SamPredictor, state: QueryState, beta: float, plain: bool, steered: bool) -> tuple:
    """Step 4: SAM's decoder on the box prompts, H x W logits (the max over boxes), without the map
    and steered by it (Eq. 3: beta * Z-Norm(C) in two of the decoder's attentions)."""
    plain_logits = sam.decode(state.embedding, state.boxes).amax(0) if plain else None
    steered_logits = None
    if steered:
        bias = decoder_confidence_bias(state.confidence_grid, state.embedding.valid, beta)
        steered_logits = sam.decode(state.embedding, state.boxes, bias).amax(0)
    return plain_logits, steered_logits


def sam_and_fusion(
    sam: SamPredictor,
    state: QueryState,
    pseudo_label: str,
    fusion_setting: Callable[[], tuple[bool, float]],
    beta: float,
) -> None:
    """Step 5: "sam" (stock SAM on the boxes), "sam+conf" (steered, Eq. 3) and "iclsam" (Eq. 1: SAM,
    steered or not, fused with the ICL model with weight gamma, both as `fusion_setting()` says).
    Without a box, SAM is not prompted and the (empty) pseudo-label stands for every SAM variant."""
    asked = SAM_PROMPTED & state.wanted
    if not (state.needs_map and asked):
        return
    if not len(state.boxes):
        state.notes.append("the ICL pseudo-label is empty: SAM was not prompted and the (empty) ICL mask stands")
        for name in asked:
            state.masks[name] = state.masks[pseudo_label].copy()
        if "iclsam" in asked and state.icl_probability is not None:  # F's ICL term alone: its score
            state.fused = to_image_size(z_norm(state.icl_probability, centre=0.5), state.size)
        return
    steer = None
    if "iclsam" in state.wanted:
        steer, state.gamma = fusion_setting()
    plain, steered = sam_logits(
        sam,
        state,
        beta,
        plain="sam" in state.wanted or steer is False,
        steered="sam+conf" in state.wanted or bool(steer),
    )
    if "sam" in state.wanted:
        state.masks["sam"] = (plain > 0).numpy()
    if "sam+conf" in state.wanted:
        state.masks["sam+conf"] = (steered > 0).numpy()
    if "iclsam" in state.wanted:
        state.fused = fuse(steered if steer else plain, state.icl_probability, state.gamma)
        state.masks["iclsam"] = (state.fused > 0).numpy()


def ground_truth_boxes(sam: SamPredictor, state: QueryState) -> None:
    """Step 6: the upper bound "sam+gt", SAM prompted by boxes around the true mask's regions."""
    if state.truth is None:
        return
    state.gt_boxes = boxes_from_components(state.truth)
    if "sam+gt" in state.wanted:
        logits = sam.decode_memoised(image_key(state.query), state.embedding, state.gt_boxes)
        state.masks["sam+gt"] = (logits.amax(0) > 0).numpy()


STOPS = ("boxes", "fusion")  # where `run_figure1` may stop: after step 3, after step 5 (and refinements)


def run_figure1(
    model: ICLSAM,
    support: SupportSet,
    state: QueryState,
    *,
    icl_output=None,
    region: np.ndarray | None = None,
    box_rule: Callable[[QueryState], np.ndarray] | None = None,
    refinements: Sequence[Callable[[QueryState], None]] = (),
    until: str | None = None,
) -> QueryState:
    """Figure 1 on one query, in the paper's order, written once. Extension points:
    region: H x W bool, where the target can be (a volume's search region): the pseudo-label is cut
      to it before the boxes, and the fused mask ("iclsam") after fusion;
    box_rule: the boxes SAM is prompted with, from the state after step 3 (a benchmark's rule);
    refinements: called in order on the state after fusion (an optional module's second look);
    until: "boxes" stops after step 3, "fusion" before the ground-truth boxes; None runs every step.
    `model` gives the parts: its SAM, ICL model, settings, and the fits made once per support set."""
    if until is not None and until not in STOPS:
        raise ValueError(f"until must be one of {STOPS} or None, got {until!r}")
    icl, config = model.icl_model, model.config
    semantic_confidence(model.sam, lambda: model.classifier(support), state)  # SAM's encoder, Eq. 2
    in_context_prediction(icl, lambda: model.icl_support(support), state, icl_output)  # the ICL model, Eq. 4
    if region is not None and icl.map_variant in state.masks:
        state.masks[icl.map_variant] = state.masks[icl.map_variant] & region
    box_prompts(
        state, icl.map_variant, config.box_min_area, config.box_confidence, support.m, icl.boxes_from_own_probability
    )
    if box_rule is not None and state.needs_map:
        state.boxes = box_rule(state)
    if until == "boxes":
        return state
    setting = lambda: model.fusion_setting(support, state.notes, state.fixed_fusion)  # noqa: E731
    sam_and_fusion(model.sam, state, icl.map_variant, setting, config.beta)  # SAM, Eq. 3; the fusion, Eq. 1
    if region is not None and "iclsam" in state.masks:
        state.masks["iclsam"] = state.masks["iclsam"] & region
    for refine in refinements:
        refine(state)
    if until == "fusion":
        return state
    ground_truth_boxes(model.sam, state)  # the upper bound
    return state


def wanted_variants(model: ICLSAM, variants, has_truth: bool) -> set[str]:
    """The variants asked for (None: every one, "sam+gt" only with a query mask), checked."""
    known = model.variants()
    if variants is None:
        return set(known) - (set() if has_truth else {"sam+gt"})
    wanted = {variants} if isinstance(variants, str) else set(variants)
    unknown = sorted(wanted - set(known))
    if unknown:
        raise ValueError(f"unknown variant(s) {unknown}; with icl={model.icl!r} the variants are {list(known)}")
    if not wanted:
        raise ValueError(f"no variant asked for; choose among {list(known)}")
    if "sam+gt" in wanted and not has_truth:
        raise ValueError("the variant 'sam+gt' needs the query mask (its boxes come from the ground truth)")
    return wanted
