"""The SAM predictor: pre-processing, one encoder pass per image (memoised), any number of boxes
decoded with or without the confidence map (Eq. 3), post-processing back to the image.
Coordinates: boxes are N x 4, XYXY, in pixels of the original image."""

from __future__ import annotations

import hashlib
import inspect
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from iclsam.common.checkpoints import file_sha256
from iclsam.common.devices import resolve_device
from iclsam.method.sam.build import GRID, build_sam, checkpoint_path
from iclsam.method.sam.build import backbone as backbone_entry
from iclsam.method.sam.cache import EmbeddingCache, image_key
from iclsam.method.sam.confidence_attention import predict_masks
from iclsam.method.sam.embedding import ImageEmbedding

PIXEL_MEAN = (123.675, 116.28, 103.53)
PIXEL_STD = (58.395, 57.12, 57.375)
ENCODE_BATCH = 8  # images per encoder pass off the CPU (`encode_many`)


def as_rgb_float(image: np.ndarray) -> np.ndarray:
    """H x W or H x W x 3 (or x 1) of any dtype as H x W x 3 float32."""
    x = np.asarray(image)
    if x.ndim == 3 and x.shape[2] == 1:
        x = x[..., 0]
    if x.ndim == 2:
        x = np.repeat(x[..., None], 3, axis=2)
    if x.ndim != 3 or x.shape[2] != 3:
        raise ValueError(f"an image must be H x W or H x W x 3, got shape {x.shape}")
    return x.astype(np.float32)


