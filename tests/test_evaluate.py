"""`iclsam evaluate`: the protocol on a prepared folder, its tables, and the stored real-dev numbers."""

import json

import numpy as np
import pandas as pd
import pytest

from iclsam.cli import main
from iclsam.data.prepare import prepare_synthetic
from iclsam.pipeline.evaluate_folder import SUMMARY_COLUMNS, markdown_table, summarise


@pytest.fixture(scope="module")
def synthetic_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("prepared")
    prepare_synthetic(root, seed=0, n_support=4, n_query=3, tasks=("fundus_disc",))
    return root


def test_summary_is_the_mean_over_draws_and_queries():
    rng = np.random.default_rng(0)
    rows = [
        {"task": t, "m": m, "draw": d, "query": q, "variant": v, "dice": rng.random(), "icl": "features"}
        for t in ("b", "a")
        for m in (4, 1)
        for d in range(2)
        for q in range(3)
        for v in ("features", "iclsam")
    ]
    scores = pd.DataFrame(rows)
    summary = summarise(scores)
    assert list(summary.columns) == SUMMARY_COLUMNS and (summary["n"] == 6).all()
    for _, row in summary.iterrows():
        chosen = scores[(scores.task == row.task) & (scores.m == row.m) & (scores.variant == row.variant)]
        assert row.dice == pytest.approx(chosen["dice"].mean())
    assert list(dict.fromkeys(summary["variant"])) == ["features", "iclsam"]  # the scores' (paper's) order
    table = markdown_table(summary).splitlines()
    assert table[0] == "| task | ICL model | variant | m = 1 | m = 4 |" and len(table) == 2 + 4


def test_evaluate_command_writes_its_tables(synthetic_folder, tmp_path, capsys):
    out, scores = tmp_path / "summary.csv", tmp_path / "scores.csv"
    assert (
        main(
            [
                "evaluate",
                "--data",
                str(synthetic_folder),
                "--m",
                "1",
                "2",
                "--draws",
                "1",
                "--queries",
                "2",
                "--icl",
                "auto",
                "universeg",
                "--out",
                str(out),
                "--scores",
                str(scores),
            ]
        )
        == 0
    )
    summary, per_query = pd.read_csv(out), pd.read_csv(scores)
    assert list(summary.columns) == SUMMARY_COLUMNS and json.loads(out.with_suffix(".json").read_text())["m"] == [1, 2]
    assert set(summary["icl"]) == {"features", "universeg"} and (summary["n"] == 2).all()
    assert {"universeg", "universeg+conf", "features", "iclsam", "sam+gt"} <= set(summary["variant"])
    pd.testing.assert_frame_equal(summarise(per_query), summary, check_dtype=False)
    printed = capsys.readouterr()
    assert "| fundus_disc | features | iclsam |" in printed.out and "training-free" in printed.err


def test_evaluate_command_bad_input_is_one_line(tmp_path, synthetic_folder, capsys):
    assert main(["evaluate", "--data", str(tmp_path / "absent")]) == 2
    assert "absent" in capsys.readouterr().err
    assert main(["evaluate", "--data", str(synthetic_folder), "--tasks", "liver"]) == 2
    assert "liver" in capsys.readouterr().err


@pytest.mark.slow  # ~35 s; the weak-context stage runs in test_notebooks
def test_weak_context_with_masks_is_the_plain_protocol(synthetic_folder, tmp_path):
    """--annotation: the mask-annotated rows are the plain run's, bit for bit; boxes give other
    support masks, whose Dice with the truth is recorded."""
    plain, weak = tmp_path / "plain.csv", tmp_path / "weak.csv"
    common = ["evaluate", "--data", str(synthetic_folder), "--m", "1", "2", "--draws", "1", "--queries", "2"]
    assert main([*common, "--scores", str(plain)]) == 0
    assert main([*common, "--annotation", "mask", "box", "--scores", str(weak), "--out", str(tmp_path / "s.csv")]) == 0
    plain, weak = pd.read_csv(plain), pd.read_csv(weak)
    masks = weak[weak["annotation"] == "mask"]
    pd.testing.assert_frame_equal(masks[list(plain.columns)].reset_index(drop=True), plain)
    assert (masks["support_dice"] == 1.0).all()
    boxes = weak[weak["annotation"] == "box"]
    assert len(boxes) == len(plain) and boxes["support_dice"].between(0.5, 1.0).all()
    summary = pd.read_csv(tmp_path / "s.csv")
    assert list(summary.columns) == [*SUMMARY_COLUMNS, "annotation"] and set(summary["annotation"]) == {"mask", "box"}
