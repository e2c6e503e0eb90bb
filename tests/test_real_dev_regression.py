"""The real-dev numbers docs/real-images.md shows (benchmarks/real_dev/, made by `make real-dev`) cannot fall
unnoticed: a slice of them (m = 4, the first draw and the first query of each set; the rows are
deterministic, so a few suffice) is re-run with the default model and through `iclsam segment`, and
every variant must stay within 0.03 of the stored per-query Dice on the same rows."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from iclsam import ICLSAM
from iclsam.cli import main
from iclsam.data.folder import open_tasks
from iclsam.pipeline.protocol import run_grid, task_protocol
from tests.conftest import REAL_DEV, needs_real_dev

pytestmark = needs_real_dev
STORED = Path(__file__).resolve().parents[1] / "benchmarks" / "real_dev"
QUERIES, SIZES, DRAWS, TOLERANCE = 1, [4], 1, 0.03


def stored_scores(icl: str) -> pd.DataFrame:
    scores = pd.read_csv(STORED / "scores.csv", dtype={"query": str})
    settings = pd.read_json(STORED / "summary.json", typ="series")
    assert settings["draws"] >= DRAWS and set(SIZES) <= set(settings["m"])
    return scores[scores["icl"] == icl], settings


@pytest.mark.slow  # ~80 s (30 encodings); test_iclsam_segment_keeps_its_stored_real_dev_dice stays in make test
def test_the_default_model_keeps_its_stored_real_dev_dice(lite, report):
    model = ICLSAM(sam=lite)
    stored, settings = stored_scores(model.icl)
    for task in open_tasks(REAL_DEV):
        sets, queries = task_protocol(task, settings["m"], settings["draws"], settings["queries"], settings["seed"])
        chosen = sets[sets["m"].isin(SIZES) & (sets["draw"] < DRAWS)]
        scores = run_grid(model, task, chosen, queries[:QUERIES], with_assd=False)
        key = ["m", "draw", "query", "variant"]
        merged = scores.merge(stored[stored["task"] == task.name], on=key, suffixes=("", "_stored"))
        assert len(merged) == len(scores), f"{task.name}: stored rows missing for the slice"
        drop = merged.groupby("variant")[["dice", "dice_stored"]].mean()
        report(
            f"{task.name}: slice mean Dice now / stored: "
            + ", ".join(f"{v} {r.dice:.3f}/{r.dice_stored:.3f}" for v, r in drop.iterrows())
        )
        fallen = drop[drop["dice"] < drop["dice_stored"] - TOLERANCE]
        assert fallen.empty, f"{task.name}: Dice fell by more than {TOLERANCE}:\n{fallen}"


def test_iclsam_segment_keeps_its_stored_real_dev_dice(tmp_path):
    stored, settings = stored_scores("features")
    task = next(t for t in open_tasks(REAL_DEV) if t.name == "ph2-lesion")
    sets, queries = task_protocol(task, settings["m"], settings["draws"], settings["queries"], settings["seed"])
    support = sets[(sets["m"] == 4) & (sets["draw"] == 0)].sort_values("rank")["id"]
    for folder, ids in (("support", support), ("query", queries[:QUERIES])):
        for image_id in ids:
            for kind in ("images", "masks"):
                target = tmp_path / f"{folder}_{kind}" / f"{image_id}.png"
                target.parent.mkdir(exist_ok=True)
                target.symlink_to(REAL_DEV / task.name / kind / f"{image_id}.png")
    assert (
        main(
            [
                "segment",
                "--support-images",
                str(tmp_path / "support_images"),
                "--support-masks",
                str(tmp_path / "support_masks"),
                "--query",
                str(tmp_path / "query_images"),
                "--query-masks",
                str(tmp_path / "query_masks"),
                "--out",
                str(tmp_path / "out"),
            ]
        )
        == 0
    )
    written = pd.read_csv(tmp_path / "out" / "dice.csv")
    expected = stored[
        (stored["task"] == task.name) & (stored["m"] == 4) & (stored["draw"] == 0) & (stored["variant"] == "iclsam")
    ].set_index("query")["dice"]
    now = written.assign(query=written["query"].str.removesuffix(".png")).set_index("query")["iclsam"]
    assert np.mean(now) >= np.mean(expected.loc[now.index]) - TOLERANCE
