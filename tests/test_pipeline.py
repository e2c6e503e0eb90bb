import json
import shutil

import numpy as np
import pytest
import torch

from iclsam import ICLSAM
from iclsam.method.universeg import (
    SHIPPED_UNIVERSEG,
    WEIGHTS_DIR,
    UniverSeg,
    init_universeg_weights,
    load_shipped_universeg,
)
from tests.conftest import ellipse, textured_image

SHAPE = (120, 160)


def universeg_file(directory, output_bias: float):
    """A random-init official-size UniverSeg whose output is pushed to one side by its bias
    (+1: the pseudo-label covers most of the image, -20: it is empty)."""
    torch.manual_seed(0)
    net = init_universeg_weights(UniverSeg())
    state = net.state_dict()
    state["out_conv.conv.bias"] += output_bias
    path = directory / f"universeg_{output_bias:+.0f}.pt"
    torch.save(state, path)
    return path


@pytest.fixture(scope="module")
def universeg_full(tmp_path_factory):
    return universeg_file(tmp_path_factory.mktemp("weights"), 1.0)


@pytest.fixture(scope="module")
def task():
    masks = [ellipse(SHAPE, (50 + 5 * i, 70 + 3 * i), (25, 35)) for i in range(3)]
    images = [textured_image(m, seed=i) for i, m in enumerate(masks)]
    query_mask = ellipse(SHAPE, (60, 80), (30, 40))
    return images, masks, textured_image(query_mask, seed=9), query_mask


def test_one_call_returns_every_variant(universeg_full, task, lite):
    prediction = ICLSAM(sam=lite, universeg_checkpoint=universeg_full).predict(*task)
    assert list(prediction.masks) == ["universeg", "universeg+conf", "sam", "sam+conf", "iclsam", "sam+gt"]
    for mask in prediction.masks.values():
        assert mask.shape == SHAPE and mask.dtype == bool
    assert prediction.confidence.shape == SHAPE
    assert prediction.confidence.min() >= 0 and prediction.confidence.max() <= 1
    assert prediction.boxes.shape[1] == 4 and len(prediction.boxes) >= 1
    np.testing.assert_array_equal(prediction.gt_boxes, [[40, 30, 120, 90]])
    assert set(prediction.dice) == set(prediction.masks)
    # the map steers SAM away from the whole-image box towards the target
    assert prediction.dice["sam+conf"] > prediction.dice["sam"] + 0.2
    assert prediction.dice["sam+gt"] > 0.9


@pytest.mark.parametrize(
    "constant, same",
    [("b", ("universeg", "universeg+conf")), ("beta", ("sam", "sam+conf")), ("a", ("sam+conf", "iclsam"))],
)
def test_switching_a_part_off_gives_the_variant_before_it(universeg_full, task, lite, constant, same):
    on = ICLSAM(sam=lite, universeg_checkpoint=universeg_full).predict(*task)
    off = ICLSAM(sam=lite, universeg_checkpoint=universeg_full, **{constant: 0.0}).predict(*task)
    np.testing.assert_array_equal(off.masks[same[0]], off.masks[same[1]])
    assert not np.array_equal(on.masks[same[0]], on.masks[same[1]])


def test_predictions_are_deterministic(universeg_full, task):
    model = ICLSAM(universeg_checkpoint=universeg_full)
    first, second = model.predict(*task), ICLSAM(universeg_checkpoint=universeg_full).predict(*task)
    for name in first.masks:
        np.testing.assert_array_equal(first.masks[name], second.masks[name])
    np.testing.assert_array_equal(first.confidence, second.confidence)


def test_an_empty_pseudo_label_prompts_nothing(tmp_path, task, lite):
    prediction = ICLSAM(sam=lite, universeg_checkpoint=universeg_file(tmp_path, -20.0)).predict(*task)
    assert len(prediction.boxes) == 0
    assert any("not prompted" in note for note in prediction.notes)
    for name in ("universeg+conf", "sam", "sam+conf", "iclsam"):
        assert not prediction.masks[name].any()
    assert prediction.masks["sam+gt"].any()


