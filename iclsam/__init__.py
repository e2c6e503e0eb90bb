"""iclsam: ICL-SAM (Hu et al., MIDL 2024) — an in-context segmenter prompts SAM, steered by a
semantic confidence map from SAM's own features."""

from .icl import ICL_BACKENDS, ICLBackend, build_icl
from .model import ICLSAM, Prediction
from .sam import SAM_BACKBONES, SamPredictor, build_sam
from .universeg import UniverSeg, load_universeg, universeg

__all__ = ["ICLSAM", "ICL_BACKENDS", "ICLBackend", "Prediction", "SAM_BACKBONES", "SamPredictor", "UniverSeg",
           "build_icl", "build_sam", "load_universeg", "universeg"]
__version__ = "0.1.0"
