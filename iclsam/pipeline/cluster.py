"""The grid stage spread over several workers: GPUs of one machine, or the machines of a Dask
cluster. A task's work is cut into jobs, one per (SAM backbone, ICL model, m, draw), which a Dask
cluster runs (a local one by default: `grid.workers` worker processes, worker k on cuda:k when the
machine has GPUs; or the cluster at `grid.scheduler`). The scores are put back in the sequential
order, so they equal a sequential run's row for row.

Every image is encoded first, once per backbone, each by one worker, into the shared on-disk
encoder cache (entries are written atomically under a name unique to the writer, so concurrent
writers leave only whole entries); the prediction jobs then read the embeddings from there. The
data and the cache must be at the same path on every machine (a shared file system)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pandas as pd
import torch

from iclsam.data.folder import Task, open_task
from iclsam.pipeline.grid import ENCODER_CACHE, build_models, close_record, new_record, run_grid_stage, used_images
from iclsam.pipeline.protocol import example_query, example_support, run_grid

_MODELS: dict = {}  # per worker process: the models of a grid setting, built once


def wanted_workers(grid: dict) -> int:
    """How many workers the grid asks for: `workers` (an int, or "auto": one per CUDA GPU), 1 when
    absent. With a `scheduler` address, the cluster's own workers are used whatever this says."""
    workers = grid.get("workers", 1) or 1
    if workers == "auto":
        return max(1, torch.cuda.device_count())
    if not isinstance(workers, int) or workers < 1:
        raise ValueError(f"grid.workers must be a positive integer or 'auto', got {workers!r}")
    return workers


def is_distributed(grid: dict) -> bool:
    return bool(grid.get("scheduler")) or wanted_workers(grid) > 1


def worker_device(device: str) -> str:
    """The device of this worker: `device` as given, except "auto" on a machine with several GPUs,
    where worker k of a local cluster takes cuda:(k mod the GPU count)."""
    if device != "auto" or torch.cuda.device_count() < 2:
        return device
    from distributed import get_worker

    try:
        index = int(get_worker().name)
    except (ValueError, TypeError):
        return device
    return f"cuda:{index % torch.cuda.device_count()}"


def _models(grid: dict, sam: str, cache_dir: str | None, threads: int | None):
    """This worker's models for (grid, backbone), built on first use and kept for later jobs."""
    key = (repr(sorted(grid.items(), key=lambda kv: kv[0])), sam, cache_dir)
    if key not in _MODELS:
        if threads:
            torch.set_num_threads(threads)
        device = worker_device(grid.get("device", "auto"))
        _MODELS[key] = build_models(
            {**grid, "device": device}, sam, grid["icl"], None if cache_dir is None else Path(cache_dir)
        )
    return _MODELS[key]


def _predictor(models):
    """The SAM predictor the models of one backbone share."""
    return next(iter(models.values())).sam


def _counters(models) -> tuple[int, int]:
    predictor = _predictor(models)
    return predictor.encoder_passes, predictor.disk_hits


def _encode_job(grid, sam, root, ids, cache_dir, threads):
    """Encodes these images of the task (into the shared cache); returns (passes, cache hits)."""
    models = _models(grid, sam, cache_dir, threads)
    before = _counters(models)
    task = open_task(root)
    for image_id in ids:
        _predictor(models).encode(task.load(image_id)[0])
    after = _counters(models)
    return after[0] - before[0], after[1] - before[1]


def _grid_job(grid, sam, icl, root, draws, queries, cache_dir, threads, with_example):
    """`run_grid` of one ICL model on one support set (the rows of `draws`), and Figs. 4/5's example
    on it when asked for; returns (scores, example or None, the ICL weights in words, encoder
    passes, cache hits)."""
    models = _models(grid, sam, cache_dir, threads)
    before = _counters(models)
    task = open_task(root)
    model = models[icl]
    scores = run_grid(model, task, draws, queries, with_assd=grid["assd"]).assign(sam=sam, icl=icl)
    example = example_query(model, task, draws, queries) if with_example else None
    after = _counters(models)
    return scores, example, model.icl_weights, after[0] - before[0], after[1] - before[1]


def connect(grid: dict):
    """A Dask client: the cluster at `grid.scheduler`, else a local cluster of `grid.workers`
    processes with one thread each. Returns (client, threads per worker for torch on the CPU)."""
    from distributed import Client, LocalCluster

    if grid.get("scheduler"):
        return Client(grid["scheduler"]), None
    workers = wanted_workers(grid)
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None)
    return Client(cluster), max(1, (os.cpu_count() or 1) // workers)


def encode_everything(client, grid: dict, root: str, used: list[str], cache, threads, workers: int, record: dict):
    """Every image encoded once per backbone, each by one worker, before any prediction; the counts
    go into the run record."""
    for sam in grid["sam"]:
        shares = [used[k::workers] for k in range(workers)]
        futures = [
            client.submit(_encode_job, grid, sam, root, share, cache, threads, pure=False) for share in shares if share
        ]
        for passes, hits in client.gather(futures):
            record["encoder_passes"] += passes
            record["encoder_cache_hits"] += hits


def distributed_grid_stage(
    grid: dict,
    task: Task,
    draws: pd.DataFrame,
    queries: list[str],
    client=None,
    cache_dir: str | Path | None = ENCODER_CACHE,
) -> tuple[pd.DataFrame, dict, dict]:
    """`grid.run_grid_stage` on a Dask cluster (`client`, else `connect(grid)`): the same scores in
    the same order, the run record, Figs. 4/5's example of each ICL model."""
    start = time.perf_counter()
    own = client is None
    threads = None
    if own:
        client, threads = connect(grid)
    root = str(Path(task.root).resolve())
    cache = None if cache_dir is None else str(Path(cache_dir).resolve())
    task_draws = draws[draws["task"] == task.name]
    record = new_record(task)
    used = used_images(task, draws, queries)
    try:
        workers = max(1, len(client.scheduler_info()["workers"]))
        encode_everything(client, grid, root, used, cache, threads, workers, record)
        example_m, example_draw = example_support(draws, task.name)
        jobs, futures = [], []
        for sam in grid["sam"]:
            for icl in grid["icl"]:
                for (m, draw), rows in task_draws.groupby(["m", "draw"], sort=True):
                    example = sam == grid["sam"][0] and (m, draw) == (example_m, example_draw)
                    jobs.append((sam, icl))
                    futures.append(
                        client.submit(
                            _grid_job, grid, sam, icl, root, rows, queries, cache, threads, example, pure=False
                        )
                    )
        frames, examples = [], {}
        for (sam, icl), (scores, example, weights, passes, hits) in zip(jobs, client.gather(futures)):
            frames.append(scores)
            record["icl_weights"][f"{sam}/{icl}"] = weights
            record["encoder_passes"] += passes
            record["encoder_cache_hits"] += hits
            if example is not None:
                examples[icl] = example
    finally:
        if own:
            cluster = getattr(client, "cluster", None)
            client.close()
            if cluster is not None:
                cluster.close()
    record = close_record(record, task, used, start)
    record["workers"] = workers
    return pd.concat(frames, ignore_index=True), record, examples


def grid_stage(
    grid: dict, task: Task, draws: pd.DataFrame, queries: list[str], progress=None
) -> tuple[pd.DataFrame, dict, dict]:
    """The grid stage's work on one task: on a Dask cluster when `grid.workers` > 1 or
    `grid.scheduler` is set (`distributed_grid_stage`), else in this process."""
    if is_distributed(grid):
        return distributed_grid_stage(grid, task, draws, queries)
    return run_grid_stage(grid, task, draws, queries, progress=progress)
