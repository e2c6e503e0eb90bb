"""SAM's part of ICL-SAM: the backbones (`build`), Eq. 3 in the mask decoder (`attention`) and the
predictor that owns pre- and post-processing (`predictor`)."""

from iclsam.method.sam.build import SAM_BACKBONES, Backbone, SamModel, build_sam
from iclsam.method.sam.confidence_attention import MASK_TOKEN, biased_attention, decoder_confidence_bias, predict_masks
from iclsam.method.sam.predictor import ImageEmbedding, SamPredictor

__all__ = [
    "MASK_TOKEN",
    "SAM_BACKBONES",
    "Backbone",
    "ImageEmbedding",
    "SamModel",
    "SamPredictor",
    "biased_attention",
    "build_sam",
    "decoder_confidence_bias",
    "predict_masks",
]
