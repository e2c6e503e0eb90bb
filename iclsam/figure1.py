"""The paper's Figure 1, left to right, one named step each. `ICLSAM.predict_query` calls them in
order on a `QueryState`, which carries what each step hands to the next:

1. `semantic_confidence`: SAM's encoder on the query and the confidence map (Eq. 2);
2. `in_context_prediction`: the ICL model without and with the map (Eq. 4 for UniverSeg);
3. `box_prompts`: boxes around the pseudo-label's regions (the ICL mask with the map);
4. `sam_logits`: SAM's decoder on those boxes, plain and steered by the map (Eq. 3);
5. `sam_and_fusion`: the SAM variants and the fusion of SAM with the ICL model (Eq. 1);
6. `ground_truth_boxes`: the SAM upper bound, boxes from the query's true mask.

Each step computes only what the asked-for variants need."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from torch import Tensor

from .confidence import ConfidenceClassifier
from .fusion import fuse, fusion_weight
from .prompts import boxes_from_components, boxes_from_pseudo_label, confident_boxes
from .resampling import to_image_size
from .sam import decoder_confidence_bias
from .sam.cache import image_key
from .sam.embedding import ImageEmbedding
from .universeg import universeg_confidence_weight
from .znorm import z_norm

if TYPE_CHECKING:
    from .model import ICLSAM
    from .support import SupportSet

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


def semantic_confidence(model: ICLSAM, support: SupportSet, state: QueryState) -> None:
    """Step 1: SAM's encoder on the query (when any variant needs SAM), and Eq. 2's map from the
    support set's logistic regression."""
    if state.needs_map or "sam+gt" in state.wanted:
        state.embedding = model.sam.encode(state.query)
    if state.needs_map:
        state.classifier = model.classifier(support)
        state.confidence_grid = state.classifier.confidence_grid(state.embedding.features)
        state.confidence = state.embedding.grid_to_image(state.confidence_grid)
        if not state.classifier.converged:
            state.notes.insert(0, "the confidence map's logistic regression stopped at its iteration limit")


