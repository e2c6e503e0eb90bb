"""False regions of the pseudo-label (issue 27, item 3): how much they cost, and which cheap rule
drops them. For each support set and query of the ten-set protocol (features ICL model, LiteMedSAM,
the defaults with the paper's `box_min_area` 0.05), the pseudo-label's boxes are filtered several ways and SAM + Eq. 1 run on each:

- `current`: the paper's 5 % region rule, then `box_confidence` (the defaults before `box_min_area` 0.2);
- `oracle`: only the boxes whose region touches the query's truth (the headroom; not a method);
- `area_<t>`: a box only for regions above t of the largest (`box_min_area`), then `box_confidence`;
- `footprint_<r>`: only the boxes whose region touches the support masks' union, dilated by r of
  the image side (a position prior).

Each box of the default rule is also a row of a candidate table (is its region on the target; its
peak and mean confidence; its area against the largest region and against the support targets), and
the area under the ROC curve of each feature for "on the target" is printed per set.

    python benchmarks/false_regions.py [--data .cache/real-dev-all] [--m 1 4 8] [--draws 2] [--queries 8]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy import ndimage
from sklearn.metrics import roc_auc_score

from iclsam import ICLSAM
from iclsam.common.atomic import write_csv_atomic, write_text_atomic
from iclsam.common.metrics import dice
from iclsam.data.folder import open_tasks
from iclsam.method.figure1 import BOX_CONFIDENCE_FROM_M, run_figure1
from iclsam.method.prompts import PAPER_MIN_FRACTION, boxes_from_pseudo_label, confident_boxes
from iclsam.pipeline.protocol import image_loader, support_sets, task_protocol

AREAS, MARGINS = (0.1, 0.2, 0.3, 0.5), (0.0, 0.1)
FEATURES = ("peak", "mean", "area_of_largest", "area_of_support")


def region(box, pseudo: np.ndarray) -> np.ndarray:
    """The pseudo-label inside a box."""
    x0, y0, x1, y1 = box
    out = np.zeros_like(pseudo)
    out[y0 : y1 + 1, x0 : x1 + 1] = pseudo[y0 : y1 + 1, x0 : x1 + 1]
    return out


def footprint(masks, shape, margin: float) -> np.ndarray:
    """The union of the support masks on the query's grid, dilated by `margin` of its longer side."""
    union = np.zeros(shape, bool)
    for mask in masks:
        x = torch.as_tensor(np.asarray(mask, np.float32))[None, None]
        union |= torch.nn.functional.interpolate(x, size=shape, mode="nearest")[0, 0].numpy() > 0.5
    steps = int(round(margin * max(shape)))
    return ndimage.binary_dilation(union, iterations=steps) if steps else union


def kept(boxes: np.ndarray, keep) -> np.ndarray:
    """The boxes `keep` marks; all of them when it marks none."""
    keep = np.asarray(keep, bool)
    return boxes[keep] if keep.any() else boxes


def box_variants(model, support, state, masks, truth) -> dict[str, np.ndarray]:
    pseudo, boxes = state.masks[model.icl_model.map_variant], state.boxes
    regions = [region(b, pseudo) for b in boxes]
    variants = {"current": boxes, "oracle": kept(boxes, [(r & truth).any() for r in regions])}
    for t in AREAS:
        b = boxes_from_pseudo_label(pseudo, t)
        if model.config.box_confidence is not None and support.m >= BOX_CONFIDENCE_FROM_M:
            b = confident_boxes(b, state.confidence.numpy(), model.config.box_confidence)
        variants[f"area_{t}"] = b
    for r in MARGINS:
        near = footprint(masks, pseudo.shape, r)
        variants[f"footprint_{r}"] = kept(boxes, [(g & near).any() for g in regions])
    return variants


def candidate_rows(state, pseudo, masks, truth) -> list[dict]:
    """One row per box of the paper's rule: features and whether its region is on the target."""
    boxes, confidence = boxes_from_pseudo_label(pseudo), state.confidence.numpy()
    regions = [region(b, pseudo) for b in boxes]
    support_area = np.mean([m.mean() for m in masks])
    rows = []
    for r in regions:
        inside = confidence[r]
        rows.append(
            {
                "on_target": bool((r & truth).any()),
                "peak": float(inside.max()),
                "mean": float(inside.mean()),
                "area_of_largest": r.sum() / max(regions[0].sum(), 1),
                "area_of_support": r.mean() / max(support_area, 1e-9),
            }
        )
    return rows


def run(data: str, sizes, draws: int, queries: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    model = ICLSAM(sam="lite", icl="features", cache_dir=".cache/embeddings", box_min_area=PAPER_MIN_FRACTION)
    scores, candidates = [], []
    for task in open_tasks(data):
        sets, query_ids = task_protocol(task, sizes, draws, queries, 0)
        load = image_loader(task)
        for m, draw, ids in support_sets(task, sets):
            images, masks = zip(*(load(i) for i in ids))
            support = model.support_set(images, masks)
            for q in query_ids:
                image, truth = load(q)
                state = run_figure1(model, support, model.query_state(support, image, truth, {"iclsam"}), until="boxes")
                keys = {"task": task.name, "m": m, "draw": draw, "query": q}
                pseudo = state.masks[model.icl_model.map_variant]
                candidates += [keys | row for row in candidate_rows(state, pseudo, masks, truth)]
                for name, boxes in box_variants(model, support, state, masks, truth).items():
                    trial = model.query_state(support, image, truth, {"iclsam"})
                    run_figure1(model, support, trial, box_rule=lambda _state, b=boxes: b, until="fusion")
                    scores.append(keys | {"variant": name, "dice": dice(trial.masks["iclsam"], truth)})
    return pd.DataFrame(scores), pd.DataFrame(candidates)


def report(scores: pd.DataFrame, candidates: pd.DataFrame, args) -> str:
    table = scores.pivot_table(index=["task", "m"], columns="variant", values="dice", sort=False)
    change = table.drop(columns="current").sub(table["current"], axis=0)
    auc = {
        task: {f: roc_auc_score(g["on_target"], g[f]) for f in FEATURES}
        for task, g in candidates.groupby("task")
        if g["on_target"].nunique() == 2
    }
    summary = pd.DataFrame({"mean": table.mean(), "worst change": change.min().reindex(table.columns)})
    return (
        f"# False regions of the pseudo-label ({args.data}; m = {args.m}; {args.draws} draws x up to "
        f"{args.queries} queries; LiteMedSAM, features ICL model)\n\n## Full-method Dice by box rule\n\n"
        + table.round(3).to_markdown()
        + "\n\n## Change against the current boxes\n\n"
        + change.round(3).to_markdown()
        + "\n\n## Over all cells\n\n"
        + summary.round(4).to_markdown()
        + "\n\n## Area under the ROC curve of each box feature for 'its region is on the target'\n\n"
        + pd.DataFrame(auc).T.round(3).to_markdown()
        + "\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=".cache/real-dev-all")
    parser.add_argument("--m", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--draws", type=int, default=2)
    parser.add_argument("--queries", type=int, default=8)
    parser.add_argument("--out", default="benchmarks/defaults")
    args = parser.parse_args()
    scores, candidates = run(args.data, args.m, args.draws, args.queries)
    out = Path(args.out)
    write_csv_atomic(scores, out / "false_regions.csv")
    write_csv_atomic(candidates, out / "false_region_candidates.csv")
    text = report(scores, candidates, args)
    write_text_atomic(out / "false_regions.md", text)
    print(text)


if __name__ == "__main__":
    main()
