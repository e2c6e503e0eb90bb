"""Our results beside the paper's, table by table (long CSVs: one row per cell)."""

from __future__ import annotations

import pandas as pd

from iclsam.pipeline.report.paper import (
    ABLATION_ROW,
    PAPER_DATASET,
    PAPER_TASK,
    TABLE1_ROW,
    in_paper_order,
    paper_table,
    task_rank,
)


def per_draw_means(scores: pd.DataFrame, metric: str = "dice") -> pd.DataFrame:
    """Mean over queries for each (icl, task, variant, m, draw)."""
    keys = [k for k in ("icl", "task", "variant", "m", "draw") if k in scores.columns]
    return scores.groupby(keys, as_index=False)[metric].mean()


def ours_by_paper_task(scores: pd.DataFrame, metric: str = "dice") -> pd.DataFrame:
    """Our per-(icl, paper task, variant, m) means: over queries, then draws, then the source data
    sets that the paper averages (fundus)."""
    draws = per_draw_means(scores, metric)
    tasks = draws.groupby([c for c in ("icl", "task", "variant", "m") if c in draws.columns], as_index=False)[
        metric
    ].mean()
    tasks["paper_task"] = tasks["task"].map(PAPER_TASK)
    unknown = sorted(tasks.loc[tasks["paper_task"].isna(), "task"].unique())
    if unknown:
        raise ValueError(f"tasks with no counterpart in the paper: {unknown}")
    keys = [c for c in ("icl", "paper_task", "variant", "m") if c in tasks.columns]
    return tasks.groupby(keys, as_index=False)[metric].mean()


def side_by_side(ours: pd.DataFrame, paper: pd.DataFrame, keys: list[str], value: str = "dice") -> pd.DataFrame:
    """Ours, the paper's and the difference (ours - paper) for every m present in ours."""
    merged = ours.merge(paper, on=keys + ["m"], how="left", suffixes=("", "_paper"))
    merged = merged.rename(columns={value: "ours", f"{value}_paper": "paper"})
    merged["difference"] = merged["ours"] - merged["paper"]
    return merged


def paper_long(frame: pd.DataFrame, id_vars: list[str], value: str = "dice") -> pd.DataFrame:
    """A paper table with columns m1, m2, ... as rows (…, m, value)."""
    long = frame.melt(id_vars=id_vars, var_name="m", value_name=value)
    long["m"] = long["m"].str.lstrip("m").astype(int)
    return long.dropna(subset=[value])


def ablation_table(scores: pd.DataFrame) -> pd.DataFrame:
    """Tables 4-5: per paper task, every ablation variant vs the paper's MedSAM ablation rows."""
    ours = ours_by_paper_task(scores)
    ours = ours[ours["variant"].isin(list(ABLATION_ROW))].copy()
    ours["model"] = ours["variant"].map(ABLATION_ROW)
    paper = paper_long(paper_table("dice_per_task").drop(columns=["table"]), ["task", "model"])
    paper = paper.rename(columns={"task": "paper_task"})
    return in_paper_order(side_by_side(ours, paper, ["paper_task", "model"]))


def icl_backend_table(scores: pd.DataFrame) -> pd.DataFrame:
    """The ICL backends side by side: per paper task, the ICL model alone and the full method for each
    backend (rows labelled by `icl`), beside the paper's UniverSeg and MedSAM+UniverSeg rows."""
    ours = ours_by_paper_task(scores)
    alone = ours["variant"] == ours["icl"]  # "universeg", "features", "label-attention": the ICL model by itself
    ours = ours[alone | (ours["variant"] == "iclsam")].copy()
    ours["model"] = ours["variant"].map(lambda v: "+Fusion" if v == "iclsam" else "UniverSeg")
    paper = paper_long(paper_table("dice_per_task").drop(columns=["table"]), ["task", "model"])
    table = side_by_side(ours, paper.rename(columns={"task": "paper_task"}), ["paper_task", "model"])
    table["paper_model"] = table["model"].map({"UniverSeg": "UniverSeg (ICL alone)", "+Fusion": "MedSAM+UniverSeg"})
    return in_paper_order(table.drop(columns=["model"]))


def dataset_ablation_table(scores: pd.DataFrame) -> pd.DataFrame:
    """Our 'Table 2': the ablation averaged per data set. The paper's values here are the means of
    its Tables 4-5 rows over the data set's tasks (derived, not printed in the paper as such)."""
    table = ablation_table(scores)
    table["dataset"] = table["paper_task"].map(PAPER_DATASET)
    keys = [c for c in ("icl", "dataset", "model", "variant", "m") if c in table.columns]
    out = table.groupby(keys, as_index=False)[["ours", "paper"]].mean()
    out["difference"] = out["ours"] - out["paper"]
    return in_paper_order(out)


def table1(scores: pd.DataFrame, sam: str) -> pd.DataFrame:
    """Table 1: per data set, each ICL model alone and inside the full method (ICL model + SAM
    backbone), beside the paper's UniverSeg and UniverSeg+<backbone> rows."""
    ours = ours_by_paper_task(scores)
    ours = ours[(ours["variant"] == ours["icl"]) | (ours["variant"] == "iclsam")].copy()
    ours["dataset"] = ours["paper_task"].map(PAPER_DATASET)
    ours = ours.groupby(["icl", "dataset", "variant", "m"], as_index=False)["dice"].mean()
    ours["model"] = ours["variant"].map(
        lambda v: TABLE1_ROW["iclsam"][sam] if v == "iclsam" else TABLE1_ROW["universeg"]
    )
    paper = paper_long(paper_table("dice_table1"), ["dataset", "model"])
    return in_paper_order(side_by_side(ours, paper, ["dataset", "model"]))


