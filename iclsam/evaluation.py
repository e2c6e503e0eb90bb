"""`iclsam evaluate`: the paper's protocol on any folder in the prepared format, every variant's Dice
per task, support size m and ICL model, as a tidy table (CSV) and a Markdown table (m columns)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from .model import ICLSAM, SAM_VARIANTS
from .protocol import evaluate_folder

SUMMARY_COLUMNS = ["task", "m", "icl", "variant", "dice", "n"]
VARIANT_ORDER = ("universeg", "universeg+conf", "features", *SAM_VARIANTS)


def in_paper_order(summary: pd.DataFrame) -> pd.DataFrame:
    """Rows by task, ICL model (as first met), variant in the paper's order (the ICL model's own,
    then SAM's; `VARIANT_ORDER`), m."""
    rank = {v: i for i, v in enumerate(VARIANT_ORDER)}
    keys = (summary["m"].to_numpy(), summary["variant"].map(lambda v: rank.get(v, len(rank))).to_numpy(),
            pd.factorize(summary["icl"])[0], summary["task"].to_numpy(dtype=str))
    return summary.iloc[np.lexsort(keys)].reset_index(drop=True)


def summarise(scores: pd.DataFrame) -> pd.DataFrame:
    """Mean Dice over draws and queries of each (task, m, icl, variant), with its count n, in the
    paper's order (`in_paper_order`)."""
    summary = (scores.groupby(["task", "m", "icl", "variant"], sort=False)["dice"]
               .agg(dice="mean", n="count").reset_index())
    return in_paper_order(summary[SUMMARY_COLUMNS])


def markdown_table(summary: pd.DataFrame, digits: int = 3) -> str:
    """Rows task / ICL model / variant (`in_paper_order`), one column per m (mean Dice)."""
    sizes = sorted(summary["m"].unique())
    summary = in_paper_order(summary)
    lines = ["| task | ICL model | variant | " + " | ".join(f"m = {m}" for m in sizes) + " |",
             "|---|---|---|" + "---|" * len(sizes)]
    for (task, icl, variant), rows in summary.groupby(["task", "icl", "variant"], sort=False):
        by_m = dict(zip(rows["m"], rows["dice"]))
        cells = [f"{by_m[m]:.{digits}f}" if m in by_m and np.isfinite(by_m[m]) else "" for m in sizes]
        lines.append(f"| {task} | {icl} | {variant} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def report(summary: pd.DataFrame, draws: int, queries: int | None, data: str, box_confidence, fusion: str) -> str:
    """What `iclsam evaluate` prints: a line saying what was run, then `markdown_table`."""
    return (f"Mean Dice over {draws} support draws x up to {queries} queries ({data}); "
            f"box confidence {box_confidence}, fusion {fusion}:\n\n{markdown_table(summary)}")


def evaluate(models: dict[str, ICLSAM], data: str | Path, sizes: Sequence[int], draws: int,
             queries: int | None, tasks: Sequence[str] | None = None, seed: int = 0,
             progress=None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-query scores (task, m, draw, query, variant, dice, icl) and their `summarise`."""
    scores = evaluate_folder(models, data, sizes, draws, queries, tasks=tasks, seed=seed, progress=progress)
    return scores, summarise(scores)
