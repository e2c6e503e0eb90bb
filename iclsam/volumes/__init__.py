"""Volumes: a whole CT or MRI scan from one to three annotated slices (`segment_volume`), the
"fill between slices" baseline (`interpolation`), reading and writing scans (`scan_io`), metrics in
millimetres (`metrics`), `iclsam evaluate-volumes` (`evaluation`), label-map annotations
(`labels`), the pipeline's `volumes` stage (`stage`, `synthetic`, `figure`)."""

from .interpolation import interpolate_slices, signed_distance
from .labels import LabelVolumeResult
from .metrics import volume_metrics
from .propagation import METHODS, VolumeResult, segment_volume

__all__ = [
    "METHODS",
    "LabelVolumeResult",
    "VolumeResult",
    "interpolate_slices",
    "segment_volume",
    "signed_distance",
    "volume_metrics",
]
