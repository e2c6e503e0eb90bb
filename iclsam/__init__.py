"""iclsam: ICL-SAM (Hu et al., MIDL 2024) — an in-context segmenter prompts SAM, steered by a
semantic confidence map from SAM's own features."""

from .pipeline import ICL_BACKENDS, ICLSAM, Prediction
from .sam import SAM_BACKBONES, SamPredictor, build_sam
from .universeg import UniverSeg, load_universeg

__all__ = ["ICLSAM", "ICL_BACKENDS", "Prediction", "SAM_BACKBONES", "SamPredictor", "UniverSeg",
           "build_sam", "load_universeg"]
__version__ = "0.1.0"
