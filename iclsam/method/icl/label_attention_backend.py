"""The label-attention network (`label_attention.py`) as ICL-SAM's in-context model: it reads SAM's
encoder tokens of the support images and the query (the encodings Eq. 2 and SAM's decoder use
anyway, from the predictor's cache) and the support masks, and gives the query's target probability
on SAM's token grid. It does not take the confidence map: Eq. 4 does not apply, and its mask is the
pseudo-label whose boxes prompt SAM.

Weights: "shipped" (trained with `iclsam train-icl` on real-wide; see the model card beside them) or
a path. The loader is strict: the file must be a raw state_dict of this network, finite, and the
shipped file must match the sha256 of its card."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from iclsam.common.checkpoints import load_strict, read_state_dict, shipped_card
from iclsam.method.confidence import token_labels
from iclsam.method.icl.base import ICLBackend, ICLOutput
from iclsam.method.icl.label_attention import LabelAttention, PreparedSupport, label_attention_from_state
from iclsam.method.sam.embedding import ImageEmbedding

WEIGHTS_DIR = Path(__file__).resolve().parents[2] / "weights"
SHIPPED_LABEL_ATTENTION = "label_attention_realwide"


def grid_labels(mask: np.ndarray, embedding: ImageEmbedding, input_size: int) -> Tensor:
    """The target fraction under each token (`confidence.token_labels`) on the padded G x G grid,
    zero outside the image's tokens."""
    labels = torch.as_tensor(token_labels(mask, embedding, input_size), dtype=torch.float32)
    grid = embedding.features.shape[-1]
    out = torch.zeros(grid, grid)
    out[: labels.shape[0], : labels.shape[1]] = labels
    return out


def grid_valid(valid: tuple[int, int], grid: int) -> Tensor:
    """1 on the image's tokens of the padded G x G grid, 0 on the padding."""
    out = torch.zeros(grid, grid)
    out[: valid[0], : valid[1]] = 1
    return out


def load_label_attention(path: str | Path) -> LabelAttention:
    """A label-attention checkpoint (raw state_dict), strict, on the CPU, in eval mode."""
    state = read_state_dict(path, "label-attention")
    try:
        network = label_attention_from_state(state)
    except (KeyError, ValueError, IndexError) as error:
        raise ValueError(f"label-attention checkpoint {path} is not this network's weights ({error})") from None
    return load_strict(network, state, path, "label-attention").eval()


def shipped_label_attention(
    directory: Path = WEIGHTS_DIR, stem: str = SHIPPED_LABEL_ATTENTION
) -> tuple[LabelAttention, str]:
    """The shipped weights (sha256 checked against their card) and a one-line description."""
    remedy = "reinstall iclsam, train your own with `iclsam train-icl`, or use icl='features'"
    path, card = shipped_card(directory, stem, "label-attention", remedy)
    return load_label_attention(path), f"iclsam {stem} (label attention on SAM tokens, sha256 {card['sha256'][:12]})"


class LabelAttentionICL(ICLBackend):
    """sam: the `SamPredictor` whose tokens the network reads (the model's own, sharing its cache)."""

    name = "label-attention"
    plain_variant = None
    map_variant = "label-attention"
    notes = ("Eq. 4 (confidence map in UniverSeg) does not apply to the label-attention backend",)
    default_sam_steering = False
    boxes_from_own_probability = True

    def __init__(self, sam, weights: str | Path = "shipped"):
        if sam.kind != "lite" and str(weights) == "shipped":
            raise ValueError(
                f"the shipped label-attention weights read LiteMedSAM's tokens; with sam={sam.kind!r} "
                "give weights trained on that backbone (`iclsam train-icl --sam ...`) or use icl='features'"
            )
        if str(weights) == "shipped":
            self.network, self.weights = shipped_label_attention()
        else:
            self.network, self.weights = load_label_attention(weights), f"label-attention checkpoint {weights}"
        self.sam = sam
        self.network = self.network.to(sam.device)

    def settings(self) -> tuple:
        return (self.weights,)

    @torch.inference_mode()
    def prepare(self, images: Sequence[np.ndarray], masks: Sequence[np.ndarray]) -> PreparedSupport:
        embeddings = self.sam.encode_many(images)
        grid = embeddings[0].features.shape[-1]
        labels = torch.stack([grid_labels(y, e, self.sam.input_size) for y, e in zip(masks, embeddings)])
        valid = torch.stack([grid_valid(e.valid, grid) for e in embeddings])
        tokens = torch.cat([e.features for e in embeddings])
        device = self.sam.device
        return self.network.prepare(tokens[None].to(device), labels[None].to(device), valid[None].to(device))

    @torch.inference_mode()
    def predict(
        self,
        prepared: PreparedSupport,
        query: np.ndarray,
        confidence: Tensor | None,
        alpha: float,
        plain: bool = True,
        with_map: bool = True,
    ) -> ICLOutput:
        if not with_map:
            return ICLOutput()
        embedding = self.sam.encode(query)
        logits = self.network.segment(embedding.features, prepared)[0]
        return ICLOutput(with_map=torch.sigmoid(embedding.crop_valid(logits)).cpu())
