"""confidence_context="auto" (not in the paper): the context of Eq. 2's tokens chosen per support set
by leave-one-out, checked against the public API and against the rule it states."""

import numpy as np
import pytest
from conftest import ellipse, textured_image

from iclsam import ICLSAM, context_auto
from iclsam.context_auto import AUTO_CONTEXT, choose_context, held_out_dice
from iclsam.fusion_auto import clear_gain
from iclsam.metrics import dice


def test_a_gain_is_clear_above_the_margin_and_its_standard_error():
    assert clear_gain(np.array([0.02, 0.03, 0.025]), 0.01)
    assert not clear_gain(np.array([0.05, -0.04, 0.0]), 0.01)  # mean 0.003: below the margin
    gains = np.array([0.30, -0.20, 0.30, -0.20])  # mean 0.05 > margin, standard error 0.144
    assert gains.std(ddof=1) / 2 > gains.mean() and not clear_gain(gains, 0.01)
    assert clear_gain(np.array([0.02]), 0.01) and not clear_gain(np.array([0.005]), 0.01)


def _support(count=3):
    scenes = [ellipse((96, 96), (40 + 4 * i, 46), (16, 20)) for i in range(count)]
    return [textured_image(y, 20 + i) for i, y in enumerate(scenes)], scenes


def test_a_held_out_image_is_segmented_as_the_public_api_segments_it_from_the_others(features_model):
    images, masks = _support()
    model = ICLSAM(sam=features_model.sam, icl="features", confidence_context="auto")
    support = model.support_set(images, masks)
    for context in (1, AUTO_CONTEXT):
        plain = ICLSAM(sam=features_model.sam, icl="features", confidence_context=context)
        by_hand = plain.predict(images[1:], masks[1:], images[0], variants={"iclsam"})
        assert held_out_dice(model, support, 0, context) == pytest.approx(dice(by_hand.masks["iclsam"], masks[0]))


def test_the_context_is_chosen_only_on_a_clear_held_out_gain(features_model, monkeypatch):
    images, masks = _support()
    model = ICLSAM(sam=features_model.sam, icl="features", confidence_context="auto")
    scores = {}
    monkeypatch.setattr(context_auto, "held_out_dice", lambda _model, _support, k, context: scores[context][k])
    scores.update({1: [0.5, 0.6, 0.7], AUTO_CONTEXT: [0.55, 0.62, 0.74]})  # +0.05, +0.02, +0.04
    assert choose_context(model, model.support_set(images, masks)) == AUTO_CONTEXT
    scores.update({AUTO_CONTEXT: [0.9, 0.3, 0.7]})  # +0.4, -0.3, 0: a mean gain of 0.033, not consistent
    assert choose_context(model, model.support_set(images, masks)) == 1
    scores.clear()  # with one support image nothing is held out, and nothing is scored
    assert choose_context(model, model.support_set(images[:1], masks[:1])) == 1


def test_the_chosen_context_is_the_one_the_support_sets_map_is_fitted_on(features_model, monkeypatch):
    images, masks = _support()
    model = ICLSAM(sam=features_model.sam, icl="features", confidence_context="auto")
    for chosen, features in ((AUTO_CONTEXT, 512), (1, 256)):
        monkeypatch.setattr("iclsam.context_auto.choose_context", lambda _model, _support, k=chosen: k)
        model.clear_support_sets()
        classifier = model.classifier(model.support_set(images, masks))
        assert classifier.context == chosen and classifier.weight.shape == (features,)
