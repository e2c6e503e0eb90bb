"""ICL-SAM's in-context models behind one interface (`ICLBackend`), chosen by name."""

from __future__ import annotations

from pathlib import Path

from .base import ICLBackend, ICLOutput
from .features import FeaturesICL
from .universeg import UniverSegICL

ICL_BACKENDS = {"universeg": UniverSegICL, "features": FeaturesICL}


def build_icl(name: str, *, sam_name: str, universeg_checkpoint: str | Path | None = None,
              universeg_channel: str = "first", device: str = "cpu") -> ICLBackend:
    """The ICL model called `name` ("universeg" or "features")."""
    if name not in ICL_BACKENDS:
        raise ValueError(f"icl must be one of {tuple(ICL_BACKENDS)}, got {name!r}")
    if name == "universeg":
        return UniverSegICL("shipped" if universeg_checkpoint is None else universeg_checkpoint,
                            universeg_channel, device)
    return FeaturesICL(sam_name)


__all__ = ["ICL_BACKENDS", "FeaturesICL", "ICLBackend", "ICLOutput", "UniverSegICL", "build_icl"]
