"""Meta-support / query splits by case, and the support draws of the paper's protocol (§3: for each
support size m, N draws from the meta-support pool). Everything is seeded and machine-independent:
numpy's PCG64 streams, seeded from the seed and a CRC32 of the task name."""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np
import pandas as pd

PAPER_SUPPORT_SIZES = (1, 2, 4, 8, 16, 32, 64)
PAPER_DRAWS = 10


def _stream(seed: int, *keys: str | int) -> np.random.Generator:
    words = [int(seed)] + [zlib.crc32(k.encode()) if isinstance(k, str) else int(k) for k in keys]
    return np.random.default_rng(words)


def split_cases(cases: Sequence[str], support_fraction: float, seed: int, key: str = "") -> dict[str, str]:
    """Each case (a patient, a volume; all its images go together) to "support" or "query":
    round(n * support_fraction) cases, at least one on each side, drawn at random."""
    cases = sorted(set(cases))
    if len(cases) < 2:
        raise ValueError(f"need at least two cases to split into meta-support and query, got {len(cases)}")
    n_support = min(max(round(len(cases) * support_fraction), 1), len(cases) - 1)
    order = _stream(seed, "split", key).permutation(len(cases))
    chosen = {cases[i] for i in order[:n_support]}
    return {c: "support" if c in chosen else "query" for c in cases}


def case_column(meta: pd.DataFrame) -> str:
    """The column that groups images of one case: `case`, else `group` (real-dev), else `id`."""
    return next(c for c in ("case", "group", "id") if c in meta.columns)


def with_splits(meta: pd.DataFrame, support_fraction: float = 0.5, seed: int = 0, key: str = "") -> pd.DataFrame:
    """`meta` with a `split` column: kept when present, else drawn by case."""
    if "split" in meta.columns:
        bad = sorted(set(meta["split"]) - {"support", "query"})
        if bad:
            raise ValueError(f"split column has values {bad}; expected 'support' and 'query'")
        return meta
    column = case_column(meta)
    splits = split_cases(meta[column].astype(str), support_fraction, seed, key)
    return meta.assign(split=meta[column].astype(str).map(splits))


def draw_supports(
    task: str, pool: Sequence[str], sizes: Sequence[int] = PAPER_SUPPORT_SIZES, draws: int = PAPER_DRAWS, seed: int = 0
) -> pd.DataFrame:
    """For each m in `sizes`, `draws` random support sets of m ids from the meta-support `pool`
    (without replacement within a set). Rows: task, m, draw, rank, id (ids sorted within a set)."""
    pool = sorted(set(map(str, pool)))
    if not pool:
        raise ValueError(f"task {task}: the meta-support pool is empty")
    too_big = [m for m in sizes if m > len(pool)]
    if too_big:
        raise ValueError(f"task {task}: support sizes {too_big} exceed the meta-support pool of {len(pool)} images")
    rows = []
    for m in sizes:
        rng = _stream(seed, "draws", task, m)
        for draw in range(draws):
            chosen = sorted(pool[i] for i in rng.choice(len(pool), m, replace=False))
            rows += [(task, m, draw, rank, image_id) for rank, image_id in enumerate(chosen)]
    return pd.DataFrame(rows, columns=["task", "m", "draw", "rank", "id"])


def split_table(tasks, support_fraction: float = 0.5, seed: int = 0) -> pd.DataFrame:
    """The meta-support / query split of every task (`data.folder.Task`s), by case (`with_splits`):
    rows task, id, case, split."""
    frames = []
    for task in tasks:
        meta = with_splits(task.meta, support_fraction, seed, key=task.name)
        frames.append(
            pd.DataFrame(
                {
                    "task": task.name,
                    "id": meta["id"],
                    "case": meta[case_column(meta)].astype(str),
                    "split": meta["split"],
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def draws_from_splits(
    splits: pd.DataFrame, sizes: Sequence[int] = PAPER_SUPPORT_SIZES, draws: int = PAPER_DRAWS, seed: int = 0
) -> pd.DataFrame:
    """`draw_supports` of every task of a split table (tasks by name), from its meta-support ids."""
    return pd.concat(
        [
            draw_supports(task, group.loc[group["split"] == "support", "id"], sizes, draws, seed)
            for task, group in splits.groupby("task", sort=True)
        ],
        ignore_index=True,
    )
