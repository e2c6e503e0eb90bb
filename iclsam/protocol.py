"""The paper's protocol (§3) as a loop: for each task, support size m and support draw, every query
is segmented once and every variant scored (Dice; ASSD with both masks resized to 512 x 512).

Rows are tidy: task, m, draw, query, variant, dice, assd. Heavy work stays here; notebooks only
call `run_grid` and render."""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from .data.folder import Task
from .metrics import assd, dice
from .model import ICLSAM
from .resampling import resized_mask


def select_queries(ids: Sequence[str], max_queries: int | None = None, seed: int = 0) -> list[str]:
    """The query set, or a seeded subset of `max_queries` of it (sorted)."""
    ids = sorted(map(str, ids))
    if max_queries is not None and len(ids) > max_queries:
        rng = np.random.default_rng([seed, len(ids)])
        ids = sorted(ids[i] for i in rng.choice(len(ids), max_queries, replace=False))
    return ids


def run_grid(model: ICLSAM, task: Task, draws: pd.DataFrame, queries: Sequence[str],
             with_assd: bool = True, progress=None) -> pd.DataFrame:
    """Scores every variant for every (m, draw) support set of `draws` (rows of this task) on every
    query. Each image is loaded once; SAM encodes each image once (the model's encoder cache); the
    work that depends on the support set alone is done once per (m, draw)."""
    images: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def load(image_id):
        if image_id not in images:
            images[image_id] = task.load(image_id)
        return images[image_id]

    sets = [(m, draw, list(group.sort_values("rank")["id"]))
            for (m, draw), group in draws[draws["task"] == task.name].groupby(["m", "draw"], sort=True)]
    if not sets:
        raise ValueError(f"no support draws for task {task.name}")
    rows = []
    jobs: Iterable = [(m, draw, ids, q) for m, draw, ids in sets for q in queries]
    if progress is not None:
        jobs = progress(jobs, desc=task.name, total=len(sets) * len(queries))
    support_sets = {}  # each support set prepared once (features, Eq. 2 fit, UniverSeg tensors)
    for m, draw, support_ids, query in jobs:
        if (m, draw) not in support_sets:
            support_sets = {(m, draw): model.support_set(*zip(*(load(i) for i in support_ids)))}
        image, truth = load(query)
        prediction = model.predict_query(support_sets[(m, draw)], image, truth)
        truth_512 = resized_mask(truth) if with_assd else None
        for variant, mask in prediction.masks.items():
            rows.append({"task": task.name, "m": m, "draw": draw, "query": query, "variant": variant,
                         "dice": dice(mask, truth),
                         "assd": assd(resized_mask(mask), truth_512) if with_assd else np.nan})
    return pd.DataFrame(rows)


SENSITIVITY_CONSTANTS = ("a", "b", "tau", "beta")


def run_sensitivity(model: ICLSAM, task: Task, draws: pd.DataFrame, queries: Sequence[str],
                    values: dict[str, Sequence[float]], progress=None) -> pd.DataFrame:
    """Fig. 6: the full method's Dice while one constant (a, b, tau or beta) moves and the others
    keep the model's values. Rows: task, constant, value, m, draw, query, dice. The model's own
    constants are restored afterwards."""
    unknown = sorted(set(values) - set(SENSITIVITY_CONSTANTS))
    if unknown:
        raise ValueError(f"sensitivity constants must be among {SENSITIVITY_CONSTANTS}, got {unknown}")
    base = {name: getattr(model, name) for name in SENSITIVITY_CONSTANTS}
    frames = []
    try:
        for name, settings in values.items():
            for value in settings:
                for constant, default in base.items():
                    setattr(model, constant, value if constant == name else default)
                scores = run_grid(model, task, draws, queries, with_assd=False, progress=progress)
                scores = scores[scores["variant"] == "iclsam"]
                frames.append(scores.drop(columns=["variant", "assd"]).assign(constant=name, value=float(value)))
    finally:
        for constant, default in base.items():
            setattr(model, constant, default)
    return pd.concat(frames, ignore_index=True)
