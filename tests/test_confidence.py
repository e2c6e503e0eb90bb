import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from iclsam.method.confidence import (
    ConfidenceClassifier,
    balanced_logistic_loss,
    fit_confidence_classifier,
    fit_logistic_torch,
    support_tokens,
    token_labels,
)
from iclsam.method.sam import ImageEmbedding


def embedding(original, resized, valid, seed=0):
    features = torch.randn(1, 256, 64, 64, generator=torch.Generator().manual_seed(seed))
    return ImageEmbedding(features, original, resized, valid)


def test_token_labels_are_the_target_fraction_under_each_token():
    # a 128 x 256 image, resized by 1 to 128 x 256 inside a 256 input: tokens are 4 x 4 pixels
    mask = np.zeros((128, 256), bool)
    mask[8:16, 20:30] = True
    fraction = token_labels(mask, embedding((128, 256), (128, 256), (32, 64)), input_size=256)
    assert fraction.shape == (32, 64)
    expected = mask.reshape(32, 4, 64, 4).mean(axis=(1, 3))
    np.testing.assert_allclose(fraction, expected, atol=1e-6)


def test_support_tokens_use_valid_tokens_and_fall_back_for_tiny_targets():
    mask = np.zeros((128, 256), bool)
    mask[9:11, 9:11] = True  # 2 x 2 pixels: no token is half target
    emb = embedding((128, 256), (128, 256), (32, 64))
    x, y = support_tokens([emb, emb], [mask, mask], input_size=256)
    assert x.flags.c_contiguous  # one token per row: the fit subsamples rows
    assert x.shape == (2 * 32 * 64, 256) and y.shape == (2 * 32 * 64,)
    np.testing.assert_array_equal(x[:2048], emb.features[0, :, :32, :].flatten(1).T.numpy())
    assert 2 <= y.sum() <= 8
    with pytest.raises(ValueError, match="no background"):
        support_tokens([emb], [np.ones((128, 256), bool)], input_size=256)


def test_the_classifier_maps_the_tokens_it_was_fitted_on():
    emb = embedding((128, 256), (128, 256), (32, 64), seed=5)
    mask = np.zeros((128, 256), bool)
    mask[20:60, 40:120] = True
    x, y = support_tokens([emb], [mask], input_size=256)
    assert x.shape == (32 * 64, 256)
    fitted = fit_confidence_classifier(x, y, seed=0)
    classifier = ConfidenceClassifier(fitted.weight, fitted.bias, fitted.converged)
    grid = classifier.confidence_grid(emb.features)[:32, :64]
    logits = x @ fitted.weight + fitted.bias  # the tokens the fit saw, in the same order
    np.testing.assert_allclose(grid.flatten().numpy(), 1 / (1 + np.exp(-logits)), atol=1e-5)


