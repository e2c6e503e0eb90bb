"""Leave-family-out evaluation of ICL models on a corpus (real-wide): families in k folds; for each
fold a model trained on the other folds' families is compared on the held-out families' tasks with
the other ICL models, on the same support sets and queries.

Per held-out task, support size m and draw: m support pairs and up to `queries` query pairs, drawn
seeded from different groups (patients) when the task has enough; each model gives its ICL mask
(the ICL model alone) and the full method ("iclsam"). One row per (task, m, draw, query, model,
variant) with the query's Dice."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from iclsam.common.metrics import dice
from iclsam.data.folder import open_task
from iclsam.data.splits import case_column
from iclsam.pipeline.icl_corpus import CorpusTask


def family_folds(families: list[str], folds: int = 5, seed: int = 0) -> list[list[str]]:
    """The families in `folds` groups: a seeded shuffle dealt round-robin."""
    order = sorted(families)
    np.random.default_rng(seed).shuffle(order)
    return [sorted(order[i::folds]) for i in range(folds)]


def draw_split(groups: list[str], m: int, queries: int, rng: np.random.Generator) -> tuple[list[int], list[int]]:
    """m support indices and up to `queries` query indices; the queries' groups differ from the
    support's when enough groups remain, else any other pairs."""
    order = rng.permutation(len(groups)).tolist()
    support = order[:m]
    taken = {groups[i] for i in support}
    rest = [i for i in order[m:] if groups[i] not in taken] or order[m:]
    return support, rest[:queries]


def evaluate_tasks(
    models: dict[str, object],
    tasks: list[CorpusTask],
    ms: tuple[int, ...] = (1, 4, 8),
    draws: int = 1,
    queries: int = 6,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> pd.DataFrame:
    """Dice of each model's ICL mask and full method on every task (see the module's docstring).
    `models`: name -> ICLSAM."""
    rows = []
    for task in tasks:
        folder = open_task(task.root)
        pairs = [folder.load(i) for i in folder.ids]
        groups = [str(g) for g in folder.meta[case_column(folder.meta)]]
        for m in ms:
            if m >= len(pairs):
                continue
            for draw in range(draws):
                rng = np.random.default_rng([seed, m, draw, sum(map(ord, task.name))])
                support, chosen = draw_split(groups, m, queries, rng)
                images, masks = [pairs[i][0] for i in support], [pairs[i][1] for i in support]
                for name, model in models.items():
                    variants = {model.icl_model.map_variant, "iclsam"}
                    predictions = model.predict_many(images, masks, [pairs[i][0] for i in chosen], None, variants)
                    for q, prediction in zip(chosen, predictions):
                        for variant in sorted(variants):
                            rows.append(
                                {
                                    "family": task.family,
                                    "task": task.name,
                                    "m": m,
                                    "draw": draw,
                                    "query": folder.ids[q],
                                    "model": name,
                                    "variant": "icl" if variant != "iclsam" else "iclsam",
                                    "dice": dice(prediction.masks[variant], pairs[q][1]),
                                }
                            )
        if progress is not None:
            progress(task.name)
    return pd.DataFrame(rows)


def family_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Mean Dice per family (tasks weighted equally within it), model x variant x m as columns, and
    the mean over families."""
    per_task = rows.groupby(["family", "task", "model", "variant", "m"])["dice"].mean().reset_index()
    per_family = per_task.groupby(["family", "model", "variant", "m"])["dice"].mean().reset_index()
    table = per_family.pivot_table(index="family", columns=["variant", "model", "m"], values="dice")
    table.loc["mean over families"] = table.mean()
    return table.round(3)
