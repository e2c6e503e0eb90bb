"""The paper's protocol (§3) as a loop: for each task, support size m and support draw, every query
is segmented once and every variant scored (Dice; ASSD with both masks resized to 512 x 512).

Rows are tidy: task, m, draw, query, variant, dice, assd. Heavy work stays here; notebooks only
call `run_grid` and render."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from iclsam.common.atomic import write_atomic
from iclsam.common.metrics import assd, dice
from iclsam.common.resampling import resized_mask
from iclsam.data.folder import Task
from iclsam.data.splits import draw_supports, with_splits
from iclsam.method.densify import ANNOTATION_KINDS, boxes_from_mask, points_from_mask
from iclsam.method.model import ICLSAM, Prediction
from iclsam.pipeline.report import ICL_NAME


def select_queries(ids: Sequence[str], max_queries: int | None = None, seed: int = 0) -> list[str]:
    """The query set, or a seeded subset of `max_queries` of it (sorted)."""
    ids = sorted(map(str, ids))
    if max_queries is not None and len(ids) > max_queries:
        rng = np.random.default_rng([seed, len(ids)])
        ids = sorted(ids[i] for i in rng.choice(len(ids), max_queries, replace=False))
    return ids


def support_annotation(
    model: ICLSAM, images: Sequence[np.ndarray], masks: Sequence[np.ndarray], annotation: str
) -> list[np.ndarray]:
    """The support masks a support set annotated in `annotation` (`densify.ANNOTATION_KINDS`) gives:
    the true masks ("mask"), or SAM's masks from the weak annotations the true masks imply ("box": a
    tight box per component; "point": one click per component, `densify.points_from_mask`)."""
    if annotation == "mask":
        return list(masks)
    if annotation == "box":
        return model.densify(images, boxes=[boxes_from_mask(y) for y in masks])
    if annotation == "point":
        return model.densify(images, points=[points_from_mask(y) for y in masks])
    raise ValueError(f"annotation must be one of {ANNOTATION_KINDS}, got {annotation!r}")


def image_loader(task: Task, read=None):
    """`load(id)`: the task's image and mask (`read(id)`, default `task.load`), each read once."""
    images: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    read = read or task.load

    def load(image_id):
        if image_id not in images:
            images[image_id] = read(image_id)
        return images[image_id]

    return load


def support_sets(task: Task, draws: pd.DataFrame) -> list[tuple[int, int, list[str]]]:
    """(m, draw, support ids in rank order) of every support set of `draws` for this task."""
    return [
        (m, draw, list(group.sort_values("rank")["id"]))
        for (m, draw), group in draws[draws["task"] == task.name].groupby(["m", "draw"], sort=True)
    ]


def score_rows(prediction: Prediction, truth: np.ndarray, with_assd: bool, **keys) -> list[dict]:
    """A row per variant of one prediction: `keys`, the variant, its Dice and (with_assd) its ASSD,
    both masks resized to 512 x 512 (NaN otherwise)."""
    truth_512 = resized_mask(truth) if with_assd else None
    return [
        {
            **{k: keys[k] for k in ("task", "m", "draw", "query")},
            "variant": variant,
            "dice": dice(mask, truth),
            "assd": assd(resized_mask(mask), truth_512) if with_assd else np.nan,
            **{k: v for k, v in keys.items() if k not in ("task", "m", "draw", "query")},
        }
        for variant, mask in prediction.masks.items()
    ]


def run_grid(
    model: ICLSAM,
    task: Task,
    draws: pd.DataFrame,
    queries: Sequence[str],
    with_assd: bool = True,
    progress=None,
    annotation: str | None = None,
) -> pd.DataFrame:
    """Scores every variant for every (m, draw) support set of `draws` (rows of this task) on every
    query. Each image is loaded once; SAM encodes each image once (the model's encoder cache); the
    work that depends on the support set alone is done once per (m, draw).
    With `annotation` (weak context, `support_annotation`), the support masks are those the
    annotation gives, and rows also hold `annotation` and `support_dice` (mean Dice of the support
    set's masks with the true ones)."""
    load = image_loader(task)
    sets = support_sets(task, draws)
    if not sets:
        raise ValueError(f"no support draws for task {task.name}")
    rows = []
    jobs: Iterable = [(m, draw, ids, q) for m, draw, ids in sets for q in queries]
    if progress is not None:
        jobs = progress(jobs, desc=task.name, total=len(sets) * len(queries))
    predictions = {}  # each support set prepared once (features, Eq. 2 fit, UniverSeg tensors), its queries together
    weak = {}
    for m, draw, support_ids, query in jobs:
        if (m, draw) not in predictions:
            support_images, true_masks = zip(*(load(i) for i in support_ids))
            masks = (
                true_masks if annotation is None else support_annotation(model, support_images, true_masks, annotation)
            )
            query_images, query_truths = zip(*(load(q) for q in queries))
            support = model.support_set(support_images, masks)
            predictions = {(m, draw): dict(zip(queries, model.predict_queries(support, query_images, query_truths)))}
            if annotation is not None:
                weak = {
                    "annotation": annotation,
                    "support_dice": float(np.mean([dice(a, b) for a, b in zip(masks, true_masks)])),
                }
        image, truth = load(query)
        rows += score_rows(
            predictions[(m, draw)][query], truth, with_assd, task=task.name, m=m, draw=draw, query=query, **weak
        )
    return pd.DataFrame(rows)


