"""What the pipeline's notebooks share and the stages' work that needs the models: reading a task's
inputs and the grid's results, saying what produced a result, the weak-context and sensitivity
stages. (Running a notebook: `notebook`; the grid stage: `grid`; prepare, split and draws: `data`; reading
params.yaml and checking a profile's inputs: `profiles`.)"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from iclsam.data.folder import Task, open_task
from iclsam.method.icl import resolve_icl
from iclsam.method.sam import SAM_BACKBONES
from iclsam.pipeline.grid import build_models
from iclsam.pipeline.profiles import data_description, load_params
from iclsam.pipeline.protocol import run_sensitivity, run_weak_context, select_queries
from iclsam.pipeline.report import Provenance


def default_icl(grid: dict) -> str:
    """The ICL model `ICLSAM()` would use with the grid's weights (UniverSeg with a checkpoint, else
    `DEFAULT_ICL`): the one the report shows first."""
    return resolve_icl("auto", grid.get("universeg_checkpoint"))


def provenance(params: dict, sams: list[str], icl_weights: list[str]) -> Provenance:
    """What produced a result: data, SAM backbone(s), ICL weights, profile."""
    return Provenance(
        data=data_description(params),
        sam=", ".join(SAM_BACKBONES[s].name for s in sams),
        icl_weights="; ".join(dict.fromkeys(icl_weights)),
        profile=params.get("profile", "custom"),
    )


def load_grid(grid_dir: str | Path, tasks: list[str]) -> tuple[pd.DataFrame, list[dict]]:
    """The grid stage's scores of `tasks` and their run records (weights, encoder counts)."""
    grid_dir = Path(grid_dir)
    scores = pd.concat([pd.read_csv(grid_dir / f"{t}.csv", dtype={"query": str}) for t in tasks], ignore_index=True)
    return scores, [json.loads((grid_dir / f"{t}.json").read_text()) for t in tasks]


def task_queries(splits_file: str | Path, task: str, max_queries: int | None, seed: int) -> list[str]:
    """The query images of `task` in the split table (a seeded subset of `max_queries` of them)."""
    splits = pd.read_csv(splits_file, dtype={"id": str})
    return select_queries(splits.loc[(splits["task"] == task) & (splits["split"] == "query"), "id"], max_queries, seed)


def task_inputs(
    params: dict, data: str | Path, task: str, splits_file: str | Path, draws_file: str | Path, max_queries: int | None
) -> tuple[Task, pd.DataFrame, list[str]]:
    """A stage's view of one task: the prepared task, the support draws and its query images."""
    draws = pd.read_csv(draws_file, dtype={"id": str})
    return open_task(Path(data) / task), draws, task_queries(splits_file, task, max_queries, params["grid"]["seed"])


def grid_results(params_file: str | Path, grid_dir: str | Path) -> tuple[dict, pd.DataFrame, list[dict], dict]:
    """What the rendering stages read: the parameters, the grid's scores of every task, its run
    records, and the ICL weights in words per "<sam>/<icl>"."""
    params = load_params(params_file)
    scores, records = load_grid(grid_dir, params["tasks"])
    return params, scores, records, records[0]["icl_weights"]


def stage_draws(draws: pd.DataFrame, task: str, max_draws: int, sizes=None) -> pd.DataFrame:
    """The support draws a stage runs on one task: the first `max_draws` draws of each m (of
    `sizes` only, when given)."""
    chosen = draws[(draws["task"] == task) & (draws["draw"] < max_draws)]
    return chosen[chosen["m"].isin(sizes)] if sizes else chosen


def weak_context_stage(
    params: dict, data: str | Path, splits_file: str | Path, draws_file: str | Path, progress=None
) -> tuple[pd.DataFrame, str]:
    """The weak_context stage: `run_weak_context` on each task of `weak_context.tasks` (all when
    empty). Returns the per-query scores and the ICL weights in words."""
    p = params["weak_context"]
    model = build_models(params["grid"], p["sam"], [p["icl"]])[p["icl"]]
    frames = []
    for name in p["tasks"] or params["tasks"]:
        task, draws, queries = task_inputs(params, data, name, splits_file, draws_file, p["max_queries"])
        chosen = stage_draws(draws, name, p["draws"], p["sizes"])
        frames.append(
            run_weak_context(model, task, chosen, queries, p["annotations"], progress=progress).assign(icl=p["icl"])
        )
    return pd.concat(frames, ignore_index=True), model.icl_weights


def sensitivity_stage(
    params: dict, data: str | Path, splits_file: str | Path, draws_file: str | Path, progress=None
) -> tuple[pd.DataFrame, str]:
    """Fig. 6's stage: `run_sensitivity` on `sensitivity.task` at its m. Returns the scores and the
    ICL weights in words."""
    p = params["sensitivity"]
    task, draws, queries = task_inputs(params, data, p["task"], splits_file, draws_file, p["max_queries"])
    chosen = stage_draws(draws, p["task"], p["draws"], [p["m"]])
    if chosen.empty:
        raise ValueError(f"no support draws of m = {p['m']} for {p['task']}: add m to sample_support.sizes")
    model = build_models(params["grid"], p["sam"], [p["icl"]])[p["icl"]]
    return run_sensitivity(model, task, chosen, queries, p["values"], progress=progress), model.icl_weights


def example_tasks(params: dict) -> list[str]:
    """Figs. 4/5's tasks: `report.examples` of them, evenly spread over the profile's tasks."""
    tasks, count = params["tasks"], params["report"]["examples"]
    return tasks[:: max(1, len(tasks) // count)][:count]
