"""The UniverSeg network (Butoi et al., ICCV 2023) alone, written to load the official checkpoint
key-for-key. Its decoder takes the query's confidence map and applies the paper's Eq. 4
(`confidence.modulate_support_stream`) when given one.

Shapes: B = queries ("targets"), S = support size, C = channels, H x W = spatial (128 x 128 for
the official weights). The support axis is explicit everywhere; nothing is broadcast silently.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from iclsam.common.znorm import z_norm
from iclsam.method.universeg.confidence_weight import modulate_support_stream

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

    def decode(
        self, target: Tensor, support: Tensor, skips, confidence: Tensor | None = None, alpha: float = 0.0
    ) -> Tensor:
        """Decoder pass; returns logits B x 1 x H x W. With `confidence` (B x 1 x H x W, the query's
        semantic confidence map at the input resolution) the support stream of every decoder level
        is modulated by Eq. 4 with weight `alpha`."""
        z = None if confidence is None else z_norm(confidence, dims=(-2, -1))
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

    def forward(
        self,
        target_image: Tensor,
        support_images: Tensor,
        support_labels: Tensor,
        confidence: Tensor | None = None,
        alpha: float = 0.0,
    ) -> Tensor:
        return self.decode(*self.encode(target_image, support_images, support_labels), confidence, alpha)
