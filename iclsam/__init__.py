"""iclsam: ICL-SAM (Hu et al., MIDL 2024) — an in-context segmenter prompts SAM, steered by a
semantic confidence map from SAM's own features.

The names below are imported on first use, so that `import iclsam.data.splits` (say) does not load
the models: what a module runs is what it imports (the pipeline's dependencies rely on it)."""

from __future__ import annotations

import importlib

_EXPORTS = {
    "ICLSAM": "iclsam.model",
    "ICLSAMConfig": "iclsam.config",
    "Prediction": "iclsam.model",
    "LabelPrediction": "iclsam.labels",
    "ICL_BACKENDS": "iclsam.icl",
    "ICLBackend": "iclsam.icl",
    "build_icl": "iclsam.icl",
    "SAM_BACKBONES": "iclsam.sam",
    "SamPredictor": "iclsam.sam",
    "build_sam": "iclsam.sam",
    "UniverSeg": "iclsam.universeg",
    "load_universeg": "iclsam.universeg",
}
__all__ = sorted(_EXPORTS)
__version__ = "0.1.0"


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'iclsam' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(list(globals()) + __all__)
