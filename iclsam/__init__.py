"""iclsam: ICL-SAM (Hu et al., MIDL 2024) — an in-context segmenter prompts SAM, steered by a
semantic confidence map from SAM's own features.

The names below are imported on first use, so that `import iclsam.data.splits` (say) does not load
the models: what a module runs is what it imports (the pipeline's dependencies rely on it)."""

from __future__ import annotations

import importlib

_EXPORTS = {
    "ICLSAM": "iclsam.method.model",
    "ICLSAMConfig": "iclsam.method.config",
    "Prediction": "iclsam.method.model",
    "LabelPrediction": "iclsam.method.label_maps",
    "ICL_BACKENDS": "iclsam.method.icl",
    "ICLBackend": "iclsam.method.icl",
    "build_icl": "iclsam.method.icl",
    "SAM_BACKBONES": "iclsam.method.sam",
    "SamPredictor": "iclsam.method.sam",
    "build_sam": "iclsam.method.sam",
    "UniverSeg": "iclsam.method.universeg",
    "load_universeg": "iclsam.method.universeg",
    "segment_volume": "iclsam.apps.volumes",
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