class SamPredictor:
    """Owns pre- and post-processing for one backbone. `encode` once per image (memoised by content,
    optionally on disk in `cache_dir`), `decode` any number of boxes, with or without Eq. 3.

    aspect: "keep" resizes the longest side and pads (the ICL-SAM code; default), "stretch" resizes
    to a square (MedSAM's own inference)."""

    def __init__(
        self,
        kind: str = "lite",
        checkpoint: str | Path | None = None,
        device: str = "auto",
        aspect: str = "keep",
        cache_size: int = 256,
        cache_dir: str | Path | None = None,
    ):
        if aspect not in ("keep", "stretch"):
            raise ValueError(f"aspect must be 'keep' or 'stretch', got {aspect!r}")
        self.backbone = backbone_entry(kind)
        self.device = resolve_device(device)
        self.model = build_sam(kind, checkpoint).to(self.device)
        self.kind, self.aspect = kind, aspect
        weights = file_sha256(checkpoint_path(kind, checkpoint))
        identity = {"backbone": kind, "aspect": aspect, "checkpoint": weights, "preprocessing": preprocessing_version()}
        directory = None if cache_dir is None else Path(cache_dir) / f"{kind}-{aspect}-{weights[:16]}"
        self.cache = EmbeddingCache(identity, (1, 256, GRID, GRID), cache_size, directory)
        self.encoder_passes = 0
        self._memo: dict = {}  # `memoised` (and `decode_memoised`)

    @property
    def input_size(self) -> int:
        return self.backbone.input_size

    @property
    def disk_hits(self) -> int:
        return self.cache.disk_hits

    @property
    def cache_dir(self) -> Path | None:
        return self.cache.directory

    def resized_size(self, original: tuple[int, int]) -> tuple[int, int]:
        if self.aspect == "stretch":
            return self.input_size, self.input_size
        h, w = original
        scale = self.input_size / max(h, w)
        return max(int(h * scale + 0.5), 1), max(int(w * scale + 0.5), 1)

    def preprocess(self, image: np.ndarray) -> tuple[Tensor, tuple[int, int]]:
        """The network input 1 x 3 x S x S and the resized size (h', w') inside it."""
        rgb = as_rgb_float(image)
        if self.backbone.normalisation == "imagenet" and np.asarray(image).dtype != np.uint8:
            lo, hi = rgb.min(), rgb.max()
            rgb = (rgb - lo) / (hi - lo) * 255.0 if hi > lo else np.zeros_like(rgb)
        x = torch.from_numpy(rgb).permute(2, 0, 1)[None].to(self.device)
        resized = self.resized_size(rgb.shape[:2])
        x = F.interpolate(x, size=resized, mode="bilinear", align_corners=False, antialias=True)
        if self.backbone.normalisation == "imagenet":
            mean = torch.tensor(PIXEL_MEAN, device=self.device).view(1, 3, 1, 1)
            std = torch.tensor(PIXEL_STD, device=self.device).view(1, 3, 1, 1)
            x = (x - mean) / std
        else:
            lo, hi = x.min(), x.max()
            x = (x - lo) / (hi - lo).clamp_min(1e-8)
        pad = (0, self.input_size - resized[1], 0, self.input_size - resized[0])
        return F.pad(x, pad), resized

    @torch.inference_mode()
    def encode(self, image: np.ndarray) -> ImageEmbedding:
        """The image's embedding: from memory, else from the on-disk cache (when `cache_dir` was
        given), else one encoder pass (counted in `encoder_passes`)."""
        key, size = image_key(image), tuple(np.asarray(image).shape[:2])
        embedding = self.cache.get(key, size, self.device)
        if embedding is None:
            x, resized = self.preprocess(image)
            embedding = self._encoded(key, self.model.image_encoder(x), size, resized)
        return embedding

    def _encoded(
        self, key: str, features: Tensor, original: tuple[int, int], resized: tuple[int, int]
    ) -> ImageEmbedding:
        """One encoder output (1 x 256 x g x g) as an embedding, counted as a pass and cached."""
        self.encoder_passes += 1
        per_token = self.input_size / features.shape[-1]
        valid = (math.ceil(resized[0] / per_token), math.ceil(resized[1] / per_token))
        embedding = ImageEmbedding(features, original, resized, valid)
        self.cache.put(key, embedding)
        return embedding

    @torch.inference_mode()
    def encode_many(self, images: Sequence[np.ndarray], batch_size: int | None = None) -> list[ImageEmbedding]:
        """`encode` for several images: those not in a cache go through the encoder `batch_size` at a
        time (default: one at a time on the CPU, where batching measured slower; `ENCODE_BATCH` on
        other devices). The same image twice is encoded once. Each result equals `encode`'s to float
        tolerance (a batch may sum in another order)."""
        batch_size = batch_size or (1 if self.device.type == "cpu" else ENCODE_BATCH)
        keys = [image_key(x) for x in images]
        found = {}
        for key, image in zip(keys, images):
            if key not in found:
                found[key] = self.cache.get(key, tuple(np.asarray(image).shape[:2]), self.device)
        missing = [k for k, v in found.items() if v is None]
        first = {k: images[keys.index(k)] for k in missing}
        for start in range(0, len(missing), batch_size):
            chunk = missing[start : start + batch_size]
            inputs = [self.preprocess(first[k]) for k in chunk]
            features = self.model.image_encoder(torch.cat([x for x, _ in inputs]))
            for j, (key, (_, resized)) in enumerate(zip(chunk, inputs)):
                found[key] = self._encoded(
                    key, features[j : j + 1].clone(), tuple(np.asarray(first[key]).shape[:2]), resized
                )
        return [found[k] for k in keys]

    def boxes_to_input(self, embedding: ImageEmbedding, boxes: np.ndarray) -> Tensor:
        """N x 4 XYXY boxes from original-image pixels to network-input pixels."""
        (h, w), (rh, rw) = embedding.original, embedding.resized
        scale = torch.tensor([rw / w, rh / h, rw / w, rh / h], dtype=torch.float32)
        return (torch.as_tensor(np.asarray(boxes, dtype=np.float32)).reshape(-1, 4) * scale).to(self.device)

    @torch.inference_mode()
    def decode(
        self, embedding: ImageEmbedding, boxes: np.ndarray, logit_bias: Tensor | None = None, with_iou: bool = False
    ) -> Tensor | tuple[Tensor, Tensor]:
        """Single-mask logits N x H x W, one per box (all boxes in one batch). `logit_bias`: Eq. 3's
        beta*z over the 4096 grid positions (see `decoder_confidence_bias`), or None for stock SAM.
        `with_iou`: also the decoder's own estimate of each mask's IoU (N)."""
        box_input = self.boxes_to_input(embedding, boxes)
        if len(box_input) == 0:
            empty = torch.zeros((0, *embedding.original))
            return (empty, torch.zeros(0)) if with_iou else empty
        sparse, dense = self.model.prompt_encoder(points=None, boxes=box_input, masks=None)
        low_res, iou = predict_masks(
            self.model.mask_decoder,
            embedding.features,
            self.model.prompt_encoder.get_dense_pe(),
            sparse,
            dense,
            None if logit_bias is None else logit_bias.to(self.device),
        )
        logits = self.postprocess(embedding, low_res).cpu()
        return (logits, iou[:, 0].float().cpu()) if with_iou else logits

    def forget(self) -> None:
        """Empties the memory caches (embeddings and `memoised` work; the on-disk cache stays): the
        next image is encoded again, as in a new process."""
        self.cache.forget()
        self._memo.clear()

    def memoised(self, kind: str, key, compute):
        """`compute()`, remembered by (kind, key) among the last 64 of that kind, for work derived from
        this predictor's features that several models sharing it ask for (key None: not remembered)."""
        if key is None:
            return compute()
        memo = self._memo.setdefault(kind, {})
        if key not in memo:
            memo[key] = compute()
            if len(memo) > 64:
                memo.pop(next(iter(memo)))
        return memo[key]

    def decode_memoised(self, key: str, embedding: ImageEmbedding, boxes: np.ndarray) -> Tensor:
        """`decode` without Eq. 3, remembered by (image key, boxes): the models that share this
        predictor ask for the same ground-truth boxes of a query (the "sam+gt" variant); the result
        is what `decode` gives."""
        return self.memoised(
            "decode", (key, np.asarray(boxes, dtype=np.int64).tobytes()), lambda: self.decode(embedding, boxes)
        )

    def postprocess(self, embedding: ImageEmbedding, low_res: Tensor) -> Tensor:
        """N x 1 x h x w decoder logits -> N x H x W: to the input size, crop the padding, to the image."""
        if low_res.shape[-1] != self.input_size:
            low_res = F.interpolate(
                low_res, size=(self.input_size, self.input_size), mode="bilinear", align_corners=False
            )
        rh, rw = embedding.resized
        cropped = low_res[..., :rh, :rw]
        return F.interpolate(cropped, size=embedding.original, mode="bilinear", align_corners=False)[:, 0]


def preprocessing_version() -> str:
    """A digest of the code that turns an image into the encoder's input (resizing, normalisation,
    padding): an edit to it makes every cached embedding stale."""
    source = "".join(inspect.getsource(f) for f in (as_rgb_float, SamPredictor.resized_size, SamPredictor.preprocess))
    return hashlib.sha256(source.encode()).hexdigest()[:16]
