"""`iclsam evaluate-annotation`: the simulated user (`apps.annotation.simulated_clicks`) annotating
every task of a prepared folder, image by image in a seeded random order, three ways:
- `sam-clicks`: no context, every image from an empty mask by clicks alone (the ScribblePrompt-like
  baseline: SAM and the same click rule, nothing learned from the images before);
- `fixed-context`: the first image annotated by clicks, then the context for every other image;
- `growing-context`: every finished image joins the context of the next ones.
One row per task, method and image: task, method, image, clicks, dice, seconds (median per
interaction)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from iclsam.apps.annotation import PROPOSAL_MIN_CONFIDENCE, Annotator, simulated_clicks
from iclsam.pipeline.evaluate_folder import chosen_tasks

if TYPE_CHECKING:
    from iclsam.method.model import ICLSAM

METHODS = ("sam-clicks", "fixed-context", "growing-context")


def annotation_order(ids: Sequence[str], images: int | None, seed: int) -> list[str]:
    """The images a user meets, in a seeded random order (the first `images` of it)."""
    order = [ids[k] for k in np.random.default_rng(seed).permutation(len(ids))]
    return order[:images] if images else order


def annotate_task(
    model: ICLSAM,
    task,
    method: str,
    order: Sequence[str],
    max_context: int,
    max_clicks: int,
    min_confidence: float = PROPOSAL_MIN_CONFIDENCE,
) -> list[dict]:
    """The rows of one task annotated one way (see the module); `min_confidence`: `Annotator`'s."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    options = {"max_context": max_context, "min_confidence": min_confidence}
    annotator, rows = Annotator(model, **options), []
    for k, image_id in enumerate(order):
        image, mask = task.load(image_id)
        if method == "sam-clicks":
            annotator = Annotator(model, **options)
        elif method == "fixed-context" and k == 1:
            first = annotator.accepted[0]
            annotator = Annotator(model, [first[0]], [first[1]], **options)
        elif method == "fixed-context" and k > 1:
            annotator.accepted.clear()  # the first image's context only
        result = simulated_clicks(annotator, image, mask != 0, max_clicks=max_clicks)
        rows.append({"task": task.name, "method": method, "image": image_id, **result})
    return rows


def evaluate_annotation(
    model: ICLSAM,
    data: str,
    tasks: Sequence[str] | None = None,
    images: int | None = 20,
    seed: int = 0,
    methods: Sequence[str] = METHODS,
    max_context: int = 16,
    max_clicks: int = 20,
    min_confidence: float = PROPOSAL_MIN_CONFIDENCE,
    progress=None,
) -> pd.DataFrame:
    """Every task (or `tasks`) of the prepared folder `data`, each method on the same order."""
    rows = []
    for task in chosen_tasks(data, tasks):
        order = annotation_order(task.ids, images, seed)
        for method in methods:
            rows += annotate_task(model, task, method, order, max_context, max_clicks, min_confidence)
            if progress:
                progress(rows[-len(order) :])
    return pd.DataFrame(rows, columns=["task", "method", "image", "clicks", "dice", "seconds"])


def annotation_summary(rows: pd.DataFrame, target: float = 0.9) -> pd.DataFrame:
    """Per task and method: mean clicks per image, over the first 5 and the last 5 images, the
    share of images that reached `target`, the median seconds per interaction."""
    out = []
    for (task, method), group in rows.groupby(["task", "method"], sort=False):
        out.append(
            {
                "task": task,
                "method": method,
                "clicks": group["clicks"].mean(),
                "first 5": group["clicks"].head(5).mean(),
                "last 5": group["clicks"].tail(5).mean(),
                "reached": (group["dice"] >= target).mean(),
                "seconds": group["seconds"].median(),
            }
        )
    return pd.DataFrame(out)
