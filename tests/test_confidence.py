import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from iclsam.confidence import ConfidenceClassifier, fit_confidence_classifier, support_tokens, token_labels
from iclsam.sam import ImageEmbedding


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
    assert x.shape == (2 * 32 * 64, 256) and y.shape == (2 * 32 * 64,)
    np.testing.assert_array_equal(x[:2048], emb.features[0, :, :32, :].flatten(1).T.numpy())
    assert 2 <= y.sum() <= 8
    with pytest.raises(ValueError, match="no background"):
        support_tokens([emb], [np.ones((128, 256), bool)], input_size=256)


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
