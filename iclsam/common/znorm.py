"""Z-Norm, the one standardisation of the paper's equations: the confidence map in SAM's decoder
(Eq. 3), in UniverSeg's decoder (Eq. 4), and both terms of the fusion (Eq. 1)."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor

MIN_STD = 1e-6  # a flat map is divided by this, not by zero


def z_norm(
    x: Tensor,
    centre: float | None = None,
    dims: Sequence[int] | None = None,
    spread: Tensor | None = None,
    scale: float = 1.0,
) -> Tensor:
    """scale * (x - centre) / std.

    centre: a fixed level (0.5, the confidence map's decision level; 0, SAM's logit threshold) or
      None for x's mean.
    dims: the dimensions the mean and std run over, each slice on its own (None: the whole tensor).
    spread: the values the std (and a mean centre) is measured on when not x itself, e.g. the
      valid, unpadded part of SAM's token grid.
    """
    ref = x if spread is None else spread
    if dims is None:
        level = ref.mean() if centre is None else centre
        std = ref.std()
    else:
        level = ref.mean(dim=tuple(dims), keepdim=True) if centre is None else centre
        std = ref.std(dim=tuple(dims), keepdim=True)
    return scale * (x - level) / std.clamp_min(MIN_STD)
