"""Weak context: support masks from boxes or points (ICLSAM.densify), and the weak annotations a
mask implies."""

import numpy as np
import pandas as pd
import pytest

from iclsam.common.metrics import dice
from iclsam.method.densify import boxes_from_mask, points_from_mask
from tests.conftest import ellipse, textured_image

SHAPE = (96, 128)


def two_blobs():
    mask = ellipse(SHAPE, (30, 35), (14, 20)) | ellipse(SHAPE, (65, 95), (12, 16))
    return textured_image(mask, seed=3), mask


def test_weak_annotations_of_a_mask():
    _, mask = two_blobs()
    boxes = boxes_from_mask(mask)
    assert len(boxes) == 2
    for x0, y0, x1, y1 in boxes:  # tight: the box's border rows and columns touch the mask
        inside = mask[y0 : y1 + 1, x0 : x1 + 1]
        assert inside[0].any() and inside[-1].any() and inside[:, 0].any() and inside[:, -1].any()
    points = points_from_mask(mask)
    assert sorted(map(tuple, points)) == [(35.0, 30.0), (95.0, 65.0)]  # the centres of the two ellipses


@pytest.mark.parametrize("kind", ["boxes", "points"])
def test_densify_recovers_the_masks(features_model, kind):
    image, mask = two_blobs()
    weak = boxes_from_mask(mask) if kind == "boxes" else points_from_mask(mask)
    (dense,) = features_model.densify([image], **{kind: [weak]})
    assert dense.shape == SHAPE and dense.dtype == bool
    assert dice(dense, mask) > 0.8


def test_densify_bad_input_is_a_clear_error(features_model):
    image, mask = two_blobs()
    with pytest.raises(ValueError, match="either boxes or points"):
        features_model.densify([image])
    with pytest.raises(ValueError, match="not inside"):
        features_model.densify([image], boxes=[[[0, 0, 200, 20]]])
    with pytest.raises(ValueError, match="no point"):
        features_model.densify([image], points=[np.zeros((0, 2))])
    with pytest.raises(ValueError, match="outside"):
        features_model.densify([image], points=[[[-3, 5]]])
    with pytest.raises(ValueError, match="2 annotation lists"):
        features_model.densify([image], boxes=[boxes_from_mask(mask)] * 2)
    with pytest.raises(ValueError, match="at least one support image"):
        features_model.densify([], boxes=[])


def test_weak_context_table_matches_an_independent_computation():
    from iclsam.method.densify import ANNOTATION_SECONDS
    from iclsam.pipeline.report import weak_context_table

    rng = np.random.default_rng(1)
    rows = [
        {
            "task": t,
            "m": m,
            "draw": d,
            "query": q,
            "variant": v,
            "annotation": a,
            "dice": rng.random(),
            "support_dice": rng.random(),
            "icl": "features",
        }
        for t in ("kidney", "disc")
        for m in (1, 4)
        for d in range(2)
        for q in range(3 if d else 2)
        for v in ("features", "iclsam")
        for a in ("point", "mask", "box")
    ]
    scores = pd.DataFrame(rows)
    table = weak_context_table(scores, ANNOTATION_SECONDS)
    assert list(table["task"].unique()) == ["disc", "kidney", "mean"]
    assert list(table["annotation"].unique()) == ["mask", "box", "point"]  # costliest first

    def expected(task, kind, m, column="dice"):
        draws = [
            np.mean(
                [
                    r[column]
                    for r in rows
                    if (r["task"], r["annotation"], r["m"], r["draw"], r["variant"]) == (task, kind, m, d, "iclsam")
                ]
            )
            for d in range(2)
        ]
        return float(np.mean(draws))

    for row in table.itertuples():
        tasks = ["disc", "kidney"] if row.task == "mean" else [row.task]
        ours = np.mean([expected(t, row.annotation, row.m) for t in tasks])
        masks = np.mean([expected(t, "mask", row.m) for t in tasks])
        assert row.ours == pytest.approx(ours) and row.of_mask == pytest.approx(ours / masks)
        assert row.support_dice == pytest.approx(
            np.mean([expected(t, row.annotation, row.m, "support_dice") for t in tasks])
        )
        assert row.seconds == row.m * ANNOTATION_SECONDS[row.annotation]


def test_click_boxes_are_centred_shaped_and_clipped():
    from iclsam.method.densify import POINT_BOX_ASPECTS, POINT_BOX_SCALES, click_boxes

    h, w = 200, 300
    boxes = click_boxes(150, 100, (h, w))
    assert boxes.shape == (len(POINT_BOX_SCALES) * len(POINT_BOX_ASPECTS), 4)
    small = boxes[: len(POINT_BOX_ASPECTS)]  # the smallest side fits inside the image: centred, unclipped
    width, height = small[:, 2] - small[:, 0], small[:, 3] - small[:, 1]
    assert np.allclose((small[:, 0] + small[:, 2]) / 2, 150, atol=1) and np.allclose(
        (small[:, 1] + small[:, 3]) / 2, 100, atol=1
    )
    assert np.allclose(width / np.maximum(height, 1), POINT_BOX_ASPECTS, rtol=0.35)
    assert np.allclose(np.sqrt(width * height), POINT_BOX_SCALES[0] * h, atol=2)
    corner = click_boxes(2, 197, (h, w))  # near a corner: every box is clipped to the image
    assert (corner[:, :2] >= 0).all() and (corner[:, 2] <= w - 1).all() and (corner[:, 3] <= h - 1).all()


def test_decoder_iou_estimate_is_the_stock_decoders(features_model):
    import torch

    sam = features_model.sam
    image, mask = two_blobs()
    embedding = sam.encode(image)
    boxes = boxes_from_mask(mask)
    logits, iou = sam.decode(embedding, boxes, with_iou=True)
    assert torch.equal(logits, sam.decode(embedding, boxes))
    sparse, dense = sam.model.prompt_encoder(points=None, boxes=sam.boxes_to_input(embedding, boxes), masks=None)
    with torch.inference_mode():  # segment-anything's own decoder forward, not ours
        _, stock = sam.model.mask_decoder(
            image_embeddings=embedding.features,
            image_pe=sam.model.prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
            multimask_output=False,
        )
    assert torch.equal(iou, stock[:, 0].cpu())
