"""The grid stage on a Dask cluster (two local worker processes on the CPU) gives the scores of a
sequential run, row for row, encodes every image once, and leaves a consistent on-disk cache."""

import json
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

from iclsam.data.folder import open_task
from iclsam.data.prepare import prepare_synthetic
from iclsam.data.splits import draw_supports
from iclsam.method.sam.cache import image_key
from iclsam.pipeline.cluster import grid_stage
from iclsam.pipeline.grid import run_grid_stage

pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    root = tmp_path_factory.mktemp("cluster")
    prepare_synthetic(root / "prepared", seed=2, n_support=3, n_query=2, tasks=("ct_kidney",))
    task = open_task(root / "prepared" / "ct_kidney")
    support = task.meta.loc[task.meta["split"] == "support", "id"]
    draws = draw_supports("ct_kidney", support, [1, 2], 1, seed=0)
    queries = sorted(task.meta.loc[task.meta["split"] == "query", "id"])
    grid = yaml.safe_load(Path("profiles/default.yaml").read_text())["grid"] | {"device": "cpu", "icl": ["features"]}
    return root, task, draws, queries, grid


@pytest.mark.slow  # 42 s here (two worker processes start); the grid's sequential path is checked in make test
def test_two_workers_give_the_sequential_scores_and_one_encoding_per_image(toy, monkeypatch):
    root, task, draws, queries, grid = toy
    monkeypatch.chdir(root)  # each run's encoder cache in its own folder: .cache/embeddings here
    sequential, seq_record, seq_examples = run_grid_stage({**grid, "workers": 1}, task, draws, queries)
    cache = root / ".cache" / "embeddings"
    for entry in cache.rglob("*.pt"):
        entry.unlink()  # the parallel run starts from an empty cache too
    parallel, record, examples = grid_stage({**grid, "workers": 2}, task, draws, queries)
    assert record["workers"] == 2
    pd.testing.assert_frame_equal(parallel, sequential)
    assert record["encoder_passes"] == seq_record["encoder_passes"] == len(record["images"])
    assert record["icl_weights"] == seq_record["icl_weights"] and record["images"] == seq_record["images"]
    assert sorted(examples) == sorted(seq_examples) == sorted(grid["icl"])
    for icl, example in examples.items():
        assert example["prediction"].dice == seq_examples[icl]["prediction"].dice
    entries = sorted(cache.rglob("*.pt"))
    assert len(entries) == len(record["images"]) and not list(cache.rglob(".*"))  # whole entries only
    keys = {image_key(task.load(i)[0]) for i in set(draws["id"]) | set(queries)}
    assert {torch.load(p, weights_only=False)["image"] for p in entries} == keys
    json.dumps(record)  # the run record stays JSON
