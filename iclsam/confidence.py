"""The semantic confidence map (paper §2.2, Eq. 2): a logistic regression on SAM features of the
support set, applied to the query's features as a 1x1 convolution + sigmoid."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from torch import Tensor, nn

from .sam import ImageEmbedding


def token_labels(mask: np.ndarray, embedding: ImageEmbedding, input_size: int) -> np.ndarray:
    """The fraction of target pixels under each valid token (vh x vw): the mask resized like the
    image, zero-padded like it, averaged over each token's patch."""
    x = torch.as_tensor(np.asarray(mask) != 0, dtype=torch.float32)[None, None]
    x = F.interpolate(x, size=embedding.resized, mode="bilinear", align_corners=False, antialias=True)
    x = F.pad(x, (0, input_size - embedding.resized[1], 0, input_size - embedding.resized[0]))
    grid = embedding.features.shape[-1]
    fraction = F.adaptive_avg_pool2d(x, grid)[0, 0]
    return embedding.crop_valid(fraction).numpy()


def support_tokens(embeddings: Sequence[ImageEmbedding], masks: Sequence[np.ndarray],
                   input_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Training data for Eq. 2: every valid token of every support image (n x 256 features) and its
    label (target where at least half the token is target). When no token of the whole set reaches
    half (a target smaller than a token), tokens with any target count as target."""
    features, fractions = [], []
    for embedding, mask in zip(embeddings, masks):
        valid = embedding.crop_valid(embedding.features[0])  # 256 x vh x vw
        features.append(valid.flatten(1).T.cpu().numpy())
        fractions.append(token_labels(mask, embedding, input_size).ravel())
    x, fraction = np.concatenate(features), np.concatenate(fractions)
    y = fraction >= 0.5
    if not y.any():
        y = fraction > 0
    if y.all():
        raise ValueError("the support masks cover every token: no background to learn the confidence map from")
    return x.astype(np.float32), y


@dataclass
class ConfidenceClassifier:
    """The fitted logistic regression: weights (256,) and bias; `converged` is False when the solver
    stopped at its iteration limit."""

    weight: np.ndarray
    bias: float
    converged: bool

    def as_conv(self) -> nn.Conv2d:
        """The classifier as a 1x1 convolution 256 -> 1 (logits)."""
        conv = nn.Conv2d(self.weight.size, 1, 1)
        with torch.no_grad():
            conv.weight.copy_(torch.as_tensor(self.weight, dtype=torch.float32).view(1, -1, 1, 1))
            conv.bias.fill_(self.bias)
        return conv

    @torch.inference_mode()
    def confidence_grid(self, features: Tensor) -> Tensor:
        """C = sigmoid(conv(Enc(x))): 1 x 256 x g x g features -> g x g map in [0, 1]."""
        conv = self.as_conv().to(features.device)
        return torch.sigmoid(conv(features))[0, 0]


def fit_confidence_classifier(x: np.ndarray, y: np.ndarray, solver: str = "lbfgs", seed: int = 0,
                              train_fraction: float = 0.8, max_tokens: int = 30_000) -> ConfidenceClassifier:
    """Eq. 2's logistic regression (binary cross-entropy, balanced classes, C = 1, 100 iterations) on
    a seeded random `train_fraction` of the tokens, at most `max_tokens` of them (the ICL-SAM code's
    protocol). solver: "lbfgs" (the code; default) or "saga" (the paper's wording)."""
    if solver not in ("lbfgs", "saga"):
        raise ValueError(f"solver must be 'lbfgs' or 'saga', got {solver!r}")
    order = np.random.default_rng(seed).permutation(len(y))
    keep = order[: min(max(int(train_fraction * len(y)), 1), max_tokens)]
    x_fit, y_fit = x[keep], y[keep]
    if y_fit.all() or not y_fit.any():  # the subsample lost a class: keep one token of it
        missing = np.flatnonzero(y != y_fit[0])[0]
        x_fit, y_fit = np.concatenate([x_fit, x[missing:missing + 1]]), np.concatenate([y_fit, y[missing:missing + 1]])
    model = LogisticRegression(solver=solver, class_weight="balanced", C=1.0, max_iter=100, random_state=seed)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        model.fit(x_fit, y_fit)
    converged = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
    return ConfidenceClassifier(model.coef_[0].astype(np.float32), float(model.intercept_[0]), converged)
