"""UniverSeg (Butoi et al., ICCV 2023), written to load the official checkpoint key-for-key,
and the paper's Eq. 4: the semantic confidence map inside UniverSeg's decoder.

Shapes: B = queries ("targets"), S = support size, C = channels, H x W = spatial (128 x 128 for
the official weights). The support axis is explicit everywhere; nothing is broadcast silently.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .checkpoints import file_sha256, load_strict, read_state_dict

UNIVERSEG_SIZE = 128
OFFICIAL_WIDTHS = (64, 64, 64, 64)


class ConvOp(nn.Module):
    """k x k convolution (padding k // 2), then LeakyReLU(0.01) unless `activation=False`."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, activation: bool = True):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2)
        self.activation = activation

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv(x)
        return F.leaky_relu(x, 0.01) if self.activation else x


class PerElement(nn.Module):
    """Applies a 4-D module to every element of a B x S x C x H x W tensor (the official `vmapped`)."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.vmapped = module

    def forward(self, x: Tensor) -> Tensor:
        return per_element(self.vmapped, x)


def per_element(fn, x: Tensor) -> Tensor:
    """`fn` (4-D in, 4-D out) applied to each of the B x S elements of x."""
    return fn(x.flatten(0, 1)).unflatten(0, x.shape[:2])


class CrossOp(nn.Module):
    """The cross-convolution: every target paired with every support element, channels
    concatenated [target, support], one 3x3 convolution, no activation.

    target: B x 1 x Ct x H x W, support: B x S x Cs x H x W  ->  B x S x C x H x W.
    """

    def __init__(self, target_channels: int, support_channels: int, out_channels: int):
        super().__init__()
        self.cross_conv = nn.Conv2d(target_channels + support_channels, out_channels, 3, padding=1)

    def forward(self, target: Tensor, support: Tensor) -> Tensor:
        if target.shape[1] != 1:
            raise ValueError(f"target must be B x 1 x C x H x W, got {tuple(target.shape)}")
        pairs = torch.cat([target.expand(-1, support.shape[1], -1, -1, -1), support], dim=2)
        return per_element(self.cross_conv, pairs)


class CrossBlock(nn.Module):
    """Cross-convolution, then the new target is the mean interaction over the support axis;
    each stream then passes its own ConvOp."""

    def __init__(self, target_channels: int, support_channels: int, width: int):
        super().__init__()
        self.cross = CrossOp(target_channels, support_channels, width)
        self.target = PerElement(ConvOp(width, width))
        self.support = PerElement(ConvOp(width, width))

    def forward(self, target: Tensor, support: Tensor) -> tuple[Tensor, Tensor]:
        interaction = self.cross(target, support)  # B x S x C x H x W
        target = self.target(interaction.mean(dim=1, keepdim=True))  # B x 1 x C x H x W
        support = self.support(interaction)
        return target, support


# ---------------------------------------------------------------------------------------------
# Eq. 4: Dec'(x) = Norm(Dec(x) * exp(alpha * Z-Norm(C)) | Dec(x)),  alpha = b * exp(-tau * m)
# ---------------------------------------------------------------------------------------------


def universeg_confidence_weight(b: float, tau: float, m: int) -> float:
    """alpha = b * exp(-tau * m): how strongly the confidence map steers UniverSeg (Eq. 4)."""
    return b * math.exp(-tau * m)


def standardise(x: Tensor) -> Tensor:
    """Z-Norm over the spatial map of each query: (x - mean) / std. x: B x 1 x H x W."""
    mean = x.mean(dim=(-2, -1), keepdim=True)
    std = x.std(dim=(-2, -1), keepdim=True).clamp_min(1e-6)
    return (x - mean) / std


def modulate_support_stream(support: Tensor, z: Tensor, alpha: float) -> Tensor:
    """Eq. 4 on one decoder level: support (B x S x C x H x W) times exp(alpha * z), z the query's
    standardised confidence map (B x 1 x H x W, brought to this level), rescaled so that each
    query's whole tensor keeps its Frobenius norm (Norm(B|A) = B * |A|_2 / |B|_2).
    alpha = 0 returns `support` unchanged to the bit."""
    weight = torch.exp(alpha * z)[:, :, None]  # B x 1 x 1 x H x W, shared by support and channels
    modulated = support * weight
    before = support.flatten(1).norm(dim=1)
    after = modulated.flatten(1).norm(dim=1).clamp_min(1e-12)
    return modulated * (before / after).view(-1, 1, 1, 1, 1)


class UniverSeg(nn.Module):
    """The UniverSeg network. `encoder_widths=(64, 64, 64, 64)` is the official configuration
    (1,182,785 parameters, 44 state_dict keys); other widths give smaller networks of the same
    design (the decoder uses the encoder widths reversed, without the last)."""

    def __init__(self, encoder_widths: Sequence[int] = OFFICIAL_WIDTHS):
        super().__init__()
        encoder_widths = tuple(int(w) for w in encoder_widths)
        if len(encoder_widths) < 2 or min(encoder_widths) < 1:
            raise ValueError(f"encoder_widths needs at least two positive widths, got {encoder_widths}")
        self.encoder_widths = encoder_widths
        self.decoder_widths = encoder_widths[-2::-1]

        self.enc_blocks = nn.ModuleList()
        target_ch, support_ch = 1, 2  # target image; support image + label
        for width in encoder_widths:
            self.enc_blocks.append(CrossBlock(target_ch, support_ch, width))
            target_ch = support_ch = width

        self.dec_blocks = nn.ModuleList()
        skips = encoder_widths[-2::-1]
        for skip, width in zip(skips, self.decoder_widths):
            self.dec_blocks.append(CrossBlock(target_ch + skip, support_ch + skip, width))
            target_ch = support_ch = width

        self.out_conv = ConvOp(self.decoder_widths[-1], 1, kernel_size=1, activation=False)

    @property
    def divisor(self) -> int:
        """H and W must be divisible by this."""
        return 2 ** (len(self.encoder_widths) - 1)

    def encode(self, target_image: Tensor, support_images: Tensor, support_labels: Tensor):
        """target_image: B x 1 x H x W; support_images, support_labels: B x S x 1 x H x W.
        Returns the bottleneck (target, support) and the skips, for `decode`."""
        b, s = support_images.shape[:2]
        if target_image.ndim != 4 or target_image.shape[1] != 1:
            raise ValueError(f"target_image must be B x 1 x H x W, got {tuple(target_image.shape)}")
        if support_images.shape != support_labels.shape or support_images.ndim != 5:
            raise ValueError(
                f"support images {tuple(support_images.shape)} and labels {tuple(support_labels.shape)} "
                "must both be B x S x 1 x H x W"
            )
        if s == 0:
            raise ValueError("the support set is empty")
        h, w = target_image.shape[-2:]
        if h % self.divisor or w % self.divisor or support_images.shape[-2:] != (h, w):
            raise ValueError(f"H x W must match and be divisible by {self.divisor}, got {h}x{w}")
        target = target_image[:, None]  # B x 1 x 1 x H x W
        support = torch.cat([support_images, support_labels], dim=2)  # B x S x 2 x H x W
        skips = []
        for i, block in enumerate(self.enc_blocks):
            target, support = block(target, support)
            if i < len(self.enc_blocks) - 1:
                skips.append((target, support))
                target = per_element(lambda x: F.max_pool2d(x, 2), target)
                support = per_element(lambda x: F.max_pool2d(x, 2), support)
        return target, support, skips

    def decode(self, target: Tensor, support: Tensor, skips, confidence: Tensor | None = None,
               alpha: float = 0.0) -> Tensor:
        """Decoder pass; returns logits B x 1 x H x W. With `confidence` (B x 1 x H x W, the query's
        semantic confidence map at the input resolution) the support stream of every decoder level
        is modulated by Eq. 4 with weight `alpha`."""
        z = None if confidence is None else standardise(confidence)
        skips = list(skips)
        for block in self.dec_blocks:
            target_skip, support_skip = skips.pop()
            upsample = lambda x: F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)  # noqa: E731
            target = torch.cat([per_element(upsample, target), target_skip], dim=2)
            support = torch.cat([per_element(upsample, support), support_skip], dim=2)
            if z is not None:
                level_z = F.interpolate(z, size=support.shape[-2:], mode="bilinear", align_corners=False)
                support = modulate_support_stream(support, level_z, alpha)
            target, support = block(target, support)
        return self.out_conv(target[:, 0])

    def forward(self, target_image: Tensor, support_images: Tensor, support_labels: Tensor,
                confidence: Tensor | None = None, alpha: float = 0.0) -> Tensor:
        return self.decode(*self.encode(target_image, support_images, support_labels), confidence, alpha)


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


WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
SHIPPED_UNIVERSEG = "universeg_synth_w32_s64"


def load_shipped_universeg(stem: str = SHIPPED_UNIVERSEG, directory: Path = WEIGHTS_DIR) -> tuple[UniverSeg, int, str]:
    """Our own UniverSeg-architecture weights, trained on generated tasks (see the model card
    beside them). Returns the network, its input size and a one-line description; the file's
    sha256 is checked against its card."""
    path, card_path = Path(directory) / f"{stem}.pt", Path(directory) / f"{stem}.json"
    if not path.is_file() or not card_path.is_file():
        raise FileNotFoundError(f"shipped UniverSeg weights not found: {path} and {card_path} "
                                "(reinstall iclsam, or pass universeg_checkpoint=)")
    card = json.loads(card_path.read_text())
    if file_sha256(path) != card.get("sha256"):
        raise ValueError(f"{path}: sha256 differs from the one in {card_path}; the file is damaged or replaced")
    net = load_universeg(path, card["config"]["encoder_widths"])
    size = int(card["config"]["size"])
    return net, size, f"iclsam {stem} (UniverSeg architecture trained on generated tasks, sha256 {card['sha256'][:12]})"


def _widths_from_state(state: dict, path: Path) -> tuple[int, ...]:
    widths = []
    while f"enc_blocks.{len(widths)}.cross.cross_conv.weight" in state:
        widths.append(int(state[f"enc_blocks.{len(widths)}.cross.cross_conv.weight"].shape[0]))
    if len(widths) < 2:
        raise ValueError(f"UniverSeg checkpoint {path} has no UniverSeg encoder keys (enc_blocks.*)")
    return tuple(widths)


# ---------------------------------------------------------------------------------------------
# Pre-processing (method.md §1): grey in [0, 1] at 128 x 128
# ---------------------------------------------------------------------------------------------


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
    resize = lambda t: F.interpolate(t[None, None], size=(size, size), mode="bilinear",  # noqa: E731
                                     align_corners=False, antialias=True)[0]
    if role == "support":
        return _minmax(resize(x))
    if role == "query":
        return resize(_minmax(x))
    raise ValueError(f"role must be 'support' or 'query', got {role!r}")


def universeg_label(mask: np.ndarray, size: int = UNIVERSEG_SIZE) -> Tensor:
    """A binary mask as a 1 x size x size float label (nearest-neighbour resize)."""
    x = torch.as_tensor(np.asarray(mask) != 0, dtype=torch.float32)
    return F.interpolate(x[None, None], size=(size, size), mode="nearest")[0]
