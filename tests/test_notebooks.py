"""Every pipeline notebook, executed in order through papermill with tiny parameters (two synthetic
tasks, m in {1, 2}, one draw, one query): what `dvc repro` runs, at a size CI can afford."""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from iclsam.pipeline.notebook import run_notebook

ROOT = Path(__file__).resolve().parents[1]
STAGES = ["prepare", "split", "sample_support", "grid", "ablation", "sensitivity", "weak_context", "volumes", "report"]


def tiny_params() -> dict:
    params = yaml.safe_load((ROOT / "profiles" / "default.yaml").read_text())
    params["tasks"] = ["fundus_disc", "ct_kidney"]
    params["prepare"].update(n_support=3, n_query=2)
    params["sample_support"].update(sizes=[1, 2], draws=1)
    params["grid"].update(max_queries=1)
    params["sensitivity"].update(
        m=1, draws=1, max_queries=1, values={"a": [0.0, 0.5], "b": [0.3], "tau": [0.1], "beta": [0.0, 2.0]}
    )
    # clicks cost ~35 decoder prompts each (iclsam.method.densify): the click path is tested in test_densify
    params["weak_context"].update(tasks=["ct_kidney"], sizes=None, draws=1, max_queries=1, annotations=["mask", "box"])
    params["report"].update(examples=1)
    # the volume method is tested in test_volumes; here the stage runs (and reads its parameters) cheaply
    params["volumes"].update(slices=[1], methods=["interpolation"], context_volumes=0)
    return params


@pytest.fixture(scope="module")
def pipeline_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("pipeline")
    (work / "params.yaml").write_text(yaml.safe_dump(tiny_params()))
    shutil.copy(ROOT / "dvc.yaml", work / "dvc.yaml")  # each stage checks that it lists what it read
    for stage in STAGES:
        tasks = tiny_params()["tasks"] if stage == "grid" else [None]
        for task in tasks:
            parameters = {} if task is None else {"task": task}
            name = stage if task is None else f"grid-{task}"
            run_notebook(ROOT / "notebooks" / f"{stage}.py", work / "build" / f"{name}.ipynb", parameters, cwd=work)
    return work


def test_every_stage_produces_its_outputs(pipeline_run):
    work = pipeline_run
    for path in [
        "data/splits.csv",
        "data/draws.csv",
        "results/grid/fundus_disc.csv",
        "results/grid/ct_kidney.json",
        "results/grid/ct_kidney.example.npz",
        "results/sensitivity.csv",
        "tables/table1_dice.md",
        "tables/table4_5_ablation.csv",
        "tables/table2_ablation_by_dataset.md",
        "tables/table6_assd.csv",
        "tables/icl_backends.md",
        "tables/gt_box_upper_bound.md",
        "figures/data_examples.png",
        "figures/figure3_dice_vs_m.png",
        "figures/figure4_5_refinement.png",
        "figures/figure6_sensitivity.png",
        "results/weak_context.csv",
        "tables/weak_context.md",
        "figures/weak_context.png",
        "tables/volumes.md",
        "metrics.json",
    ]:
        assert (work / path).is_file(), path


def test_examples_hold_every_icl_model(pipeline_run):
    from iclsam.pipeline.protocol import load_examples

    examples = load_examples(pipeline_run / "results" / "grid" / "ct_kidney.example.npz", ["features", "universeg"])
    assert [e["prediction"].icl for e in examples] == ["features", "universeg"]
    assert "features" in examples[0]["task"] and "UniverSeg" in examples[1]["task"]


def test_dvc_plots_and_metrics_read_the_report(pipeline_run, tmp_path):
    """`dvc plots show` renders the Dice-vs-m curves declared under `plots:` in dvc.yaml (one line per
    task of params.yaml) and `dvc metrics show` reads the Dice in metrics.json."""
    dvc = Path(sys.executable).with_name("dvc")
    for name in ("results/plots", "metrics.json", "params.yaml"):
        source = pipeline_run / name
        (shutil.copytree if source.is_dir() else shutil.copy)(source, tmp_path / name)
    shutil.copy(ROOT / "dvc.yaml", tmp_path / "dvc.yaml")
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run([str(dvc), "init", "-q"], cwd=tmp_path, check=True)
    shown = json.loads(
        subprocess.run(
            [str(dvc), "plots", "show", "--json"], cwd=tmp_path, check=True, capture_output=True, text=True
        ).stdout
    )
    expected = pd.read_csv(pipeline_run / "results" / "plots" / "dice_vs_m_full_method.csv")
    full = next(v for k, v in shown["data"].items() if k.startswith("ICL-SAM (full method)"))
    values = full[0]["content"]["data"]["values"]
    assert {v["field"] for v in values} == set(tiny_params()["tasks"])
    for v in values:
        assert float(v["dvc_inferred_y_value"]) == expected.loc[expected["m"] == int(v["m"]), v["field"]].item()
    metrics = json.loads(
        subprocess.run(
            [str(dvc), "metrics", "show", "--json"], cwd=tmp_path, check=True, capture_output=True, text=True
        ).stdout
    )
    stored = json.loads((pipeline_run / "metrics.json").read_text())
    shown_metrics = next(iter(metrics.values()))["data"]["metrics.json"]["data"]
    assert shown_metrics["dice"] == stored["dice"]
    per_task = stored["dice"]["full_method_per_task"]
    assert set(per_task) == set(tiny_params()["tasks"])
    assert per_task["ct_kidney"]["m1"] == round(expected.loc[expected["m"] == 1, "ct_kidney"].item(), 4)


