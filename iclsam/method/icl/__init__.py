"""ICL-SAM's in-context models behind one interface (`ICLBackend`), chosen by name."""

from __future__ import annotations

from pathlib import Path

from iclsam.method.icl.base import ICLBackend, ICLOutput
from iclsam.method.icl.features_backend import FeaturesICL
from iclsam.method.icl.label_attention_backend import LabelAttentionICL
from iclsam.method.icl.universeg_backend import UniverSegICL

ICL_BACKENDS = {"universeg": UniverSegICL, "features": FeaturesICL, "label-attention": LabelAttentionICL}
# The ICL model without a UniverSeg checkpoint: the best on real images, by `iclsam evaluate` on the
# five real-dev sets (docs/real-images.md); the weights shipped with iclsam stay reachable as
# universeg_checkpoint="shipped" (or icl="universeg").
DEFAULT_ICL = "features"


def resolve_icl(name: str, universeg_checkpoint: str | Path | None) -> str:
    """ "auto": UniverSeg when a UniverSeg checkpoint is given (the paper's setting, "shipped"
    included), else `DEFAULT_ICL`; any other name is returned as it is."""
    if name != "auto":
        return name
    return "universeg" if universeg_checkpoint is not None else DEFAULT_ICL


def build_icl(
    name: str,
    *,
    sam_name: str,
    universeg_checkpoint: str | Path | None = None,
    universeg_channel: str = "first",
    device: str = "auto",
    sam=None,
    icl_checkpoint: str | Path | None = None,
) -> ICLBackend:
    """The ICL model called `name` ("universeg", "features", "label-attention" or "auto": see
    `resolve_icl`). "label-attention" reads the tokens of `sam` (a `SamPredictor`) and runs
    `icl_checkpoint` (default: the shipped weights)."""
    name = resolve_icl(name, universeg_checkpoint)
    if name not in ICL_BACKENDS:
        raise ValueError(f"icl must be 'auto' or one of {tuple(ICL_BACKENDS)}, got {name!r}")
    if name == "universeg":
        return UniverSegICL(
            "shipped" if universeg_checkpoint is None else universeg_checkpoint, universeg_channel, device
        )
    if name == "label-attention":
        if sam is None:
            raise ValueError("the label-attention ICL model reads SAM's tokens: give build_icl the SamPredictor (sam=)")
        return LabelAttentionICL(sam, "shipped" if icl_checkpoint is None else icl_checkpoint)
    return FeaturesICL(sam_name)


__all__ = [
    "DEFAULT_ICL",
    "ICL_BACKENDS",
    "FeaturesICL",
    "ICLBackend",
    "ICLOutput",
    "LabelAttentionICL",
    "UniverSegICL",
    "build_icl",
    "resolve_icl",
]
