"""The semantic confidence map (paper §2.2, Eq. 2): a logistic regression on SAM features of the
support set, applied to the query's features as a 1x1 convolution + sigmoid."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from torch import Tensor, nn

from iclsam.method.sam.embedding import ImageEmbedding


def token_labels(mask: np.ndarray, embedding: ImageEmbedding, input_size: int) -> np.ndarray:
    """The fraction of target pixels under each valid token (vh x vw): the mask resized like the
    image, zero-padded like it, averaged over each token's patch."""
    x = torch.as_tensor(np.asarray(mask) != 0, dtype=torch.float32)[None, None]
    x = F.interpolate(x, size=embedding.resized, mode="bilinear", align_corners=False, antialias=True)
    x = F.pad(x, (0, input_size - embedding.resized[1], 0, input_size - embedding.resized[0]))
    grid = embedding.features.shape[-1]
    fraction = F.adaptive_avg_pool2d(x, grid)[0, 0]
    return embedding.crop_valid(fraction).numpy()


def support_tokens(
    embeddings: Sequence[ImageEmbedding], masks: Sequence[np.ndarray], input_size: int
) -> tuple[np.ndarray, np.ndarray]:
    """Training data for Eq. 2: every valid token of every support image (n x 256 features) and its label (target where at least half the token
    is target). When no token of the whole set reaches half (a target smaller than a token), tokens
    with any target count as target."""
    features, fractions = [], []
    for embedding, mask in zip(embeddings, masks):
        valid = embedding.crop_valid(embedding.features[0])  # 256 x vh x vw
        features.append(valid.flatten(1).T.cpu().numpy())
        fractions.append(token_labels(mask, embedding, input_size).ravel())
    # Row-major (one token per contiguous row): the fit's subsample takes rows, 4 ms against 78 ms
    # from the column-major concatenation of transposed feature maps (13,107 of 16,384 tokens).
    x, fraction = np.ascontiguousarray(np.concatenate(features), dtype=np.float32), np.concatenate(fractions)
    y = fraction >= 0.5
    if not y.any():
        y = fraction > 0
    if y.all():
        raise ValueError("the support masks cover every token: no background to learn the confidence map from")
    return x, y


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


SOLVERS = ("lbfgs", "saga", "torch")


def solver_for(device: str | torch.device) -> str:
    """The Eq. 2 solver for a device: sklearn's lbfgs (the public code) on the CPU, our torch solver
    (which runs on the device) anywhere else."""
    return "lbfgs" if torch.device(device).type == "cpu" else "torch"


def balanced_logistic_loss(x: Tensor, y: Tensor, weight: Tensor, bias: Tensor, C: float = 1.0) -> Tensor:
    """The objective sklearn's LogisticRegression(class_weight="balanced", C) minimises, divided by
    C * n: mean of s_i * log-loss_i + |w|^2 / (2 C n), with s_i = n / (2 n_class(i)); the bias is not
    penalised. x: n x d, y: n (0/1)."""
    n = y.numel()
    positives = y.sum()
    s = torch.where(y > 0, n / (2 * positives), n / (2 * (n - positives)))
    loss = F.binary_cross_entropy_with_logits(x @ weight + bias, y, weight=s)
    return loss + (weight @ weight) / (2 * C * n)


def _lbfgs(
    x: Tensor, y: Tensor, weight: Tensor, bias: Tensor, max_iter: int, tol: float
) -> tuple[Tensor, Tensor, bool]:
    weight, bias = weight.clone().requires_grad_(True), bias.clone().requires_grad_(True)
    optimiser = torch.optim.LBFGS(
        [weight, bias],
        lr=1,
        max_iter=max_iter,
        tolerance_grad=tol,
        tolerance_change=1e-9,
        history_size=10,
        line_search_fn="strong_wolfe",
    )

    def closure():
        optimiser.zero_grad()
        loss = balanced_logistic_loss(x, y, weight, bias)
        loss.backward()
        return loss

    optimiser.step(closure)
    with torch.no_grad():
        loss = balanced_logistic_loss(x, y, weight, bias)
    weight.grad = bias.grad = None
    loss_grad = torch.autograd.grad(balanced_logistic_loss(x, y, weight, bias), [weight, bias])
    converged = max(float(g.abs().max()) for g in loss_grad) <= tol
    return weight.detach(), bias.detach(), converged and bool(torch.isfinite(loss))


