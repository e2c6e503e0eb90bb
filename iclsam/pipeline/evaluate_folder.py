"""`iclsam evaluate`: the paper's protocol on any folder in the prepared format, every variant's Dice
per task, support size m and ICL model, as a tidy table (CSV) and a Markdown table (m columns)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from iclsam.data.folder import open_tasks
from iclsam.method.densify import ANNOTATION_KINDS, ANNOTATION_SECONDS
from iclsam.method.model import ICLSAM
from iclsam.pipeline.label_protocol import run_label_grid
from iclsam.pipeline.protocol import run_grid, run_weak_context, task_protocol
from iclsam.pipeline.report import in_paper_order, weak_context_markdown, weak_context_table

SUMMARY_COLUMNS = ["task", "m", "icl", "variant", "dice", "n"]  # and annotation, for weak context


def chosen_tasks(data: str | Path, tasks: Sequence[str] | None) -> list:
    """The tasks of a prepared folder, or those named (each must be there)."""
    found = open_tasks(data)
    if tasks:
        unknown = sorted(set(tasks) - {t.name for t in found})
        if unknown:
            raise ValueError(f"tasks {unknown} not found in {data} (it has {[t.name for t in found]})")
        found = [t for t in found if t.name in set(tasks)]
    return found


def evaluate_folder(
    models: dict[str, ICLSAM],
    data: str | Path,
    sizes: Sequence[int],
    draws: int,
    max_queries: int | None,
    tasks: Sequence[str] | None = None,
    seed: int = 0,
    progress=None,
    annotations: Sequence[str] | None = None,
) -> pd.DataFrame:
    """`run_grid` (Dice only) of each model (by label) on each task of a folder in the prepared
    format, under `task_protocol` (a task of label maps: `label_protocol.run_label_grid`). Rows: task, m, draw, query, variant, dice, icl; with `annotations`
    (weak context, `run_weak_context`) also annotation and support_dice."""
    found = chosen_tasks(data, tasks)
    plans = [(task, *task_protocol(task, sizes, draws, max_queries, seed)) for task in found]  # every check first
    frames = []
    for task, sets, queries in plans:
        label_maps = task.holds_label_maps()
        if label_maps and annotations is not None:
            raise ValueError(
                f"task {task.name}: weak context is evaluated on binary masks, and its masks are label maps"
            )
        for label, model in models.items():
            if label_maps:
                scores = run_label_grid(model, task, sets, queries, progress=progress)
            elif annotations is None:
                scores = run_grid(model, task, sets, queries, with_assd=False, progress=progress).drop(columns="assd")
            else:
                scores = run_weak_context(model, task, sets, queries, annotations, progress=progress)
            frames.append(scores.assign(icl=label))
    return pd.concat(frames, ignore_index=True)


def summarise(scores: pd.DataFrame) -> pd.DataFrame:
    """Mean Dice over draws and queries of each (task, m, icl, variant[, annotation]), with its count
    n, in the paper's order (`in_evaluation_order`)."""
    keys = ["task", "m", "icl", "variant", *(["annotation"] if "annotation" in scores.columns else [])]
    summary = scores.groupby(keys, sort=False)["dice"].agg(dice="mean", n="count").reset_index()
    return in_evaluation_order(summary[SUMMARY_COLUMNS + keys[4:]])


def in_evaluation_order(summary: pd.DataFrame) -> pd.DataFrame:
    """`report.in_paper_order` with the first ICL model met first and support annotations in
    `ANNOTATION_KINDS`' order."""
    return in_paper_order(
        summary, icl_first=summary["icl"].iloc[0] if len(summary) else None, annotation_order=ANNOTATION_KINDS
    )


def markdown_table(summary: pd.DataFrame, digits: int = 3) -> str:
    """Rows task / ICL model / variant [/ support annotation] (`in_evaluation_order`), one column per m
    (mean Dice)."""
    sizes = sorted(summary["m"].unique())
    summary = in_evaluation_order(summary)
    keys = ["task", "icl", "variant", *(["annotation"] if "annotation" in summary.columns else [])]
    names = ["task", "ICL model", "variant", "support annotation"][: len(keys)]
    lines = [
        "| " + " | ".join(names) + " | " + " | ".join(f"m = {m}" for m in sizes) + " |",
        "|" + "---|" * (len(keys) + len(sizes)),
    ]
    for key, rows in summary.groupby(keys, sort=False):
        by_m = dict(zip(rows["m"], rows["dice"]))
        cells = [f"{by_m[m]:.{digits}f}" if m in by_m and np.isfinite(by_m[m]) else "" for m in sizes]
        lines.append("| " + " | ".join(map(str, key)) + " | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def report(
    summary: pd.DataFrame,
    draws: int,
    queries: int | None,
    data: str,
    box_confidence,
    fusion: str,
    scores: pd.DataFrame | None = None,
    steering: dict[str, bool] | None = None,
) -> str:
    """What `iclsam evaluate` prints: a line saying what was run, then `markdown_table`; for weak
    context (`scores` with an annotation column), `weak_context_markdown` instead. `steering`: per
    ICL model, whether the map steers SAM (Eq. 3) in the full method."""
    weak = scores is not None and "annotation" in scores.columns
    table = weak_context_markdown(weak_context_table(scores, ANNOTATION_SECONDS)) if weak else markdown_table(summary)
    what = "full method's Dice by support annotation" if weak else "Dice"
    return (
        f"Mean {what} over {draws} support draws x up to {queries} queries ({data}); "
        f"box confidence {box_confidence}, fusion {fusion}{_steering_words(steering)}:\n\n{table}"
    )


def _steering_words(steering: dict[str, bool] | None) -> str:
    if not steering:
        return ""
    return "; SAM in the full method " + ", ".join(
        f"{'steered by the map' if on else 'without the map'} ({icl})" for icl, on in steering.items()
    )


def evaluate(
    models: dict[str, ICLSAM],
    data: str | Path,
    sizes: Sequence[int],
    draws: int,
    queries: int | None,
    tasks: Sequence[str] | None = None,
    seed: int = 0,
    progress=None,
    annotations: Sequence[str] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-query scores (task, m, draw, query, variant, dice, icl[, annotation, support_dice]) and
    their `summarise`. `annotations`: weak context (`protocol.run_weak_context`)."""
    scores = evaluate_folder(
        models, data, sizes, draws, queries, tasks=tasks, seed=seed, progress=progress, annotations=annotations
    )
    return scores, summarise(scores)
