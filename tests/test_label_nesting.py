"""Nested labels found without being told (issue 42, item 14): a label that every support map shows
enclosed by another (a cup in a disc rim, a core in its oedema) is nested in it; rings and cores
built by hand, the result the same as with `nested=` given, and the run's record saying so."""

from __future__ import annotations

import json

import numpy as np
from conftest import ellipse
from PIL import Image

from iclsam.cli import main
from iclsam.method.label_maps import enclosed_labels


def rim_and_cup(centre=(30, 32), shape=(64, 64), outer=18, inner=8):
    """A label map: 1 = the rim (a disc less its cup), 2 = the cup inside it."""
    labels = np.zeros(shape, np.uint8)
    labels[ellipse(shape, centre, (outer, outer))] = 1
    labels[ellipse(shape, centre, (inner, inner))] = 2
    return labels


def test_a_core_inside_a_ring_is_nested_and_labels_side_by_side_are_not():
    assert enclosed_labels([rim_and_cup(), rim_and_cup((34, 30))], [1, 2]) == {2: 1}
    side = np.zeros((40, 60), np.uint8)
    side[10:30, 5:25], side[10:30, 25:45] = 1, 2  # touching, neither inside the other
    assert enclosed_labels([side], [1, 2]) == {}
    broken = rim_and_cup()
    broken[30:34, 30:] = np.where(broken[30:34, 30:] == 1, 0, broken[30:34, 30:])  # the cup reaches outside
    assert enclosed_labels([rim_and_cup(), broken], [1, 2]) == {}  # not enclosed in every map
    layered = rim_and_cup(outer=24, inner=14)
    layered[ellipse(layered.shape, (30, 32), (5, 5))] = 3  # 3 in 2 in 1: one level, the innermost pair
    assert enclosed_labels([layered], [1, 2, 3]) == {3: 2}


def fundus_case(seed: int, shape=(80, 80)):
    rng = np.random.default_rng(seed)
    centre = (int(rng.integers(32, 48)), int(rng.integers(32, 48)))
    labels = rim_and_cup(centre, shape, outer=20, inner=9)
    image = 0.3 + 0.3 * (labels > 0) + 0.3 * (labels == 2) + 0.03 * rng.standard_normal(shape)
    return (255 * image.clip(0, 1)).astype(np.uint8), labels


def test_an_enclosed_label_is_segmented_as_if_nested_were_given(features_model, tmp_path):
    cases = [fundus_case(s) for s in range(4)]
    images, maps = [x for x, _ in cases[:3]], [y for _, y in cases[:3]]
    query, truth = cases[3]
    found = features_model.predict(images, maps, query, truth)
    given = features_model.predict(images, maps, query, truth, nested={2: 1})
    flat = features_model.predict(images, maps, query, truth, nested={})
    assert found.nested == {2: 1} and flat.nested == {}
    assert np.array_equal(found.labels, given.labels) and found.dice == given.dice
    for folder, i in [("support", 0), ("support", 1), ("support", 2), ("query", 3)]:
        (tmp_path / folder).mkdir(exist_ok=True)
        (tmp_path / f"{folder}_masks").mkdir(exist_ok=True)
        Image.fromarray(cases[i][0]).save(tmp_path / folder / f"c{i}.png")
        Image.fromarray(cases[i][1]).save(tmp_path / f"{folder}_masks" / f"c{i}.png")
    args = ["segment", "--icl", "features", "--support-images", str(tmp_path / "support")]
    args += ["--support-masks", str(tmp_path / "support_masks"), "--query", str(tmp_path / "query")]
    assert main([*args, "--out", str(tmp_path / "out")]) == 0
    record = json.loads((tmp_path / "out" / "run.json").read_text())
    assert record["nested"] == {"2": 1} and record["nested_from"].startswith("found")
    assert np.array_equal(np.asarray(Image.open(tmp_path / "out" / "c3.png")), found.labels)
    assert main([*args, "--nested", "none", "--out", str(tmp_path / "flat")]) == 0
    assert json.loads((tmp_path / "flat" / "run.json").read_text())["nested"] == {}