def fit_logistic_torch(
    x: np.ndarray,
    y: np.ndarray,
    seed: int = 0,
    max_iter: int = 100,
    tol: float = 1e-4,
    warm_start_tokens: int = 30_000,
    device: str | torch.device = "cpu",
) -> tuple[np.ndarray, float, bool]:
    """Our solver for Eq. 2's objective (`balanced_logistic_loss`, C = 1): full-batch L-BFGS in
    torch (float32, strong-Wolfe line search; stops when every gradient entry is <= tol, as sklearn's
    lbfgs), warm-started from the same solver on a seeded subsample of `warm_start_tokens` tokens
    when there are more; on `device`. Returns weight, bias, converged."""
    features = torch.as_tensor(np.ascontiguousarray(x, dtype=np.float32)).to(device)
    labels = torch.as_tensor(np.asarray(y), dtype=torch.float32).to(device)
    weight, bias = torch.zeros(features.shape[1], device=features.device), torch.zeros((), device=features.device)
    with torch.enable_grad():
        if len(labels) > 2 * warm_start_tokens:
            subset = torch.as_tensor(
                np.random.default_rng(seed).permutation(len(labels))[:warm_start_tokens], device=features.device
            )
            if 0 < labels[subset].sum() < len(subset):
                weight, bias, _ = _lbfgs(features[subset], labels[subset], weight, bias, max_iter, tol)
        weight, bias, converged = _lbfgs(features, labels, weight, bias, max_iter, tol)
    return weight.cpu().numpy(), float(bias), converged


def fit_confidence_classifier(
    x: np.ndarray,
    y: np.ndarray,
    solver: str = "lbfgs",
    seed: int = 0,
    train_fraction: float = 0.8,
    max_tokens: int | None = 30_000,
    device: str | torch.device = "cpu",
) -> ConfidenceClassifier:
    """Eq. 2's logistic regression (binary cross-entropy, balanced classes, C = 1, 100 iterations) on
    a seeded random `train_fraction` of at most `max_tokens` tokens (the ICL-SAM code's protocol:
    30,000 tokens, then its 80 % split, so at most 24,000 are fitted; `train_fraction=1,
    max_tokens=None` fits every token). solver: "lbfgs" (sklearn, the code; default), "saga" (sklearn, the paper's wording) or "torch" (ours, `fit_logistic_torch`: the
    same objective, faster on many tokens; it runs on `device`, the sklearn solvers on the CPU)."""
    if solver not in SOLVERS:
        raise ValueError(f"solver must be one of {SOLVERS}, got {solver!r}")
    capped = len(y) if max_tokens is None else min(len(y), max_tokens)
    count = max(int(train_fraction * capped), 1)  # the code: cap at max_tokens, then its 80 % split
    if count >= len(y):  # every token: no copy
        x_fit, y_fit = x, y
    else:
        keep = np.random.default_rng(seed).permutation(len(y))[:count]
        x_fit, y_fit = x[keep], y[keep]
    if y_fit.all() or not y_fit.any():  # the subsample lost a class: keep one token of it
        missing = np.flatnonzero(y != y_fit[0])[0]
        x_fit, y_fit = (
            np.concatenate([x_fit, x[missing : missing + 1]]),
            np.concatenate([y_fit, y[missing : missing + 1]]),
        )
    if solver == "torch":
        weight, bias, converged = fit_logistic_torch(x_fit, y_fit, seed, device=device)
        return ConfidenceClassifier(weight.astype(np.float32), bias, converged)
    model = LogisticRegression(solver=solver, class_weight="balanced", C=1.0, max_iter=100, random_state=seed)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        model.fit(x_fit, y_fit)
    converged = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
    return ConfidenceClassifier(model.coef_[0].astype(np.float32), float(model.intercept_[0]), converged)


def support_classifier(sam, support, config, device) -> ConfidenceClassifier:
    """Eq. 2 fitted on a support set's SAM features (`sam`, a `SamPredictor`) with the config's solver,
    seed and token cap. Models sharing the predictor (one per ICL model in the grid) share the fit:
    it depends on the support's content and those settings alone (a support set without content
    key, as fusion="auto"'s held-out sets, is fitted afresh)."""
    key = None
    if support.content:
        key = (support.content, config.solver, config.seed, config.confidence_tokens)
        key += (str(device),)

    def fit() -> ConfidenceClassifier:
        embeddings = [sam.encode(x) for x in support.images]
        tokens = support_tokens(embeddings, support.masks, sam.input_size)
        cap = {} if config.confidence_tokens is not None else {"train_fraction": 1.0}
        return fit_confidence_classifier(
            *tokens, solver=config.solver, seed=config.seed, max_tokens=config.confidence_tokens, device=device, **cap
        )

    return sam.memoised("confidence_fit", key, fit)