def gt_box_table(scores: pd.DataFrame, sam: str) -> pd.DataFrame:
    """The SAM upper bound: the backbone with ground-truth boxes, per paper task (mean over m)."""
    ours = ours_by_paper_task(scores)
    ours = ours[ours["variant"] == "sam+gt"].groupby("paper_task", as_index=False)["dice"].mean()
    column = "SAM+GT" if sam == "sam" else "MedSAM+GT"
    paper = paper_table("gt_box_upper_bound").rename(columns={"task": "paper_task", column: "paper"})
    out = ours.rename(columns={"dice": "ours"}).merge(paper[["paper_task", "paper"]], on="paper_task", how="left")
    out["paper_model"] = column
    out["difference"] = out["ours"] - out["paper"]
    return out


def weak_context_table(scores: pd.DataFrame, seconds: dict[str, float]) -> pd.DataFrame:
    """Weak context (not in the paper): per task, support annotation and m, the full method's Dice
    (`ours`, mean over draws of the per-query mean), the same as a fraction of the mask-annotated
    support's (`of_mask`), the densified support masks' Dice with the truth (`support_dice`) and the
    annotation time of the support set (`seconds`: m x `seconds[annotation]`). A `mean` task averages
    the tasks."""
    full = scores[scores["variant"] == "iclsam"]
    keys = [k for k in ("icl", "task", "annotation", "m") if k in full.columns]
    per_draw = full.groupby([*keys, "draw"], as_index=False)[["dice", "support_dice"]].mean()
    table = per_draw.groupby(keys, as_index=False)[["dice", "support_dice"]].mean().rename(columns={"dice": "ours"})
    outer = [k for k in keys if k != "task"]
    table = pd.concat(
        [table, table.groupby(outer, as_index=False)[["ours", "support_dice"]].mean().assign(task="mean")],
        ignore_index=True,
    )
    same = [k for k in keys if k != "annotation"]
    masks = table.loc[table["annotation"] == "mask", [*same, "ours"]].rename(columns={"ours": "mask"})
    table = table.merge(masks, on=same, how="left")
    table["of_mask"] = (table["ours"] / table["mask"].where(table["mask"] > 0)).astype(float)
    table = table.drop(columns="mask")
    table["seconds"] = (table["m"] * table["annotation"].map(seconds)).round().astype(int)
    table["_task"] = table["task"] == "mean"
    table["_kind"] = -table["annotation"].map(seconds)  # the costliest annotation first
    table = table.sort_values([k for k in ("icl",) if k in table] + ["_task", "task", "_kind", "m"], kind="stable")
    return table.drop(columns=["_task", "_kind"]).reset_index(drop=True)


def empty_prediction_counts(scores: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Per row of `keys` (over data sets): how many predictions were empty (their ASSD is undefined
    and left out of the mean) out of how many."""
    rows = scores.assign(empty=scores["assd"].isna(), dataset=scores["task"].map(PAPER_TASK).map(PAPER_DATASET))
    return rows.groupby(keys, as_index=False).agg(empty_predictions=("empty", "sum"), predictions=("empty", "size"))


def assd_table(scores: pd.DataFrame, sam: str) -> pd.DataFrame:
    """Table 6: ASSD (pixels at 512 x 512) per data set, UniverSeg and the full method, over the
    non-empty predictions, with the count of empty ones beside it."""
    ours = ours_by_paper_task(scores, "assd")
    ours = ours[(ours["variant"] == ours["icl"]) | ours["variant"].isin(["iclsam", "sam+gt"])].copy()
    ours["dataset"] = ours["paper_task"].map(PAPER_DATASET)
    keys = [c for c in ("icl", "dataset", "variant", "m") if c in ours.columns]
    ours = ours.groupby(keys, as_index=False)["assd"].mean()
    ours = ours.merge(empty_prediction_counts(scores, keys), on=keys, how="left")
    backbone = "SAM" if sam == "sam" else "MedSAM"
    names = {
        "universeg": "UniverSeg",
        "features": "UniverSeg",
        "label-attention": "UniverSeg",
        "iclsam": f"UniverSeg+{backbone}",
        "sam+gt": f"{backbone}+GT",
    }
    ours["model"] = ours["variant"].map(names)
    paper = paper_long(paper_table("assd_table6"), ["dataset", "model"], "assd")
    return in_paper_order(side_by_side(ours, paper, ["dataset", "model"], "assd"))


def per_backbone(scores: pd.DataFrame, build) -> pd.DataFrame:
    """`build(scores of one SAM backbone, backbone)` for each backbone in `scores`, stacked, with a
    `sam` column."""
    return pd.concat(
        [build(part.drop(columns="sam"), sam).assign(sam=sam) for sam, part in scores.groupby("sam", sort=True)],
        ignore_index=True,
    )


def dice_by_m(scores: pd.DataFrame, icl: str, variant: str) -> pd.DataFrame:
    """One ICL model's variant ("alone": the ICL model itself) as a wide table for `dvc plots`: a row
    per m, a column per task (mean over draws of the per-query mean), tasks in the paper's order."""
    variant = icl if variant == "alone" else variant
    draws = per_draw_means(scores[(scores["icl"] == icl) & (scores["variant"] == variant)])
    wide = draws.groupby(["m", "task"])["dice"].mean().unstack("task")
    return wide[sorted(wide.columns, key=task_rank)].reset_index().rename_axis(columns=None)


def sam_gt_once(table: pd.DataFrame, icl_first: str) -> pd.DataFrame:
    """SAM with ground-truth boxes does not depend on the ICL model: its rows of `icl_first` only."""
    return table[(table["variant"] != "sam+gt") | (table["icl"] == icl_first)]
