"""The grid stage: every SAM backbone, ICL model, support size and draw on one task, scored per
query (`protocol.run_grid`), with its run record and Figs. 4/5's example query. One module for both
paths: in this process (`run_grid_stage`), or spread over a Dask cluster (`cluster`), which gives the
same scores in the same order; `cluster.grid_stage` picks."""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd

from iclsam.data.folder import Task
from iclsam.method.config import ICLSAMConfig
from iclsam.method.model import ICLSAM
from iclsam.method.sam import SamPredictor
from iclsam.method.sam.cache import image_key
from iclsam.pipeline.protocol import example_query, run_grid

ENCODER_CACHE = Path(".cache/embeddings")


# the grid settings that configure a model (ICLSAMConfig fields of the same name); a stage that builds
# models with `build_models` lists them as parameters in dvc.yaml (tests/test_dvc_deps.py)
MODEL_SETTINGS = ("seed", "box_confidence", "box_min_area", "fusion", "sam_steering", "device")


def model_settings(grid: dict) -> dict:
    """The grid's model settings; one it leaves out takes ICLSAMConfig's default (the one source)."""
    defaults = ICLSAMConfig()
    return {name: grid[name] if name in grid else getattr(defaults, name) for name in MODEL_SETTINGS}


def build_models(grid: dict, sam: str, icls, cache_dir: Path | None = ENCODER_CACHE) -> dict[str, ICLSAM]:
    """One ICLSAM per ICL backend, all sharing one SAM predictor (one encoder pass per image), with
    the grid's checkpoints and `MODEL_SETTINGS` (device, refinements, seed)."""
    settings = model_settings(grid)
    checkpoint = (grid.get("sam_checkpoint") or {}).get(sam)
    predictor = SamPredictor(sam, checkpoint, device=settings["device"], cache_dir=cache_dir)
    return {
        icl: ICLSAM(
            sam=predictor,
            icl=icl,
            universeg_checkpoint=grid.get("universeg_checkpoint") if icl == "universeg" else None,
            **settings,
        )
        for icl in icls
    }


def new_record(task: Task) -> dict:
    """A task's run record before any work: ICL weights by "<sam>/<icl>", encoder passes and hits."""
    return {"task": task.name, "icl_weights": {}, "encoder_passes": 0, "encoder_cache_hits": 0}


def used_images(task: Task, draws: pd.DataFrame, queries: list[str]) -> list[str]:
    """The ids of every image the grid reads on this task: its support draws and its queries."""
    return sorted(set(draws.loc[draws["task"] == task.name, "id"]) | set(queries))


def close_record(record: dict, task: Task, used: list[str], start: float) -> dict:
    """The run record's last entries: the content keys of the images used, the seconds taken."""
    record["images"] = sorted(image_key(task.load(i)[0]) for i in used)
    record["seconds"] = round(time.perf_counter() - start, 1)
    return record


def run_grid_stage(
    grid: dict, task: Task, draws: pd.DataFrame, queries: list[str], progress=None
) -> tuple[pd.DataFrame, dict, dict]:
    """The grid stage on one task in this process: the scores of every backbone and ICL model, the
    run record, and Figs. 4/5's example query of each ICL model (first backbone), by ICL model."""
    start = time.perf_counter()
    frames, examples, record = [], {}, new_record(task)
    for sam in grid["sam"]:
        models = build_models(grid, sam, grid["icl"])
        for icl, model in models.items():
            scores = run_grid(model, task, draws, queries, with_assd=grid["assd"], progress=progress)
            frames.append(scores.assign(sam=sam, icl=icl))
            record["icl_weights"][f"{sam}/{icl}"] = model.icl_weights
            if sam == grid["sam"][0]:
                examples[icl] = example_query(model, task, draws, queries)
        predictor = next(iter(models.values())).sam
        record["encoder_passes"] += predictor.encoder_passes
        record["encoder_cache_hits"] += predictor.disk_hits
    return (
        pd.concat(frames, ignore_index=True),
        close_record(record, task, used_images(task, draws, queries), start),
        examples,
    )