def test_features_backend_needs_no_icl_weights(features_model, task):
    prediction = features_model.predict(*task)
    assert list(prediction.masks) == ["features", "sam", "sam+conf", "iclsam", "sam+gt"]
    assert any("Eq. 4" in note for note in prediction.notes)
    assert prediction.dice["features"] > 0.8 and prediction.dice["iclsam"] > 0.8
    assert "training-free" in features_model.icl_weights


def test_auto_takes_the_default_icl_model_and_a_checkpoint_selects_universeg(features_model):
    from iclsam.method.icl import DEFAULT_ICL

    default = ICLSAM(sam=features_model.sam)
    assert default.icl == DEFAULT_ICL and "training-free" in default.icl_weights
    shipped = ICLSAM(sam=features_model.sam, universeg_checkpoint="shipped")
    assert shipped.icl == "universeg" and SHIPPED_UNIVERSEG in shipped.icl_weights


def test_without_a_checkpoint_our_shipped_weights_are_used(task):
    model = ICLSAM(icl="universeg")
    card = json.loads((WEIGHTS_DIR / f"{SHIPPED_UNIVERSEG}.json").read_text())
    assert SHIPPED_UNIVERSEG in model.icl_weights and card["sha256"][:12] in model.icl_weights
    assert model.icl_model.size == card["config"]["size"]
    assert model.icl_model.network.encoder_widths == tuple(card["config"]["encoder_widths"])
    prediction = model.predict(*task)
    assert prediction.dice["universeg"] > 0.5  # a bright ellipse on a dark background, 3 examples
    with pytest.raises(ValueError, match="icl must be"):
        ICLSAM(icl="neuralizer")


def test_damaged_shipped_weights_are_refused(tmp_path):
    for suffix in (".pt", ".json"):
        shutil.copy(WEIGHTS_DIR / f"{SHIPPED_UNIVERSEG}{suffix}", tmp_path / f"{SHIPPED_UNIVERSEG}{suffix}")
    load_shipped_universeg(directory=tmp_path)
    state = torch.load(tmp_path / f"{SHIPPED_UNIVERSEG}.pt", weights_only=True)
    state["out_conv.conv.bias"] += 1
    torch.save(state, tmp_path / f"{SHIPPED_UNIVERSEG}.pt")
    with pytest.raises(ValueError, match="sha256 differs"):
        load_shipped_universeg(directory=tmp_path)
    (tmp_path / f"{SHIPPED_UNIVERSEG}.json").unlink()
    with pytest.raises(FileNotFoundError, match="shipped UniverSeg weights not found"):
        load_shipped_universeg(directory=tmp_path)


def three_valued(mask):
    """0 background, 255 target, and a 128 band: what a soft or multi-label mask looks like."""
    out = np.where(mask, 255, 0).astype(np.uint8)
    out[:10] = 128
    return out


def bad(task, **change):
    images, masks, query, query_mask = task
    args = dict(support_images=list(images), support_masks=list(masks), query_image=query, query_mask=query_mask)
    args.update(change)
    return args


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda t: dict(support_images=[], support_masks=[]), "support set is empty"),
        (lambda t: dict(support_masks=t[1][:2]), "3 images but 2 masks"),
        (
            lambda t: dict(support_masks=[t[1][0][:100]] + t[1][1:]),
            r"support 0: mask is 100 x 160 but its image is 120 x 160",
        ),
        (lambda t: dict(support_masks=[np.zeros(SHAPE, np.uint8)] + t[1][1:]), "support 0: mask is empty"),
        (
            lambda t: dict(support_masks=[three_valued(t[1][0])] + t[1][1:]),
            r"support 0: mask is not binary \(values 0, 128, 255",
        ),
        (
            lambda t: dict(support_masks=[t[1][0].astype(np.uint8) * np.arange(SHAPE[1], dtype=np.uint8)] + t[1][1:]),
            "not binary",
        ),
        (lambda t: dict(query_image=np.where(t[3], np.nan, 1.0)), "query image: image contains NaN"),
        (lambda t: dict(query_image=np.zeros((120, 160, 4))), r"query image: an image must be H x W or H x W x 3"),
        (lambda t: dict(query_mask=t[3][:, :100]), "query mask: mask is 120 x 100"),
        (lambda t: dict(support_images=[t[0][0].astype(float) * np.nan] + t[0][1:]), "support 0: image contains NaN"),
    ],
)
def test_bad_inputs_are_clear_errors(features_model, task, change, message):
    with pytest.raises(ValueError, match=message):
        features_model.predict(**bad(task, **change(task)))


