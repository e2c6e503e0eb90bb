"""The label-attention network: a learned in-context segmenter on SAM's encoder tokens.

Every token of the query looks at the tokens of the support set and reads out their labels. Three
kinds of reading, each a map on the query's token grid:

1. attention: per head, softmax(q . k / sqrt(d) * t) of each query token (2 x 2 pooled) over the
   support tokens (4 x 4 pooled), the weighted mean of their target fractions;
2. prototypes: cosine similarity of each query token to the mean target and mean background token;
3. ridge classifiers fitted in closed form on the support tokens (class-balanced), applied to the
   query: one on the projected features (learned through), one on SAM's tokens themselves,
   standardised (fixed: a closed-form cousin of Eq. 2's logistic regression).

The output logit is the token ridge's (scaled) plus a correction from a small dilated convolutional
decoder on the readings and the query's projected features. Its last layer starts at zero: the
untrained network is the ridge classifier. (A decoder on the readings alone, which never sees the
query's appearance, measured lower on held-out families: docs/learned-icl.md.)

The support set's part (`prepare`) is done once per support set; `segment` then runs per query
(state passed in, as SAM's predictor passes an image embedding). Tokens: N x 256 x G x G on the
padded grid; `valid` masks (1 on the image's tokens, 0 on the padding) keep the padding out of
every reading and every mean."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# token pooling: the support set is read at half the grid (SUPPORT_POOL), the attention's keys at a
# further 2 x 2 (KEY_POOL) and its queries at 2 x 2 (QUERY_POOL); the query itself at the full grid
SUPPORT_POOL, KEY_POOL, QUERY_POOL = 2, 2, 2


@dataclass
class PreparedSupport:
    """What `LabelAttention.prepare` gives for one batch of support sets (B of them)."""

    keys: Tensor  # B x heads x L x d (pooled support tokens)
    key_mask: Tensor  # B x 1 x 1 x L (0 valid, -inf padding)
    values: Tensor  # B x 1 x L x 1 (pooled target fractions)
    prototypes: Tensor  # B x 2 x W (unit target and background prototypes)
    ridge: Tensor  # B x (W + 1) (weights and bias on the projected features)
    token_ridge: Tensor  # B x (C + 1) (weights and bias on the standardised tokens)


class LabelAttention(nn.Module):
    def __init__(self, in_channels: int = 256, width: int = 64, heads: int = 4, key_dim: int = 16, ridge: float = 1.0):
        super().__init__()
        for name, value in (("in_channels", in_channels), ("width", width), ("heads", heads), ("key_dim", key_dim)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"LabelAttention: {name} must be a positive integer, got {value!r}")
        if not ridge > 0:
            raise ValueError(f"LabelAttention: ridge must be positive, got {ridge!r}")
        self.config = {"in_channels": in_channels, "width": width, "heads": heads, "key_dim": key_dim, "ridge": ridge}
        self.heads, self.key_dim = heads, key_dim
        self.register_buffer("ridge_penalty", torch.tensor(float(ridge)))
        self.project = nn.Conv2d(in_channels, width, 1)
        self.keys = nn.Conv2d(width, heads * key_dim, 1)
        self.log_temperature = nn.Parameter(torch.zeros(heads))
        self.log_prototype_scale = nn.Parameter(torch.tensor(2.3))
        decoder_in = width + heads + 4
        # the output is the token ridge's logit (scaled) plus the decoder's correction, which starts at zero
        self.ridge_scale = nn.Parameter(torch.tensor(4.0))
        self.decoder = nn.Sequential(
            nn.Conv2d(decoder_in, width, 3, padding=1),
            nn.GELU(),
            nn.Conv2d(width, width, 3, padding=2, dilation=2),
            nn.GELU(),
            nn.Conv2d(width, width, 3, padding=4, dilation=4),
            nn.GELU(),
            nn.Conv2d(width, 1, 1),
        )
        nn.init.zeros_(self.decoder[-1].weight)
        nn.init.zeros_(self.decoder[-1].bias)

    @staticmethod
    def standardised(tokens: Tensor) -> Tensor:
        """Each token's channels to zero mean and unit variance (no learned part)."""
        tokens = tokens.float()
        variance, mean = torch.var_mean(tokens, dim=1, keepdim=True, correction=0)
        return (tokens - mean) * torch.rsqrt(variance + 1e-5)

    def features(self, standardised: Tensor) -> Tensor:
        """N x C x G x G standardised tokens -> N x W x G x G projected features."""
        return F.gelu(self.project(standardised))

    def prepare(self, support: Tensor, labels: Tensor, valid: Tensor) -> PreparedSupport:
        """support: B x m x C x G x G tokens; labels: B x m x G x G target fractions in [0, 1];
        valid: B x m x G x G (1 on image tokens)."""
        if support.ndim != 5 or labels.shape != support.shape[:2] + support.shape[3:] or valid.shape != labels.shape:
            raise ValueError(
                f"LabelAttention.prepare: support B x m x C x G x G with labels and valid B x m x G x G, got "
                f"{tuple(support.shape)}, {tuple(labels.shape)}, {tuple(valid.shape)}"
            )
        b, m, c = support.shape[:3]
        token_ridge = self.token_ridge_weights(support, labels, valid)
        full = valid.float().flatten(0, 1)[:, None]  # Bm x 1 x G x G
        pooled = F.avg_pool2d(full, SUPPORT_POOL)  # the image's share of each pooled token
        share = pooled.clamp_min(1e-6)
        tokens = F.avg_pool2d(support.flatten(0, 1).float() * full, SUPPORT_POOL) / share
        labels = F.avg_pool2d(labels.float().flatten(0, 1)[:, None] * full, SUPPORT_POOL) / share
        valid = (pooled > 0).float().view(b, m, *share.shape[-2:])
        labels = labels.view(b, m, *share.shape[-2:]) * valid
        tokens = self.standardised(tokens)  # Bm x C x g x g
        features = self.features(tokens)  # Bm x W x g x g
        pooled_valid = F.avg_pool2d(valid.flatten(0, 1)[:, None], KEY_POOL)  # Bm x 1 x g x g
        pooled_labels = F.avg_pool2d(labels.flatten(0, 1)[:, None], KEY_POOL) / pooled_valid.clamp_min(1e-6)
        keys = self.keys(F.avg_pool2d(features, KEY_POOL))  # Bm x hd x g x g
        keys = (
            keys.view(b, m, self.heads, self.key_dim, -1)
            .permute(0, 2, 1, 4, 3)
            .reshape(b, self.heads, -1, self.key_dim)
        )
        key_mask = torch.zeros_like(pooled_valid).masked_fill(pooled_valid == 0, -1e4)
        flat = features.view(b, m, features.shape[1], -1).permute(0, 2, 1, 3).reshape(b, features.shape[1], -1)
        y, v = labels.reshape(b, 1, -1), valid.reshape(b, 1, -1)
        target = (flat * y).sum(-1) / y.sum(-1).clamp_min(1e-6)
        background = (flat * (v - y)).sum(-1) / (v - y).sum(-1).clamp_min(1e-6)
        return PreparedSupport(
            keys=keys,
            key_mask=key_mask.view(b, 1, 1, -1),
            values=pooled_labels.reshape(b, 1, -1, 1),
            prototypes=F.normalize(torch.stack([target, background], 1), dim=-1),
            ridge=self.ridge_weights(flat, y[:, 0], v[:, 0]),
            token_ridge=token_ridge,
        )

    @torch.no_grad()
    def token_ridge_weights(self, support: Tensor, labels: Tensor, valid: Tensor) -> Tensor:
        """The ridge reading on SAM's standardised tokens at the full grid (no learned part)."""
        b, m, c = support.shape[:3]
        tokens = self.standardised(support.flatten(0, 1)).view(b, m, c, -1).permute(0, 2, 1, 3).reshape(b, c, -1)
        valid = valid.float().reshape(b, -1)
        return self.ridge_weights(tokens, labels.float().reshape(b, -1) * valid, valid)

    def ridge_weights(self, x: Tensor, y: Tensor, valid: Tensor) -> Tensor:
        """Class-balanced ridge regression of 2y - 1 on [x, 1] (the bias not penalised): x B x W x L,
        y and valid B x L. Returns B x (W + 1), the weights then the bias."""
        positives, negatives = y.sum(-1, keepdim=True), (valid - y).sum(-1, keepdim=True)
        weight = valid * (y / positives.clamp_min(1e-6) + (valid - y) / negatives.clamp_min(1e-6)) / 2
        target = 2 * y - valid
        weighted = x * weight[:, None]  # B x W x L
        column = weighted.sum(-1)  # B x W: the bias's column of the Gram matrix
        gram = torch.cat(
            [
                torch.cat([weighted @ x.transpose(1, 2), column[..., None]], 2),
                torch.cat([column, weight.sum(-1, keepdim=True)], 1)[:, None],
            ],
            1,
        )
        rhs = torch.cat([weighted @ target[..., None], (weight * target).sum(-1)[:, None, None]], 1)
        eye = torch.eye(gram.shape[-1], dtype=gram.dtype, device=gram.device)
        eye[-1, -1] = 0
        return torch.linalg.solve(gram + (self.ridge_penalty * 1e-2 + 1e-6) * eye, rhs)[..., 0]

    def segment(self, query: Tensor, prepared: PreparedSupport) -> Tensor:
        """query: B x C x G x G tokens -> B x G x G logits on the padded grid."""
        tokens = self.standardised(query)
        features = self.features(tokens)  # B x W x G x G
        b, g = features.shape[0], features.shape[-1]
        keys = self.keys(F.avg_pool2d(features, QUERY_POOL)).view(b, self.heads, self.key_dim, -1).transpose(2, 3)
        scale = self.log_temperature.exp().view(1, -1, 1, 1) / self.key_dim**0.5
        weights = torch.softmax((keys * scale) @ prepared.keys.transpose(2, 3) + prepared.key_mask, dim=-1)
        attention = weights @ prepared.values  # B x heads x (g / QUERY_POOL)^2 x 1
        side = g // QUERY_POOL
        attention = F.interpolate(
            attention.view(b, self.heads, side, side), size=(g, g), mode="bilinear", align_corners=False
        )
        unit = F.normalize(features, dim=1)
        similarity = torch.einsum("bwhx,bpw->bphx", unit, prepared.prototypes) * self.log_prototype_scale.exp()
        ridge = torch.einsum("bwhx,bw->bhx", features, prepared.ridge[:, :-1]) + prepared.ridge[:, -1, None, None]
        token_ridge = (
            torch.einsum("bchx,bc->bhx", tokens, prepared.token_ridge[:, :-1]) + prepared.token_ridge[:, -1, None, None]
        )
        x = torch.cat([features, attention, similarity, ridge[:, None], token_ridge[:, None]], 1)
        return self.decoder(x)[:, 0] + self.ridge_scale * token_ridge

    def forward(self, query: Tensor, support: Tensor, labels: Tensor, valid: Tensor) -> Tensor:
        return self.segment(query, self.prepare(support, labels, valid))


def label_attention_from_state(state: dict[str, Tensor]) -> LabelAttention:
    """An untrained network shaped like the weights in `state` (widths read from the tensors)."""
    width, in_channels = state["project.weight"].shape[:2]
    heads = state["log_temperature"].numel()
    return LabelAttention(
        in_channels=int(in_channels),
        width=int(width),
        heads=int(heads),
        key_dim=int(state["keys.weight"].shape[0]) // int(heads),
        ridge=float(state["ridge_penalty"]),
    )
