"""Volumes: a whole CT or MRI scan from one to three annotated slices (`segment_volume`), the
"fill between slices" baseline (`interpolation`), reading and writing scans (`scan_io`), metrics in
millimetres (`metrics`), `iclsam evaluate-volumes` (`evaluation`), label-map annotations
(`labels`), the pipeline's `volumes` stage (`stage`, `synthetic`, `figure`)."""

from iclsam.apps.volumes.api import segment_volume
from iclsam.apps.volumes.interpolation import interpolate_slices, signed_distance
from iclsam.apps.volumes.label_volumes import LabelVolumeResult
from iclsam.apps.volumes.propagation import METHODS, VolumeResult
from iclsam.apps.volumes.volume_metrics import volume_metrics

__all__ = [
    "METHODS",
    "LabelVolumeResult",
    "VolumeResult",
    "interpolate_slices",
    "segment_volume",
    "signed_distance",
    "volume_metrics",
]