def test_tables_state_their_provenance_and_the_paper(pipeline_run):
    table = (pipeline_run / "tables" / "table1_dice.md").read_text()
    assert "SYNTHETIC" in table and "LiteMedSAM" in table and "Profile: default" in table
    assert "Not a paper reproduction" in table
    t1 = pd.read_csv(pipeline_run / "tables" / "table1_dice.csv")
    assert {"ours", "paper", "difference"} <= set(t1.columns)
    assert set(t1["icl"]) == {"universeg", "features"}  # every ICL model of the grid
    assert "| m = 1 | m = 2 |" in table and re.search(
        r"\| kits23 \| UniverSeg \| ICL alone \| UniverSeg \| [\d.]+ \(0\.449\) \|", table
    )
    kits = t1[(t1["dataset"] == "kits23") & (t1["model"] == "UniverSeg") & (t1["icl"] == "universeg") & (t1["m"] == 1)]
    assert kits["paper"].item() == pytest.approx(0.4487)
    assert kits["difference"].item() == pytest.approx(kits["ours"].item() - 0.4487)


def test_grid_scores_every_variant_and_both_backends(pipeline_run):
    scores = pd.read_csv(pipeline_run / "results" / "grid" / "fundus_disc.csv")
    assert set(scores["icl"]) == {"universeg", "features"}
    assert {"universeg", "universeg+conf", "sam", "sam+conf", "iclsam", "sam+gt", "features"} <= set(scores["variant"])
    assert sorted(scores["m"].unique()) == [1, 2]
    assert scores["dice"].between(0, 1).all()


def test_each_image_is_encoded_once(pipeline_run):
    metrics = json.loads((pipeline_run / "metrics.json").read_text())
    assert metrics["encoder_passes_per_image_and_backbone"] == 1.0
    assert metrics["encoder_passes"] == metrics["unique_images"]


@pytest.mark.slow  # ~30 s (two more notebook runs)
def test_a_rerun_gives_byte_identical_tables(pipeline_run, tmp_path):
    """ablation and report only render: from the grid's results alone (no data, no model run) they
    give the same tables and figures, byte for byte."""
    shutil.copytree(pipeline_run / "results", tmp_path / "results")
    shutil.copy(pipeline_run / "params.yaml", tmp_path / "params.yaml")
    for stage in ("ablation", "report"):
        run_notebook(ROOT / "notebooks" / f"{stage}.py", tmp_path / "build" / f"{stage}.ipynb", cwd=tmp_path)
    rendered = sorted((tmp_path / "tables").iterdir())  # every table of ablation and report
    assert {"table1_dice.md", "table4_5_ablation.csv", "table6_assd.md"} <= {t.name for t in rendered}
    for table in rendered:
        assert table.read_bytes() == (pipeline_run / "tables" / table.name).read_bytes(), table.name
    for figure in ("figure3_dice_vs_m.png", "figure4_5_refinement.png"):
        assert (tmp_path / "figures" / figure).read_bytes() == (pipeline_run / "figures" / figure).read_bytes()


def test_committed_example_notebook_is_its_source_executed():
    """ICL-SAM_example.ipynb (checked by nbval) must hold the cells of notebooks/ICL-SAM_example.py,
    so that editing the source without `make example` fails here."""
    import jupytext
    import nbformat

    source = jupytext.read(ROOT / "notebooks" / "ICL-SAM_example.py")
    executed = nbformat.read(ROOT / "ICL-SAM_example.ipynb", as_version=4)
    assert [(c.cell_type, c.source) for c in executed.cells] == [(c.cell_type, c.source) for c in source.cells]
    assert all(
        c.get("outputs") or c.cell_type != "code" or not c.source.strip() or "parameters" in c.metadata.get("tags", [])
        for c in executed.cells
    ), "a code cell of the committed notebook has no stored output"
