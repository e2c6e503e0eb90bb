"""UniverSeg's pre-processing (method.md §1): images as grey in [0, 1] and binary labels, both at
the network's input size (128 x 128 for the official weights)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

UNIVERSEG_SIZE = 128


def _minmax(x: Tensor) -> Tensor:
    lo, hi = x.min(), x.max()
    return (x - lo) / (hi - lo) if hi > lo else torch.zeros_like(x)


def universeg_image(image: np.ndarray, role: str, channel: str = "first", size: int = UNIVERSEG_SIZE) -> Tensor:
    """An image (H x W or H x W x 3, any dtype) as UniverSeg input, 1 x size x size in [0, 1].

    As the ICL-SAM code: RGB keeps channel 0 after a global min-max (`channel="luminance"` takes
    ITU-R 601 luma instead); a support image is resized (bilinear) then min-max'ed, the query
    min-max'ed then resized."""
    x = torch.as_tensor(np.asarray(image, dtype=np.float32))
    if x.ndim == 3:
        if channel == "first":
            x = _minmax(x)[..., 0]
        elif channel == "luminance":
            x = x[..., 0] * 0.299 + x[..., 1] * 0.587 + x[..., 2] * 0.114
        else:
            raise ValueError(f"channel must be 'first' or 'luminance', got {channel!r}")

    def resize(t):
        return F.interpolate(t[None, None], size=(size, size), mode="bilinear", align_corners=False, antialias=True)[0]

    if role == "support":
        return _minmax(resize(x))
    if role == "query":
        return resize(_minmax(x))
    raise ValueError(f"role must be 'support' or 'query', got {role!r}")


def universeg_label(mask: np.ndarray, size: int = UNIVERSEG_SIZE) -> Tensor:
    """A binary mask as a 1 x size x size float label (nearest-neighbour resize)."""
    x = torch.as_tensor(np.asarray(mask) != 0, dtype=torch.float32)
    return F.interpolate(x[None, None], size=(size, size), mode="nearest")[0]
