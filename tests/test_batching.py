"""The work shaped for a GPU (issue: batches of queries through UniverSeg, of images through SAM's
encoder), checked on the CPU against the one-at-a-time path: equal to float tolerance, since a
batch may sum in another order. On the CPU the default stays one at a time (measured faster there)."""

import numpy as np
import pytest
import torch

from iclsam import ICLSAM
from iclsam.method.sam import SamPredictor
from tests.conftest import ellipse, textured_image

SHAPE = (96, 128)


@pytest.fixture(scope="module")
def task():
    masks = [ellipse(SHAPE, (40 + 4 * i, 60 + 3 * i), (20, 28)) for i in range(3)]
    images = [textured_image(m, seed=40 + i) for i, m in enumerate(masks)]
    query_masks = [ellipse(SHAPE, (45 + 5 * k, 55 + 6 * k), (22 + k, 30)) for k in range(3)]
    queries = [textured_image(m, seed=60 + k) for k, m in enumerate(query_masks)]
    return images, masks, queries, query_masks


@pytest.fixture(scope="module")
def fresh():
    """A LiteMedSAM predictor of its own: its cache starts empty, so its images go through the encoder."""
    return SamPredictor("lite")


def test_encode_many_in_batches_equals_encode_one_at_a_time(task, lite, fresh):
    _, _, queries, _ = task
    batched = fresh
    embeddings = batched.encode_many(queries + [queries[0]], batch_size=2)
    assert batched.encoder_passes == 3  # the repeated image is encoded once
    for image, embedding in zip(queries + [queries[0]], embeddings):
        single = lite.encode(image)
        torch.testing.assert_close(embedding.features, single.features, rtol=1e-4, atol=1e-4)
        assert (embedding.original, embedding.resized, embedding.valid) == (
            single.original,
            single.resized,
            single.valid,
        )
    again = batched.encode_many(queries, batch_size=2)
    assert batched.encoder_passes == 3 and all(a is b for a, b in zip(again, embeddings[:3]))


@pytest.mark.parametrize("icl", [pytest.param("universeg", marks=pytest.mark.slow), "features"])  # universeg: ~35 s
def test_batched_queries_equal_one_at_a_time(task, features_model, fresh, icl):
    images, masks, queries, query_masks = task
    one = ICLSAM(sam=features_model.sam, icl=icl)
    # the queries' embeddings from encode_many, two batches for three queries
    batched = ICLSAM(sam=fresh, icl=icl, batch_queries=True, query_batch=2)
    expected = one.predict_many(images, masks, queries, query_masks)
    got = batched.predict_many(images, masks, queries, query_masks)
    for e, g in zip(expected, got):
        assert list(e.masks) == list(g.masks)
        for name in e.masks:
            agree = (e.masks[name] == g.masks[name]).mean()
            assert agree >= 0.999, (name, agree)
            assert abs(e.dice[name] - g.dice[name]) <= 2e-3, name
        np.testing.assert_allclose(g.confidence, e.confidence, atol=1e-4)


def test_universeg_batch_equals_single_queries(task, features_model):
    images, masks, queries, _ = task
    model = ICLSAM(sam=features_model.sam, icl="universeg")
    support = model.support_set(images, masks)
    prepared, classifier = model.icl_support(support), model.classifier(support)
    grids = [features_model.sam.encode(q) for q in queries]
    grids = [e.crop_valid(classifier.confidence_grid(e.features)) for e in grids]
    batch = model.icl_model.predict_batch(prepared, queries, grids, alpha=0.3)
    for query, grid, out in zip(queries, grids, batch):
        single = model.icl_model.predict(prepared, query, grid, alpha=0.3)
        torch.testing.assert_close(out.plain, single.plain, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(out.with_map, single.with_map, rtol=1e-4, atol=1e-5)
