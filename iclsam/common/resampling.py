"""Resizing maps and masks between grids: a model's own grid to the image, a mask to the fixed
size at which ASSD is measured."""

from __future__ import annotations

import numpy as np
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

ASSD_SIZE = 512


def to_image_size(x: Tensor, size: tuple[int, int]) -> Tensor:
    """An h x w map resized (bilinear) to `size`."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x[None, None], size=size, mode="bilinear", align_corners=False)[0, 0]


def resized_mask(mask: np.ndarray, size: int = ASSD_SIZE) -> np.ndarray:
    """A binary mask resized (nearest) to size x size, as bool."""
    return np.asarray(Image.fromarray(mask.astype(np.uint8)).resize((size, size), Image.NEAREST)) > 0
