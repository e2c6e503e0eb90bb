"""What the pipeline's notebooks share: building the models of a run, the grid stage's work on one
task, reading the grid's results, saying what produced a result, running a notebook. (Reading
params.yaml and checking a profile's inputs: `profiles`.)"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pandas as pd

from .data.folder import Task, open_task
from .icl import resolve_icl
from .protocol import example_query, run_grid, select_queries
from .model import ICLSAM
from .profiles import data_description, load_params
from .report import Provenance
from .sam import SAM_BACKBONES, SamPredictor
from .sam.cache import image_key

ENCODER_CACHE = Path(".cache/embeddings")


def run_notebook(source: str | Path, output: str | Path, parameters: dict | None = None,
                 cwd: str | Path | None = None) -> Path:
    """Executes a jupytext notebook (`.py`, percent format) with papermill, injecting `parameters`,
    and writes the executed `.ipynb` to `output` (its folder is created)."""
    import jupytext
    import papermill

    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    notebook = jupytext.read(source)
    papermill.execute_notebook(notebook, str(output), parameters=parameters or {}, kernel_name="python3",
                               language="python", progress_bar=False, cwd=None if cwd is None else str(cwd))
    return output


def build_models(grid: dict, sam: str, icls, cache_dir: Path | None = ENCODER_CACHE) -> dict[str, ICLSAM]:
    """One ICLSAM per ICL backend, all sharing one SAM predictor (one encoder pass per image), on the
    grid's `device` (absent: auto), with the grid's refinements (`box_confidence`, `fusion`,
    `sam_steering`; absent: every box, the paper's fusion, steering auto)."""
    checkpoint = (grid.get("sam_checkpoint") or {}).get(sam)
    predictor = SamPredictor(sam, checkpoint, device=grid.get("device", "auto"), cache_dir=cache_dir)
    return {icl: ICLSAM(sam=predictor, icl=icl, universeg_checkpoint=grid.get("universeg_checkpoint") if icl == "universeg" else None,
                        seed=grid.get("seed", 0), box_confidence=grid.get("box_confidence"),
                        fusion=grid.get("fusion", "paper"), sam_steering=grid.get("sam_steering", "auto"))
            for icl in icls}


def default_icl(grid: dict) -> str:
    """The ICL model `ICLSAM()` would use with the grid's weights (UniverSeg with a checkpoint, else
    `DEFAULT_ICL`): the one the report shows first."""
    return resolve_icl("auto", grid.get("universeg_checkpoint"))


def provenance(params: dict, sams: list[str], icl_weights: list[str]) -> Provenance:
    """What produced a result: data, SAM backbone(s), ICL weights, profile."""
    return Provenance(data=data_description(params), sam=", ".join(SAM_BACKBONES[s].name for s in sams),
                      icl_weights="; ".join(dict.fromkeys(icl_weights)), profile=params.get("profile", "custom"))


def load_grid(grid_dir: str | Path, tasks: list[str]) -> tuple[pd.DataFrame, list[dict]]:
    """The grid stage's scores of `tasks` and their run records (weights, encoder counts)."""
    grid_dir = Path(grid_dir)
    scores = pd.concat([pd.read_csv(grid_dir / f"{t}.csv", dtype={"query": str}) for t in tasks], ignore_index=True)
    return scores, [json.loads((grid_dir / f"{t}.json").read_text()) for t in tasks]


def task_queries(splits_file: str | Path, task: str, max_queries: int | None, seed: int) -> list[str]:
    """The query images of `task` in the split table (a seeded subset of `max_queries` of them)."""
    splits = pd.read_csv(splits_file, dtype={"id": str})
    return select_queries(splits.loc[(splits["task"] == task) & (splits["split"] == "query"), "id"], max_queries, seed)


def task_inputs(params: dict, data: str | Path, task: str, splits_file: str | Path, draws_file: str | Path,
                max_queries: int | None) -> tuple[Task, pd.DataFrame, list[str]]:
    """A stage's view of one task: the prepared task, the support draws and its query images."""
    draws = pd.read_csv(draws_file, dtype={"id": str})
    return open_task(Path(data) / task), draws, task_queries(splits_file, task, max_queries, params["grid"]["seed"])


def grid_for_task(grid: dict, task: Task, draws: pd.DataFrame, queries: list[str], progress=None
                  ) -> tuple[pd.DataFrame, dict, dict]:
    """The grid stage on one task: the scores of every backbone and ICL model (`protocol.run_grid`),
    the run record (ICL weights, encoder passes and cache hits, the keys of the images used, seconds)
    and Figs. 4/5's example query of each ICL model (first backbone), by ICL model. (On a Dask
    cluster: `cluster.grid_for_task`, the same scores in the same order.)"""
    start = time.perf_counter()
    frames, examples = [], {}
    record = {"task": task.name, "icl_weights": {}, "encoder_passes": 0, "encoder_cache_hits": 0}
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
    used = sorted(set(draws.loc[draws["task"] == task.name, "id"]) | set(queries))
    record["images"] = sorted(image_key(task.load(i)[0]) for i in used)
    record["seconds"] = round(time.perf_counter() - start, 1)
    return pd.concat(frames, ignore_index=True), record, examples


def grid_results(params_file: str | Path, grid_dir: str | Path) -> tuple[dict, pd.DataFrame, list[dict], dict]:
    """What the rendering stages read: the parameters, the grid's scores of every task, its run
    records, and the ICL weights in words per "<sam>/<icl>"."""
    params = load_params(params_file)
    scores, records = load_grid(grid_dir, params["tasks"])
    return params, scores, records, records[0]["icl_weights"]
