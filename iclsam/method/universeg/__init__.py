"""UniverSeg, the paper's in-context model: the network alone (`network`), Eq. 4 (`confidence`),
its weights and factory (`weights`), its pre-processing (`preprocessing`)."""

from iclsam.method.universeg.confidence_weight import modulate_support_stream, universeg_confidence_weight
from iclsam.method.universeg.network import OFFICIAL_WIDTHS, UniverSeg
from iclsam.method.universeg.preprocessing import UNIVERSEG_SIZE, universeg_image, universeg_label
from iclsam.method.universeg.weights import (
    SHIPPED_UNIVERSEG,
    WEIGHTS_DIR,
    init_universeg_weights,
    load_shipped_universeg,
    load_universeg,
    universeg,
)

__all__ = [
    "OFFICIAL_WIDTHS",
    "SHIPPED_UNIVERSEG",
    "UNIVERSEG_SIZE",
    "UniverSeg",
    "WEIGHTS_DIR",
    "init_universeg_weights",
    "load_shipped_universeg",
    "load_universeg",
    "modulate_support_stream",
    "universeg",
    "universeg_confidence_weight",
    "universeg_image",
    "universeg_label",
]