def in_context_prediction(model: ICLSAM, support: SupportSet, state: QueryState, icl_output=None) -> None:
    """Step 2: the ICL model's masks without and with the map (Eq. 4 for UniverSeg); `icl_output`:
    this query's output when it was computed in a batch (`ICLSAM.predict_queries`)."""
    icl = model.icl_model
    if not (state.needs_map or icl.plain_variant in state.wanted):
        return
    if icl_output is None:
        grid = None if state.confidence_grid is None else state.embedding.crop_valid(state.confidence_grid)
        icl_output = icl.predict(
            model.icl_support(support),
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


def batched_in_context_outputs(model: ICLSAM, support: SupportSet, queries: list[np.ndarray], wanted: set[str]) -> list:
    """Step 2 for several queries of one support set, `query_batch` at a time through SAM's encoder
    and the ICL model, as `in_context_prediction` would compute them one by one (None for each when
    no asked variant needs the ICL model). Whether a query mask was given does not change this part."""
    icl, batch = model.icl_model, model.config.query_batch
    needs_map = model.needs_map(wanted)
    if not (needs_map or icl.plain_variant in wanted):
        return [None] * len(queries)
    embeddings = model.sam.encode_many(queries, batch)  # predict_query's encode then hits the cache
    grids = [None] * len(queries)
    if needs_map:
        classifier = model.classifier(support)
        grids = [e.crop_valid(classifier.confidence_grid(e.features)) for e in embeddings]
    alpha = universeg_confidence_weight(model.config.b, model.config.tau, support.m)
    out = []
    for start in range(0, len(queries), batch):
        out += icl.predict_batch(
            model.icl_support(support),
            queries[start : start + batch],
            grids[start : start + batch],
            alpha,
            plain=icl.plain_variant in wanted,
            with_map=needs_map,
        )
    return out


def box_prompts(model: ICLSAM, support: SupportSet, state: QueryState) -> None:
    """Step 3: a box around each region of the pseudo-label larger than `box_min_area` of the
    largest (the paper: 5 %); with `box_confidence` (not in the paper; from m = 2) only the regions
    the map is confident about."""
    if not state.needs_map:
        return
    state.boxes = boxes_from_pseudo_label(state.masks[model.icl_model.map_variant], model.config.box_min_area)
    box_confidence = model.config.box_confidence
    if box_confidence is not None and support.m >= BOX_CONFIDENCE_FROM_M:
        state.boxes = confident_boxes(state.boxes, state.confidence.numpy(), box_confidence)


def sam_logits(model: ICLSAM, state: QueryState, plain: bool, steered: bool) -> tuple[Tensor | None, Tensor | None]:
    """Step 4: SAM's decoder on the box prompts, H x W logits (the max over boxes), without the map
    and steered by it (Eq. 3: beta * Z-Norm(C) in two of the decoder's attentions)."""
    plain_logits = model.sam.decode(state.embedding, state.boxes).amax(0) if plain else None
    steered_logits = None
    if steered:
        bias = decoder_confidence_bias(state.confidence_grid, state.embedding.valid, model.config.beta)
        steered_logits = model.sam.decode(state.embedding, state.boxes, bias).amax(0)
    return plain_logits, steered_logits


def sam_and_fusion(model: ICLSAM, support: SupportSet, state: QueryState) -> None:
    """Step 5: "sam" (stock SAM on the boxes), "sam+conf" (steered, Eq. 3) and "iclsam" (Eq. 1: SAM,
    steered or not as `fusion_choice` says, fused with the ICL model). Without a box, SAM is not
    prompted and the (empty) pseudo-label stands for every SAM variant."""
    asked = SAM_PROMPTED & state.wanted
    if not (state.needs_map and asked):
        return
    if not len(state.boxes):
        state.notes.append("the ICL pseudo-label is empty: SAM was not prompted and the (empty) ICL mask stands")
        for name in asked:
            state.masks[name] = state.masks[model.icl_model.map_variant].copy()
        if "iclsam" in asked and state.icl_probability is not None:  # F's ICL term alone: its score
            state.fused = to_image_size(z_norm(state.icl_probability, centre=0.5), state.size)
        return
    steer = None
    if "iclsam" in state.wanted:
        steer, state.gamma = fusion_setting(model, support, state.notes, state.fixed_fusion)
    plain, steered = sam_logits(
        model, state, plain="sam" in state.wanted or steer is False, steered="sam+conf" in state.wanted or bool(steer)
    )
    if "sam" in state.wanted:
        state.masks["sam"] = (plain > 0).numpy()
    if "sam+conf" in state.wanted:
        state.masks["sam+conf"] = (steered > 0).numpy()
    if "iclsam" in state.wanted:
        state.fused = fuse(steered if steer else plain, state.icl_probability, state.gamma)
        state.masks["iclsam"] = (state.fused > 0).numpy()


def fused_prediction(model: ICLSAM, support: SupportSet, state: QueryState) -> None:
    """Steps 1-5 in order, from the query to Eq. 1's fused mask (for a second pass of Figure 1 on
    other inputs: `zoom`, `context_auto`)."""
    for step in (semantic_confidence, in_context_prediction, box_prompts, sam_and_fusion):
        step(model, support, state)


def ground_truth_boxes(model: ICLSAM, state: QueryState) -> None:
    """Step 6: the upper bound "sam+gt", SAM prompted by boxes around the true mask's regions."""
    if state.truth is None:
        return
    state.gt_boxes = boxes_from_components(state.truth)
    if "sam+gt" in state.wanted:
        logits = model.sam.decode_memoised(image_key(state.query), state.embedding, state.gt_boxes)
        state.masks["sam+gt"] = (logits.amax(0) > 0).numpy()


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


def fusion_setting(model: ICLSAM, support: SupportSet, notes: list[str], fixed: bool = False) -> tuple[bool, float]:
    """Step 5's setting: whether SAM's decoder is steered by the map (Eq. 3) in the fused prediction,
    and Eq. 1's gamma: (`sam_steering`, the paper's schedule), or with fusion="auto" / "in-sample"
    what `fusion_auto` chooses on the support images (once per support set and model setting).
    `fixed`: the former whatever `fusion` says."""
    config = model.config
    paper = fusion_weight(config.a, config.tau, support.m)
    if config.fusion == "paper" or fixed:
        if not model.sam_steering:
            why = f"; sam_steering auto: the {model.icl} ICL model is the map" if config.sam_steering == "auto" else ""
            notes.append("fusion: Eq. 1 with SAM without the map (no Eq. 3)" + why)
        return model.sam_steering, paper
    from .fusion_auto import auto_fusion_choice, chooses_in_sample

    steer, gamma = auto_fusion_choice(model, support, paper)
    how = "in-sample" if chooses_in_sample(config.fusion, support.m) else "leave-one-out"
    notes.append(
        f"fusion {config.fusion} ({how} on the support): gamma {gamma:.3g} (the default: {paper:.3g}), "
        f"SAM {'steered by the map (Eq. 3)' if steer else 'without the map (no Eq. 3)'}"
    )
    return steer, gamma