def run_weak_context(
    model: ICLSAM,
    task: Task,
    draws: pd.DataFrame,
    queries: Sequence[str],
    annotations: Sequence[str] = ANNOTATION_KINDS,
    progress=None,
) -> pd.DataFrame:
    """Weak context (not in the paper): `run_grid` (Dice only) once per kind of support annotation,
    on the same support sets and queries. Rows: task, m, draw, query, variant, dice, annotation,
    support_dice."""
    frames = [
        run_grid(model, task, draws, queries, with_assd=False, progress=progress, annotation=kind)
        for kind in annotations
    ]
    return pd.concat(frames, ignore_index=True).drop(columns="assd")


def task_protocol(
    task: Task, sizes: Sequence[int], draws: int, max_queries: int | None, seed: int = 0, support_fraction: float = 0.5
) -> tuple[pd.DataFrame, list[str]]:
    """The paper's protocol on one prepared task: its meta-support / query split (kept when meta.csv
    has one, else drawn by case), `draws` support sets per size from the meta-support pool, and the
    query images (a seeded subset of `max_queries`)."""
    try:
        meta = with_splits(task.meta, support_fraction, seed, key=task.name)
        if not (meta["split"] == "query").any():
            raise ValueError("no image is in the query split")
        sets = draw_supports(task.name, meta.loc[meta["split"] == "support", "id"], sizes, draws, seed)
    except ValueError as error:  # name the task and its file, whichever step refused it
        raise ValueError(f"task {task.name} ({task.root / 'meta.csv'}): {error}") from None
    return sets, select_queries(meta.loc[meta["split"] == "query", "id"], max_queries, seed)


SENSITIVITY_CONSTANTS = ("a", "b", "tau", "beta")


def run_sensitivity(
    model: ICLSAM,
    task: Task,
    draws: pd.DataFrame,
    queries: Sequence[str],
    values: dict[str, Sequence[float]],
    progress=None,
) -> pd.DataFrame:
    """Fig. 6: the full method's Dice while one constant (a, b, tau or beta) moves and the others
    keep the model's values. Rows: task, constant, value, m, draw, query, dice. The model's own
    constants are restored afterwards."""
    unknown = sorted(set(values) - set(SENSITIVITY_CONSTANTS))
    if unknown:
        raise ValueError(f"sensitivity constants must be among {SENSITIVITY_CONSTANTS}, got {unknown}")
    base = model.config
    frames = []
    try:
        for name, settings in values.items():
            for value in settings:
                model.config = dataclasses.replace(base, **{name: value})
                scores = run_grid(model, task, draws, queries, with_assd=False, progress=progress)
                scores = scores[scores["variant"] == "iclsam"]
                frames.append(scores.drop(columns=["variant", "assd"]).assign(constant=name, value=float(value)))
    finally:
        model.config = base
    return pd.concat(frames, ignore_index=True)


def example_support(draws: pd.DataFrame, task: str) -> tuple[int, int]:
    """Figs. 4/5's support set of a task, as (m, draw): the first draw of the middle support size."""
    sizes = sorted(draws.loc[draws["task"] == task, "m"].unique())
    return sizes[len(sizes) // 2], 0


def example_query(model: ICLSAM, task: Task, draws: pd.DataFrame, queries: Sequence[str]) -> dict:
    """Figs. 4/5's example of a task: its `example_support` on the first query, every variant.
    Returns task (a label), image, truth and prediction."""
    m, draw = example_support(draws, task.name)
    draws = draws[draws["task"] == task.name]
    chosen = draws[(draws["m"] == m) & (draws["draw"] == draw)].sort_values("rank")["id"]
    support = [task.load(i) for i in chosen]
    image, truth = task.load(sorted(queries)[0])
    prediction = model.predict([x for x, _ in support], [y for _, y in support], image, truth)
    return {"task": f"{task.name} (m = {m})", "image": image, "truth": truth, "prediction": prediction}


def save_examples(examples: dict[str, dict], path: str | Path) -> Path:
    """`example_query` results, by ICL model, as one .npz (what the figures draw), written atomically."""
    arrays = {}
    for icl, example in examples.items():
        prediction = example["prediction"]
        names = list(prediction.masks)
        fields = dict(
            task=example["task"],
            image=example["image"],
            truth=example["truth"],
            confidence=prediction.confidence,
            boxes=prediction.boxes,
            icl=prediction.icl,
            alpha=prediction.alpha,
            gamma=prediction.gamma,
            variants=np.array(names),
            masks=np.stack([prediction.masks[n] for n in names]),
            dice=np.array([prediction.dice[n] for n in names]),
        )
        arrays.update({f"{icl}.{key}": value for key, value in fields.items()})

    def write(partial):
        with open(partial, "wb") as handle:
            np.savez_compressed(handle, models=np.array(list(examples)), **arrays)

    return write_atomic(path, write)


def load_examples(path: str | Path, models: Sequence[str] | None = None) -> list[dict]:
    """What `save_examples` wrote, for `models` (default: all, as saved), each with its prediction
    as a `Prediction` and its task labelled with the ICL model."""
    with np.load(path, allow_pickle=False) as stored:
        saved = [str(m) for m in stored["models"]]
        out = []
        for icl in saved if models is None else [m for m in models if m in saved]:
            field = lambda key: stored[f"{icl}.{key}"]  # noqa: E731
            names = [str(n) for n in field("variants")]
            prediction = Prediction(
                masks=dict(zip(names, field("masks"))),
                boxes=field("boxes"),
                confidence=field("confidence"),
                icl=str(field("icl")),
                alpha=float(field("alpha")),
                gamma=float(field("gamma")),
                classifier=None,
                dice={n: float(d) for n, d in zip(names, field("dice"))},
            )
            out.append(
                {
                    "task": f"{field('task')}, {ICL_NAME.get(icl, icl)}",
                    "image": field("image"),
                    "truth": field("truth"),
                    "prediction": prediction,
                }
            )
        return out