def test_predict_many_checks_every_query_first_and_names_its_index(features_model, task):
    images, masks, query, query_mask = task
    fits = features_model.classifier_fits
    features_model.clear_support_sets()
    with pytest.raises(ValueError, match=r"query image 2: image contains NaN"):
        features_model.predict_many(images, masks, [query, query, np.where(query_mask, np.nan, 1.0)])
    assert features_model.classifier_fits == fits  # nothing was computed before the check


def test_a_very_thin_image_is_segmented_not_a_resize_error(features_model, task):
    images, masks, _, _ = task
    thin = np.random.default_rng(0).integers(0, 255, (8, 4200)).astype(np.uint8)
    prediction = features_model.predict(images, masks, thin, variants=["features"])
    assert prediction.masks["features"].shape == (8, 4200)


@pytest.mark.slow  # ~35 s; fusion="auto" is an option, not the default
def test_fusion_auto_takes_the_setting_best_on_held_out_support_images(features_model):
    """An independent leave-one-out: for each candidate (Eq. 3 on or off, gamma), paper-schedule
    models whose `a` gives exactly that gamma at m - 1 (and beta = 0 for SAM without the map: stock
    SAM, bit for bit) segment each support image from the others."""
    from iclsam.common.metrics import dice
    from iclsam.method.fusion import fusion_weight
    from iclsam.method.fusion_auto import FUSION_GAMMAS

    shape = (96, 128)
    masks = [ellipse(shape, (40 + 6 * i, 50 + 9 * i), (14 + 3 * i, 22)) for i in range(4)]
    images = [textured_image(m, seed=30 + i) for i, m in enumerate(masks)]
    query_mask = ellipse(shape, (52, 70), (18, 26))
    query = textured_image(query_mask, seed=41)
    auto = ICLSAM(sam=features_model.sam, icl="features", fusion="auto")
    prediction = auto.predict(images, masks, query, query_mask)
    m, tau, beta = len(images), auto.config.tau, auto.config.beta
    paper = fusion_weight(auto.config.a, tau, m)

    def scale(g, size):
        return g / (1 - np.exp(-tau * size))

    default = auto.sam_steering  # the features ICL model's default: stock SAM in Eq. 1 (sam_steering auto)
    assert default is False
    per_image = {}
    for steer, g in [(s, g) for s in (default, not default) for g in FUSION_GAMMAS] + [(default, paper)]:
        model = ICLSAM(
            sam=features_model.sam, icl="features", a=scale(g, m - 1), beta=beta if steer else 0.0, sam_steering=True
        )
        held_out = [
            model.predict(
                [x for i, x in enumerate(images) if i != k],
                [y for i, y in enumerate(masks) if i != k],
                images[k],
                variants=["iclsam"],
            ).masks["iclsam"]
            for k in range(m)
        ]
        per_image[steer, g] = np.array([dice(p, y) for p, y in zip(held_out, masks)])
    means = {k: v.mean() for k, v in per_image.items()}
    best = max(v for k, v in means.items() if k != (default, paper))
    ties = [k for k, v in means.items() if k != (default, paper) and v >= best - 1e-9]
    chosen = max(ties, key=lambda k: (k[0] == default, -abs(k[1] - paper)))
    gains = per_image[chosen] - per_image[default, paper]
    clear = gains.mean() > 0.01 and gains.mean() > gains.std(ddof=1) / np.sqrt(m)  # margin and standard error
    expected = chosen if clear else (default, paper)
    assert prediction.gamma == expected[1] and any("fusion auto" in n for n in prediction.notes)
    same = ICLSAM(
        sam=features_model.sam,
        icl="features",
        a=scale(expected[1], m),
        beta=beta if expected[0] else 0.0,
        sam_steering=True,
    )
    np.testing.assert_array_equal(prediction.masks["iclsam"], same.predict(images, masks, query).masks["iclsam"])


