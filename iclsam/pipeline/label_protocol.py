"""`iclsam evaluate` on a task whose masks are label maps: the paper's protocol (the same support
draws and queries as a binary task), each support set segmented in one pass for all its labels
(`ICLSAM.predict_queries` per label on a shared encoder cache, `labels.resolve_overlaps`). Rows name
the label in the task ("<task> label <v>") so that every summary and table treats each label as a
task: "iclsam" is the one pass's resolved label map; the other variants are the label's own
prediction before overlaps were resolved (the same as the label segmented alone)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from iclsam.common.metrics import dice
from iclsam.data.folder import Task
from iclsam.method.label_maps import predict_label_maps, support_label_values
from iclsam.pipeline.protocol import image_loader, support_sets

if TYPE_CHECKING:
    from iclsam.method.model import ICLSAM


def label_task_name(task: str, value: int) -> str:
    return f"{task} label {value}"


def run_label_grid(
    model: ICLSAM, task: Task, draws: pd.DataFrame, queries: Sequence[str], progress=None
) -> pd.DataFrame:
    """Rows task ("<task> label <v>"), m, draw, query, variant, dice for every support set of `draws`
    (rows of this task) and query; a label no image of the support set holds is not scored."""
    load = image_loader(task, task.load_label_map)
    sets = support_sets(task, draws)
    rows = []
    for m, draw, support_ids in progress(sets, desc=task.name) if progress else sets:
        images, maps = zip(*(load(i) for i in support_ids))
        values = support_label_values(maps, [f"{task.root / 'masks' / i}.png" for i in support_ids])
        query_images, truths = zip(*(load(q) for q in queries))
        restricted = [np.where(np.isin(t, values), t, 0) for t in truths]
        found = predict_label_maps(model, images, maps, query_images, restricted)
        for query, result, truth in zip(queries, found, restricted):
            for value in result.values:
                keys = {"task": label_task_name(task.name, value), "m": m, "draw": draw, "query": query}
                target = truth == value
                for variant, mask in result.per_label[value].masks.items():
                    if variant == "sam+gt" and not target.any():
                        continue
                    final = result.mask(value) if variant == "iclsam" else mask
                    rows.append({**keys, "variant": variant, "dice": dice(final, target)})
    return pd.DataFrame(rows)
