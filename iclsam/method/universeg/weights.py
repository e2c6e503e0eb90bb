"""UniverSeg's weights: the official from-scratch initialisation, strict loading of a checkpoint,
our shipped weights, and the `universeg(weights=...)` factory."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from torch import nn

from iclsam.common.checkpoints import load_strict, read_state_dict, shipped_card
from iclsam.method.universeg.network import CrossOp, UniverSeg
from iclsam.method.universeg.preprocessing import UNIVERSEG_SIZE

WEIGHTS_DIR = Path(__file__).resolve().parents[2] / "weights"
SHIPPED_UNIVERSEG = "universeg_synth_w32_s64"


def init_universeg_weights(net: UniverSeg) -> UniverSeg:
    """The official from-scratch init: ConvOps kaiming-normal (fan_in, leaky gain); cross convs and
    the output conv gain 1; biases zero."""
    for module in net.modules():
        if isinstance(module, CrossOp):
            nn.init.kaiming_normal_(module.cross_conv.weight, nonlinearity="linear")
            nn.init.zeros_(module.cross_conv.bias)
    for block in [*net.enc_blocks, *net.dec_blocks]:
        for op in (block.target.vmapped, block.support.vmapped):
            nn.init.kaiming_normal_(op.conv.weight, a=0.01, nonlinearity="leaky_relu")
            nn.init.zeros_(op.conv.bias)
    nn.init.kaiming_normal_(net.out_conv.conv.weight, nonlinearity="linear")
    nn.init.zeros_(net.out_conv.conv.bias)
    return net


def load_universeg(path: str | Path, encoder_widths: Sequence[int] | None = None) -> UniverSeg:
    """Loads a UniverSeg checkpoint (a raw state_dict, as the official
    `universeg_v1_nf64_ss64_STA.pt`) strict, on the CPU, with `weights_only=True`. The widths are
    read from the file unless given."""
    state = read_state_dict(path, "UniverSeg")
    if encoder_widths is None:
        encoder_widths = _widths_from_state(state, Path(path))
    return load_strict(UniverSeg(encoder_widths), state, path, "UniverSeg").eval()


def load_shipped_universeg(stem: str = SHIPPED_UNIVERSEG, directory: Path = WEIGHTS_DIR) -> tuple[UniverSeg, int, str]:
    """Our own UniverSeg-architecture weights, trained on generated tasks (see the model card
    beside them). Returns the network, its input size and a one-line description; the file's
    sha256 is checked against its card."""
    path, card = shipped_card(directory, stem, "UniverSeg", "reinstall iclsam, or pass universeg_checkpoint=")
    net = load_universeg(path, card["config"]["encoder_widths"])
    size = int(card["config"]["size"])
    return net, size, f"iclsam {stem} (UniverSeg architecture trained on generated tasks, sha256 {card['sha256'][:12]})"


def universeg(weights: str | Path = "shipped") -> tuple[UniverSeg, int, str]:
    """A UniverSeg ready for inference: `weights` is "shipped" (our weights, see their model card) or
    the path of a checkpoint (e.g. the official universeg_v1_nf64_ss64_STA.pt, input 128 x 128).
    Returns the network (eval mode, CPU), its input size and the weights in words."""
    if str(weights) == "shipped":
        return load_shipped_universeg()
    return load_universeg(weights), UNIVERSEG_SIZE, f"UniverSeg checkpoint {weights}"


def _widths_from_state(state: dict, path: Path) -> tuple[int, ...]:
    widths = []
    while f"enc_blocks.{len(widths)}.cross.cross_conv.weight" in state:
        weight = state[f"enc_blocks.{len(widths)}.cross.cross_conv.weight"]
        if weight.ndim != 4:
            raise ValueError(
                f"UniverSeg checkpoint {path}: enc_blocks.{len(widths)}.cross.cross_conv.weight has shape "
                f"{tuple(weight.shape)}, expected a 4-D convolution weight"
            )
        widths.append(int(weight.shape[0]))
    if len(widths) < 2:
        raise ValueError(f"UniverSeg checkpoint {path} has no UniverSeg encoder keys (enc_blocks.*)")
    return tuple(widths)
