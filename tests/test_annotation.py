"""Annotating a folder (issue 41): the simulated user's click rule on hand-built masks; the
annotator's corrections, context bound and bad input on synthetic images (SYNTHETIC, with
LiteMedSAM); a growing context needing fewer clicks than clicks alone; the command on a prepared
folder."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import ellipse

from iclsam.apps.annotation import Annotator, next_click, simulated_clicks
from iclsam.cli import main
from iclsam.common.metrics import dice


def test_the_next_click_goes_to_the_centre_of_the_largest_error():
    truth = np.zeros((40, 40), bool)
    truth[10:21, 5:16] = True  # 11 x 11, centre (x 10, y 15)
    assert next_click(np.zeros_like(truth), truth) == (10, 15, True)
    mask = truth.copy()
    mask[25:38, 22:35] = True  # a false region larger than anything missed
    mask[10:12, 5:16] = False
    assert next_click(mask, truth) == (28, 31, False)
    with pytest.raises(ValueError, match="no click"):
        next_click(truth, truth)


def case(seed: int, shape=(96, 96)):
    """A noisy image with one bright disc (the target) and a darker square (not the target)."""
    rng = np.random.default_rng(seed)
    target = ellipse(shape, (int(rng.integers(30, 60)), int(rng.integers(30, 60))), (14, 16))
    other = np.zeros(shape, bool)
    other[8:24, 70:88] = True
    image = 0.4 + 0.4 * target - 0.25 * other + 0.04 * rng.standard_normal(shape)
    return (255 * image.clip(0, 1)).astype(np.uint8), target


def test_clicks_add_and_remove_objects_and_the_context_keeps_its_bound(features_model):
    image, truth = case(0)
    annotator = Annotator(features_model, max_context=3)
    assert not annotator.propose(image).any()  # no context: nothing proposed
    y, x = np.argwhere(truth).mean(axis=0).round().astype(int)
    added = annotator.correct(positive=[(x, y)])
    assert dice(added, truth) > 0.8
    wrong = annotator.correct(positive=[(x, y), (78, 15)])  # a click on the square adds it
    assert wrong[15, 78] and not annotator.correct(positive=[(x, y), (78, 15)], negative=[(79, 16)])[15, 78]
    with pytest.raises(ValueError, match=r"click \(200, 5\) is outside the image"):
        annotator.correct(positive=[(200, 5)])
    annotator.accept(added)
    assert len(annotator.context) == 1
    for seed in range(1, 5):
        image, truth = case(seed)
        annotator.propose(image)
        annotator.accept(truth)
    assert len(annotator.context) == 3 and annotator.context[-1][1] is not None
    np.testing.assert_array_equal(annotator.context[-1][1], case(4)[1])  # the most recent stay
    with pytest.raises(ValueError, match="propose"):
        annotator.correct(positive=[(x, y)])
    annotator.propose(image)
    with pytest.raises(ValueError, match="accepted mask"):
        annotator.accept(np.ones((10, 10), bool))
    with pytest.raises(ValueError, match="accepted mask: mask is empty"):
        annotator.accept(np.zeros(image.shape[:2], bool))
    annotator.skip()  # left out of the context
    assert len(annotator.context) == 3 and annotator.current is None


def test_a_negative_click_never_removes_a_positive_clicks_object_and_takes_its_slivers(features_model, monkeypatch):
    """Where SAM finds no object under a negative click (forced: no candidates), the click's region
    goes only if no earlier positive click holds it; the pieces a cut leaves that are under a tenth
    of the largest go with it (`slivers`, against a count by hand)."""
    from iclsam.apps import annotation
    from iclsam.apps.annotation_clicks import slivers

    rest = np.zeros((30, 30), bool)
    rest[2:22, 2:22] = True  # 400 pixels
    rest[25:28, 25:28] = True  # 9 < 40: a sliver
    rest[25:28, 2:18] = True  # 48 >= 40: kept
    rest[0, 28] = True  # 1 pixel, but a positive click holds it
    assert slivers(rest, [(28, 0)]).sum() == 9 and slivers(rest[:22, :22], []).sum() == 0
    image, truth = case(0)
    annotator = Annotator(features_model)
    annotator.propose(image)
    square = np.zeros_like(truth)
    square[8:24, 70:88] = True
    annotator.current.proposal = truth | square  # a proposal with a false region
    monkeypatch.setattr(annotation, "edit_objects", lambda *args: ([], []))  # SAM finds nothing
    monkeypatch.setattr(annotation, "click_objects", lambda *args: ([], []))
    assert not annotator.correct(negative=[(80, 17)])[square].any()  # no positive click in it: it all goes
    held = annotator.correct(positive=[(78, 15)], negative=[(80, 17)])[square]  # a positive click holds it
    assert held.sum() == square.sum() - 13  # all but the 13 pixels within 2 of the negative click
    later = annotator.correct(clicks=[(80, 17, False), (78, 15, True)])[square]  # made before the positive one
    assert later.sum() == 13  # the region went; the later click adds back its own pixels only


def test_a_negative_click_trims_an_overgrown_region_and_clicks_apply_in_order(features_model):
    """A negative click in a band grown onto the target removes the band and keeps the target (an
    edit of the region's box); a later positive click's object keeps out an earlier negative click;
    `positive` then `negative` lists are the clicks in that order."""
    image, truth = case(0)
    annotator = Annotator(features_model)
    annotator.propose(image)
    ys, xs = np.nonzero(truth)
    band = np.zeros_like(truth)
    band[ys.min() : ys.max() + 1, xs.max() + 1 : xs.max() + 9] = True  # 8 px to the right of the disc
    annotator.current.proposal = truth | band
    trimmed = annotator.correct(clicks=[(xs.max() + 5, (ys.min() + ys.max()) // 2, False)])
    assert dice(trimmed, truth) > 0.9 > dice(truth | band, truth) and trimmed[truth].mean() > 0.9
    cx, cy = int(xs.mean()), int(ys.mean())
    annotator.current.proposal = truth.copy()
    back = annotator.correct(clicks=[(cx, cy, False), (cx + 3, cy, True)])
    assert back[cy, cx + 3] and not back[cy, cx]
    clicks = [(cx, cy, True), (cx + 30, cy, True), (cx + 8, cy, False)]
    np.testing.assert_array_equal(
        annotator.correct(positive=[(cx, cy), (cx + 30, cy)], negative=[(cx + 8, cy)]), annotator.correct(clicks=clicks)
    )


def test_an_unsure_proposal_is_withheld_and_the_image_starts_empty(features_model):
    """The proposal is shown when the confidence map's mean over it reaches `min_confidence` and
    withheld (the image starts empty, the mask kept aside) when it does not; the mean against a sum
    over the mask's pixels made independently."""
    from iclsam.apps.annotation import proposal_confidence

    rng = np.random.default_rng(0)
    confidence_map, mask = rng.random((20, 30)), np.zeros((20, 30), bool)
    mask[3:9, 4:20] = True
    assert proposal_confidence(confidence_map, mask) == pytest.approx(confidence_map[3:9, 4:20].sum() / 96)
    assert proposal_confidence(confidence_map, np.zeros_like(mask)) == 0.0
    assert proposal_confidence(None, mask) is None

    annotator = Annotator(features_model, [case(0)[0]], [case(0)[1]], min_confidence=0.0)
    image, truth = case(1)
    shown = annotator.propose(image)
    sure = annotator.current.confidence
    assert dice(shown, truth) > 0.8 and 0.5 < sure <= 1.0 and annotator.current.withheld is None
    annotator.min_confidence = sure  # reached: shown
    np.testing.assert_array_equal(annotator.propose(image), shown)
    annotator.min_confidence = np.nextafter(sure, 2.0)  # just missed: withheld
    assert not annotator.propose(image).any()
    np.testing.assert_array_equal(annotator.current.withheld, shown)
    y, x = np.argwhere(truth).mean(axis=0).round().astype(int)
    assert dice(annotator.correct(positive=[(x, y)]), truth) > 0.8  # clicks work from the empty start
    with pytest.raises(ValueError, match="min_confidence"):
        Annotator(features_model, min_confidence=1.5)


@pytest.mark.slow  # 30 s: ten annotated images
def test_a_growing_context_needs_fewer_clicks_than_clicks_alone(features_model):
    cases = [case(seed) for seed in range(10, 15)]
    growing = Annotator(features_model)
    grown = [simulated_clicks(growing, image, truth)["clicks"] for image, truth in cases]
    alone = [simulated_clicks(Annotator(features_model), image, truth)["clicks"] for image, truth in cases]
    assert sum(grown) < sum(alone) and min(alone) >= 1 and grown[1:] == [0] * 4


def test_evaluate_annotation_writes_a_row_per_task_method_and_image(tmp_path, capsys):
    from iclsam.data.prepare import prepare_synthetic

    prepare_synthetic(tmp_path / "prepared", seed=1, n_support=2, n_query=1, tasks=("fundus_disc",))
    out = tmp_path / "rows.csv"
    args = ["evaluate-annotation", "--data", str(tmp_path / "prepared"), "--images", "2", "--icl", "features"]
    assert main([*args, "--max-clicks", "2", "--out", str(out)]) == 0
    rows = pd.read_csv(out)
    assert list(rows.columns) == ["task", "method", "image", "clicks", "dice", "seconds"]
    assert sorted(rows["method"].unique()) == ["fixed-context", "growing-context", "sam-clicks"]
    assert len(rows) == 6 and (rows.groupby("method")["image"].apply(list).map(len) == 2).all()
    orders = rows.groupby("method")["image"].apply(list)
    assert orders["sam-clicks"] == orders["growing-context"] == orders["fixed-context"]  # the same order
    assert (rows["clicks"] <= 2).all() and "Clicks to Dice .90" in capsys.readouterr().out
    record = json.loads(out.with_suffix(".json").read_text())  # the run record names the ICL weights it ran
    assert record["icl"] == "features" and record["icl_weights"].startswith("none") and record["max_clicks"] == 2


def test_a_folder_is_annotated_with_masks_saved_at_once_and_resumed(features_model, tmp_path):
    """The graphical annotator's engine: masks written at accept, beside the folder (never in it);
    an unreadable image set aside; a NIfTI slice's mask keeps its affine; reopening resumes."""
    import nibabel as nib
    from PIL import Image

    from iclsam.apps.annotation_folder import FolderAnnotation

    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    truths = {}
    for seed in range(2):
        picture, truths[f"a{seed}"] = case(seed)
        Image.fromarray(picture).save(images / f"a{seed}.png")
    picture, truths["b"] = case(2)
    affine = np.diag([0.7, 0.7, 2.5, 1.0])
    affine[:3, 3] = [-10, 4, 30]
    nib.save(nib.Nifti1Image(picture.astype(np.int16)[..., None], affine), images / "b.nii.gz")
    (images / "a1x.png").write_bytes(b"not a picture")
    with pytest.raises(ValueError, match="is the image folder"):
        FolderAnnotation(features_model, images, images)
    session = FolderAnnotation(features_model, images, masks)
    assert session.next_index() == 0 and not session.open(0).any()  # no context: nothing proposed
    with pytest.raises(ValueError, match=r"the mask is 10 x 10 but .*a0\.png is 96 x 96"):
        session.accept(np.ones((10, 10), bool))
    assert not masks.exists()  # a refused mask writes nothing
    session.accept(truths["a0"])
    assert (np.asarray(Image.open(masks / "a0.png")) > 0).tolist() == truths["a0"].tolist()
    assert session.next_index(0) == 1 and dice(session.open(1), truths["a1"]) > 0.5  # proposed from the context
    session.skip()
    with pytest.raises(ValueError, match=r"a1x\.png: unreadable image"):
        session.open(2)
    assert session.next_index(1) == 3 and session.remaining() == [1, 3]
    session.open(3)
    session.accept(truths["b"])
    saved = nib.load(masks / "b.nii.gz")
    np.testing.assert_array_equal(saved.affine, nib.load(images / "b.nii.gz").affine)  # the image's own
    assert saved.shape == (96, 96, 1) and (saved.get_fdata()[..., 0] > 0).tolist() == truths["b"].tolist()
    nib.save(nib.Nifti1Image(np.zeros((12, 12, 3), np.int16), affine), images / "c.nii.gz")
    again = FolderAnnotation(features_model, images, masks)  # reopened: the two saved images are the context
    assert again.remaining() == [1, 2, 4] and len(again.annotator.context) == 2
    with pytest.raises(ValueError, match=r"c\.nii\.gz: the annotator takes 2-D images"):
        again.open(4)
