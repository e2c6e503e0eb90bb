"""An encoded image and the maps between SAM's 64 x 64 token grid and the image."""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F
from torch import Tensor


@dataclass
class ImageEmbedding:
    """An encoded image. features: 1 x 256 x 64 x 64 on the padded grid; the image was resized to
    `resized` (h', w') and zero-padded bottom/right; `valid` is the unpadded part of the grid."""

    features: Tensor
    original: tuple[int, int]
    resized: tuple[int, int]
    valid: tuple[int, int]

    def crop_valid(self, grid: Tensor) -> Tensor:
        """The unpadded part of a ... x 64 x 64 map."""
        return grid[..., : self.valid[0], : self.valid[1]]

    def grid_to_image(self, grid: Tensor) -> Tensor:
        """A ... x 64 x 64 map on the token grid, cropped to the valid region, then bilinear to H x W."""
        valid = self.crop_valid(grid)
        lead = valid.shape[:-2]
        out = F.interpolate(
            valid.reshape(-1, 1, *valid.shape[-2:]), size=self.original, mode="bilinear", align_corners=False
        )
        return out.reshape(*lead, *self.original)
