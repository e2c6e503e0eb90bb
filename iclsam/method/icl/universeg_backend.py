"""UniverSeg as ICL-SAM's in-context model, with the confidence map inside its decoder (Eq. 4)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from iclsam.common.devices import resolve_device
from iclsam.common.resampling import to_image_size
from iclsam.method.icl.base import ICLBackend, ICLOutput
from iclsam.method.universeg import universeg, universeg_image, universeg_label

CHANNELS = ("first", "luminance")


@dataclass
class UniverSegSupport:
    images: Tensor  # 1 x m x 1 x S x S
    labels: Tensor


class UniverSegICL(ICLBackend):
    """weights: "shipped" (ours, trained on generated tasks) or a checkpoint path (e.g. the official
    universeg_v1_nf64_ss64_STA.pt). channel: how RGB becomes grey, "first" (the ICL-SAM code) or
    "luminance"."""

    name = "universeg"
    plain_variant = "universeg"
    map_variant = "universeg+conf"

    def __init__(self, weights: str | Path = "shipped", channel: str = "first", device: str = "auto"):
        if channel not in CHANNELS:
            raise ValueError(f"channel must be one of {CHANNELS}, got {channel!r}")
        network, self.size, self.weights = universeg(weights)
        self.device = resolve_device(device)
        self.network = network.to(self.device)
        self.channel = channel

    def settings(self) -> tuple:
        return (self.channel,)

    def prepare(self, images: Sequence[np.ndarray], masks: Sequence[np.ndarray]) -> UniverSegSupport:
        return UniverSegSupport(
            torch.stack([universeg_image(x, "support", self.channel, self.size) for x in images])[None].to(self.device),
            torch.stack([universeg_label(y, self.size) for y in masks])[None].to(self.device),
        )

    @torch.inference_mode()
    def predict(
        self,
        prepared: UniverSegSupport,
        query: np.ndarray,
        confidence: Tensor | None,
        alpha: float,
        plain: bool = True,
        with_map: bool = True,
    ) -> ICLOutput:
        """Plain UniverSeg and UniverSeg with Eq. 4, sharing one encoder pass."""
        target = universeg_image(query, "query", self.channel, self.size)[None].to(self.device)
        encoded = self.network.encode(target, prepared.images, prepared.labels)
        out = ICLOutput()
        if plain:
            out.plain = torch.sigmoid(self.network.decode(*encoded))[0, 0].cpu()
        if with_map:
            if confidence is None:
                raise ValueError("UniverSeg with the confidence map (Eq. 4) needs the query's confidence map")
            grid = to_image_size(confidence, (self.size, self.size))[None, None].to(self.device)
            out.with_map = torch.sigmoid(self.network.decode(*encoded, confidence=grid, alpha=alpha))[0, 0].cpu()
        return out

    @torch.inference_mode()
    def predict_batch(
        self,
        prepared: UniverSegSupport,
        queries: Sequence[np.ndarray],
        confidences: Sequence[Tensor | None],
        alpha: float,
        plain: bool = True,
        with_map: bool = True,
    ) -> list[ICLOutput]:
        """`predict` for several queries in one batch through the network (the support set repeated
        along the batch); equal to one at a time to float tolerance."""
        if not len(queries):
            return []
        b = len(queries)
        targets = torch.stack([universeg_image(q, "query", self.channel, self.size) for q in queries]).to(self.device)
        encoded = self.network.encode(
            targets,
            prepared.images.expand(b, *prepared.images.shape[1:]),
            prepared.labels.expand(b, *prepared.labels.shape[1:]),
        )
        outs = [ICLOutput() for _ in range(b)]
        if plain:
            for out, p in zip(outs, torch.sigmoid(self.network.decode(*encoded))[:, 0].cpu()):
                out.plain = p
        if with_map:
            if any(c is None for c in confidences):
                raise ValueError("UniverSeg with the confidence map (Eq. 4) needs every query's confidence map")
            grids = torch.stack([to_image_size(c, (self.size, self.size)) for c in confidences])[:, None].to(
                self.device
            )
            for out, p in zip(
                outs, torch.sigmoid(self.network.decode(*encoded, confidence=grids, alpha=alpha))[:, 0].cpu()
            ):
                out.with_map = p
        return outs