def separable(n=4000, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.random(n) < 0.2
    x = rng.standard_normal((n, 256)).astype(np.float32)
    x[:, :4] += 1.5 * y[:, None]
    return x, y


def test_the_map_is_the_logistic_regression_as_a_1x1_conv():
    x, y = separable()
    classifier = fit_confidence_classifier(x, y, seed=3)
    reference = LogisticRegression(class_weight="balanced", max_iter=100, random_state=3)
    keep = np.random.default_rng(3).permutation(len(y))[: int(0.8 * len(y))]
    reference.fit(x[keep], y[keep])
    np.testing.assert_allclose(classifier.weight, reference.coef_[0], rtol=1e-5, atol=1e-6)
    features = torch.randn(1, 256, 64, 64)
    grid = classifier.confidence_grid(features)
    tokens = features[0].flatten(1).T.numpy()
    expected = reference.predict_proba(tokens)[:, 1].reshape(64, 64)
    np.testing.assert_allclose(grid.numpy(), expected, atol=1e-5)


def test_fitting_is_seeded_and_saga_is_available():
    x, y = separable()
    a, b = fit_confidence_classifier(x, y, seed=0), fit_confidence_classifier(x, y, seed=0)
    np.testing.assert_array_equal(a.weight, b.weight)
    c = fit_confidence_classifier(x, y, seed=1)
    assert not np.array_equal(a.weight, c.weight)
    capped = fit_confidence_classifier(x, y, max_tokens=500)
    assert isinstance(capped, ConfidenceClassifier)
    held_out_auc = lambda c: roc_auc_score(y[1000:], x[1000:] @ c.weight + c.bias)  # noqa: E731
    saga = fit_confidence_classifier(x[:1000], y[:1000], solver="saga")
    lbfgs = fit_confidence_classifier(x[:1000], y[:1000])
    assert held_out_auc(saga) > 0.9 and abs(held_out_auc(saga) - held_out_auc(lbfgs)) < 0.01
    with pytest.raises(ValueError, match="solver"):
        fit_confidence_classifier(x, y, solver="newton")


def overlapping(n=6000, d=24, seed=5):
    """Two overlapping Gaussian classes, 10 % positive, uneven feature scales (a problem where the
    optimum is finite and the scaling matters, like SAM features)."""
    rng = np.random.default_rng(seed)
    y = rng.random(n) < 0.1
    x = rng.normal(size=(n, d)) * rng.uniform(0.2, 3.0, d) + y[:, None] * rng.normal(0, 0.8, d)
    return x.astype(np.float32), y


def test_our_solver_minimises_sklearns_objective():
    """sklearn's tightly converged optimum is a stationary point of `balanced_logistic_loss` (so the
    objectives agree), and our solver reaches the same optimum, with and without its warm start."""
    x, y = overlapping()
    reference = LogisticRegression(class_weight="balanced", C=1.0, tol=1e-10, max_iter=10_000).fit(
        x.astype(np.float64), y
    )
    w = torch.tensor(reference.coef_[0], requires_grad=True)
    b = torch.tensor(reference.intercept_[0], requires_grad=True)
    loss = balanced_logistic_loss(
        torch.as_tensor(x, dtype=torch.float64), torch.as_tensor(y, dtype=torch.float64), w, b
    )
    gradients = torch.autograd.grad(loss, [w, b])
    assert max(float(g.abs().max()) for g in gradients) < 1e-7
    for warm_start_tokens in (30_000, 1_000):  # 6,000 tokens: no warm start; then a warm start on 1,000
        weight, bias, _ = fit_logistic_torch(x, y, warm_start_tokens=warm_start_tokens, tol=1e-5, max_iter=500)
        np.testing.assert_allclose(weight, reference.coef_[0], atol=2e-3 * np.abs(reference.coef_[0]).max())
        assert abs(bias - reference.intercept_[0]) < 2e-3 * max(1.0, abs(reference.intercept_[0]))
    classifier = fit_confidence_classifier(x, y, solver="torch", train_fraction=1.0, max_tokens=None)
    assert classifier.converged  # sklearn's criterion: every gradient entry <= 1e-4
    held_out = overlapping(seed=6)
    auc = lambda w, b: roc_auc_score(held_out[1], held_out[0] @ w + b)  # noqa: E731
    assert abs(auc(classifier.weight, classifier.bias) - auc(reference.coef_[0], reference.intercept_[0])) < 1e-3


@pytest.mark.parametrize("n, expected", [(10_000, 8_000), (30_000, 24_000), (50_000, 24_000)])
def test_the_code_protocol_caps_the_tokens_then_keeps_80_percent(monkeypatch, n, expected):
    """The public code caps the support tokens at 30,000 and then keeps its 80 % split (at most
    24,000 fitted), not min(80 %, 30,000)."""
    import iclsam.method.confidence as confidence

    seen = []

    class Recording(confidence.LogisticRegression):
        def fit(self, x, y):
            seen.append(len(y))
            return super().fit(x[:200], y[:200])

    monkeypatch.setattr(confidence, "LogisticRegression", Recording)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, 4)).astype(np.float32)
    y = x[:, 0] > 0
    confidence.fit_confidence_classifier(x, y)
    assert seen == [expected]
