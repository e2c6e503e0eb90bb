"""The fast paths give the same results, to the bit, as the plain way of doing the same work.

The plain way is written out below from the public building blocks, one query at a time: encode
every image, fit Eq. 2 on the support set, run UniverSeg twice (without and with Eq. 4), prompt SAM
without and with Eq. 3, fuse. The fast paths share the support set's work between queries (features,
the Eq. 2 fit, UniverSeg's support tensors), compute only the variants asked for, and the grid runs
through them."""

import numpy as np
import pandas as pd
import pytest
import torch

from iclsam import ICLSAM
from iclsam.common.metrics import dice
from iclsam.common.resampling import to_image_size
from iclsam.data.folder import open_task
from iclsam.method.confidence import fit_confidence_classifier, support_tokens
from iclsam.method.figure1 import BOX_CONFIDENCE_FROM_M
from iclsam.method.fusion import fuse, fusion_weight
from iclsam.method.prompts import boxes_from_components, boxes_from_pseudo_label
from iclsam.method.sam import decoder_confidence_bias
from iclsam.method.universeg import universeg_confidence_weight, universeg_image, universeg_label
from iclsam.pipeline.protocol import run_grid
from tests.conftest import ellipse, textured_image

SHAPE = (96, 128)


def plain_predict(model: ICLSAM, images, masks, query, truth) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Every variant of one query, the unshared way (no support-set reuse, both UniverSeg passes
    through the whole network)."""
    sam, m = model.sam, len(images)
    query_embedding = sam.encode(query)
    support_embeddings = [sam.encode(x) for x in images]
    classifier = fit_confidence_classifier(
        *support_tokens(support_embeddings, [y != 0 for y in masks], sam.input_size),
        solver=model.config.solver,
        seed=model.config.seed,
    )
    grid = classifier.confidence_grid(query_embedding.features)
    confidence = query_embedding.grid_to_image(grid)
    config = model.config
    gamma = fusion_weight(config.a, config.tau, m)
    out = {}
    if model.icl == "universeg":
        network, size, channel = model.icl_model.network, model.icl_model.size, model.icl_model.channel
        support = torch.stack([universeg_image(x, "support", channel, size) for x in images])[None]
        labels = torch.stack([universeg_label(y, size) for y in masks])[None]
        target = universeg_image(query, "query", channel, size)[None]
        map_at_size = to_image_size(query_embedding.crop_valid(grid), (size, size))[None, None]
        alpha = universeg_confidence_weight(config.b, config.tau, m)
        with torch.inference_mode():
            plain = torch.sigmoid(network(target, support, labels))[0, 0]
            probability = torch.sigmoid(network(target, support, labels, map_at_size, alpha))[0, 0]
        out["universeg"] = (to_image_size(plain, query.shape[:2]) > 0.5).numpy()
        out["universeg+conf"] = (to_image_size(probability, query.shape[:2]) > 0.5).numpy()
        pseudo_label = out["universeg+conf"]
    else:
        probability = query_embedding.crop_valid(grid)
        out["features"] = pseudo_label = (confidence > 0.5).numpy()
    boxes = boxes_from_pseudo_label(pseudo_label, config.box_min_area)
    assert len(boxes), "the test needs a non-empty pseudo-label"
    if config.box_confidence is not None and m >= BOX_CONFIDENCE_FROM_M:  # our refinement: the confident boxes only
        peaks = [confidence.numpy()[y0 : y1 + 1, x0 : x1 + 1].max() for x0, y0, x1, y1 in boxes]
        keep = [p >= config.box_confidence for p in peaks]
        boxes = boxes[keep] if any(keep) else boxes[[int(np.argmax(peaks))]]
    plain_logits = sam.decode(query_embedding, boxes).amax(0)
    out["sam"] = (plain_logits > 0).numpy()
    steered = sam.decode(
        query_embedding, boxes, decoder_confidence_bias(grid, query_embedding.valid, config.beta)
    ).amax(0)
    out["sam+conf"] = (steered > 0).numpy()
    steer = model.sam_steering  # the model's setting: steered SAM (Eq. 3) or stock SAM in Eq. 1
    out["iclsam"] = (fuse(steered if steer else plain_logits, probability, gamma) > 0).numpy()
    out["sam+gt"] = (sam.decode(query_embedding, boxes_from_components(truth)).amax(0) > 0).numpy()
    return out, confidence.numpy()


@pytest.fixture(scope="module")
def task():
    masks = [ellipse(SHAPE, (40 + 4 * i, 60 + 3 * i), (20, 28)) for i in range(4)]
    images = [textured_image(m, seed=i) for i, m in enumerate(masks)]
    query_masks = [ellipse(SHAPE, (45 + 5 * k, 55 + 6 * k), (22 + k, 30)) for k in range(3)]
    queries = [textured_image(m, seed=20 + k) for k, m in enumerate(query_masks)]
    return images, masks, queries, query_masks


@pytest.fixture(scope="module", params=[pytest.param("universeg", marks=pytest.mark.slow), "features"])
def model(request, features_model):
    return features_model if request.param == "features" else ICLSAM(sam=features_model.sam, icl="universeg")


def test_shared_support_work_changes_no_result(model, task):
    images, masks, queries, query_masks = task
    fits_before = model.classifier_fits
    predictions = model.predict_many(images, masks, queries, query_masks)
    assert model.classifier_fits - fits_before <= 1  # one Eq. 2 fit for the three queries
    for prediction, query, truth in zip(predictions, queries, query_masks):
        expected, confidence = plain_predict(model, images, masks, query, truth)
        assert list(prediction.masks) == list(model.variants()) == list(expected)
        for name, mask in expected.items():
            np.testing.assert_array_equal(prediction.masks[name], mask, err_msg=name)
        np.testing.assert_array_equal(prediction.confidence, confidence)


def test_each_variant_alone_equals_it_in_the_full_set(model, task):
    images, masks, queries, query_masks = task
    full = model.predict(images, masks, queries[0], query_masks[0])
    for name in model.variants():
        alone = model.predict(images, masks, queries[0], query_masks[0], variants=[name])
        assert list(alone.masks) == [name]
        np.testing.assert_array_equal(alone.masks[name], full.masks[name], err_msg=name)
        assert alone.dice[name] == full.dice[name]
    stock = model.predict(images, masks, queries[0], variants=[model.variants()[0]])
    if model.icl == "universeg":  # UniverSeg alone needs no SAM at all
        assert stock.confidence is None and stock.classifier is None


def test_unknown_or_impossible_variants_are_clear_errors(model, task):
    images, masks, queries, _ = task
    with pytest.raises(ValueError, match="unknown variant"):
        model.predict(images, masks, queries[0], variants=["medsam"])
    with pytest.raises(ValueError, match="needs the query mask"):
        model.predict(images, masks, queries[0], variants=["sam+gt"])
    with pytest.raises(ValueError, match="2 query images but 1 query masks"):
        model.predict_many(images, masks, queries[:2], [None])


@pytest.mark.slow  # ~25 s; shared support work: test_shared_support_work_changes_no_result
def test_the_grid_equals_one_plain_prediction_per_query(tmp_path, task):
    """run_grid (support sets prepared once per draw) scores what the plain way scores."""
    images, masks, queries, query_masks = task
    from PIL import Image

    root = tmp_path / "toy"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    ids = [f"s{i}" for i in range(len(images))] + [f"q{k}" for k in range(len(queries))]
    for name, x, y in zip(ids, images + queries, masks + query_masks):
        Image.fromarray(x).save(root / "images" / f"{name}.png")
        Image.fromarray((y * 255).astype(np.uint8)).save(root / "masks" / f"{name}.png")
    pd.DataFrame({"id": ids, "case": ids, "split": ["support"] * 4 + ["query"] * 3}).to_csv(
        root / "meta.csv", index=False
    )
    task_on_disk = open_task(root)
    draws = pd.DataFrame(
        [
            {"task": "toy", "m": m, "draw": d, "rank": r, "id": f"s{i}"}
            for m, d, members in [(2, 0, [0, 1]), (2, 1, [2, 3]), (3, 0, [1, 2, 3])]
            for r, i in enumerate(members)
        ]
    )
    model = ICLSAM(icl="universeg")
    scores = run_grid(model, task_on_disk, draws, ["q0", "q1", "q2"], with_assd=False)
    assert model.classifier_fits == 3  # one per support set, not one per query
    for (m, draw), group in draws.groupby(["m", "draw"]):
        support = [task_on_disk.load(i) for i in group.sort_values("rank")["id"]]
        for query in ["q0", "q1", "q2"]:
            image, truth = task_on_disk.load(query)
            expected, _ = plain_predict(
                ICLSAM(sam=model.sam, icl="universeg"), [x for x, _ in support], [y for _, y in support], image, truth
            )
            got = scores[(scores.m == m) & (scores.draw == draw) & (scores["query"] == query)].set_index("variant")[
                "dice"
            ]
            assert got.to_dict() == {name: dice(mask, truth) for name, mask in expected.items()}