def test_sam_steering_in_the_full_method(features_model):
    """Eq. 1 fuses the ICL model with the steered SAM (Eq. 3) when sam_steering is on (the paper),
    with stock SAM when off; auto is off for the features ICL model (the map is the ICL model) and
    on for UniverSeg. Stock SAM is checked against beta = 0, where Eq. 3's steered decoder is
    bit-identical to stock SAM."""
    shape = (96, 128)
    masks = [ellipse(shape, (40 + 5 * i, 55 + 8 * i), (15 + 2 * i, 24)) for i in range(3)]
    images = [textured_image(m, seed=50 + i) for i, m in enumerate(masks)]
    query = textured_image(ellipse(shape, (50, 66), (18, 25)), seed=61)
    sam = features_model.sam

    def full(**kw):
        model = ICLSAM(sam=sam, icl="features", **kw)
        return model, model.predict(images, masks, query, variants=["iclsam", "sam", "sam+conf"])

    auto_model, auto = full()
    _, off = full(sam_steering=False)
    _, on = full(sam_steering=True)
    _, zero_beta = full(sam_steering=True, beta=0.0)
    assert auto_model.sam_steering is False and any("without the map" in n for n in auto.notes)
    np.testing.assert_array_equal(auto.masks["iclsam"], off.masks["iclsam"])
    np.testing.assert_array_equal(off.masks["iclsam"], zero_beta.masks["iclsam"])
    assert not np.array_equal(on.masks["iclsam"], off.masks["iclsam"])  # the steering matters here
    np.testing.assert_array_equal(on.masks["sam+conf"], off.masks["sam+conf"])  # the variant stays the steered SAM
    assert ICLSAM(sam=sam, icl="universeg").sam_steering is True
    with pytest.raises(ValueError, match="sam_steering"):
        ICLSAM(sam=sam, icl="features", sam_steering="yes")


@pytest.mark.parametrize("fusion, m", [("auto", 1), pytest.param("in-sample", 3, marks=pytest.mark.slow)])
def test_the_steering_chosen_in_sample_is_the_one_better_on_the_support_images(features_model, fusion, m):
    """fusion="auto" at m = 1 and fusion="in-sample" at any m. Independently: steered (beta) and
    stock (beta = 0) models segment each support image from the whole support set at the paper's
    gamma; the steering whose mean Dice is higher by more than `IN_SAMPLE_MARGIN` and more than the
    gain's standard error is taken, else the default (stock SAM for the features ICL model), and the query's result
    is that model's, bit for bit."""
    from iclsam.common.metrics import dice
    from iclsam.method.fusion import fusion_weight
    from iclsam.method.fusion_auto import IN_SAMPLE_MARGIN

    shape = (96, 128)
    masks = [ellipse(shape, (40 + 5 * i, 56 + 7 * i), (15 + 2 * i, 24)) for i in range(m)]
    images = [textured_image(y, seed=52 + i) for i, y in enumerate(masks)]
    query = textured_image(ellipse(shape, (50, 66), (18, 26)), seed=60)
    auto = ICLSAM(sam=features_model.sam, icl="features", fusion=fusion)
    prediction = auto.predict(images, masks, query)
    beta = auto.config.beta
    models = {
        s: ICLSAM(sam=features_model.sam, icl="features", beta=beta if s else 0.0, sam_steering=True)
        for s in (False, True)
    }
    in_sample = {
        s: np.array(
            [
                dice(model.predict(images, masks, x, variants=["iclsam"]).masks["iclsam"], y)
                for x, y in zip(images, masks)
            ]
        )
        for s, model in models.items()
    }
    gains = in_sample[True] - in_sample[False]
    error = gains.std(ddof=1) / np.sqrt(m) if m > 1 else 0.0
    chosen = bool(gains.mean() > IN_SAMPLE_MARGIN and gains.mean() > error)
    assert any("in-sample" in n for n in prediction.notes)
    assert prediction.gamma == fusion_weight(auto.config.a, auto.config.tau, m)
    expected = models[chosen].predict(images, masks, query).masks["iclsam"]
    np.testing.assert_array_equal(prediction.masks["iclsam"], expected)
