"""Our results beside the paper's: every table as CSV and Markdown with the paper's number, ours and
the difference, stating its data, weights and profile."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .atomic import write_atomic

PAPER_DIR = Path(__file__).resolve().parent / "paper"

# our task -> the paper's task (fundus tasks of the three source data sets are averaged, as the paper does)
PAPER_TASK = {
    "fundus_disc": "fundus_disc", "fundus_cup": "fundus_cup",
    "refuge_disc": "fundus_disc", "rimone_disc": "fundus_disc", "drishti_disc": "fundus_disc",
    "refuge_cup": "fundus_cup", "rimone_cup": "fundus_cup", "drishti_cup": "fundus_cup",
    "brain_flair": "brats_flair", "brain_t1": "brats_t1", "brain_t1ce": "brats_t1ce", "brain_t2": "brats_t2",
    "brats_flair": "brats_flair", "brats_t1": "brats_t1", "brats_t1ce": "brats_t1ce", "brats_t2": "brats_t2",
    "ct_kidney": "kits23", "kits23": "kits23",
}
PAPER_DATASET = {"fundus_disc": "fundus", "fundus_cup": "fundus", "brats_flair": "brats", "brats_t1": "brats",
                 "brats_t1ce": "brats", "brats_t2": "brats", "kits23": "kits23"}
# our variant -> the paper's row in Tables 4-5 (the MedSAM ablation; LiteMedSAM is compared with it)
# (the ICL model alone, UniverSeg or the training-free features backend, stands beside the paper's UniverSeg row)
ABLATION_ROW = {"universeg": "UniverSeg", "features": "UniverSeg", "universeg+conf": "+Confidence map in UniverSeg",
                "sam": "+MedSAM", "sam+conf": "+Confidence map in MedSAM", "iclsam": "+Fusion"}
TABLE1_ROW = {"universeg": "UniverSeg", "iclsam": {"sam": "UniverSeg+SAM", "medsam": "UniverSeg+MedSAM",
                                                   "lite": "UniverSeg+MedSAM"}}
# the paper's order of rows: data sets and tasks as in its tables, variants as the ablation adds them
DATASET_ORDER = ("fundus", "brats", "kits23")
TASK_ORDER = ("fundus_disc", "fundus_cup", "brats_flair", "brats_t1", "brats_t1ce", "brats_t2", "kits23")
VARIANT_ORDER = ("universeg", "features", "universeg+conf", "sam", "sam+conf", "iclsam", "sam+gt")
ICL_NAME = {"universeg": "UniverSeg", "features": "features (training-free)"}
VARIANT_NAME = {"universeg": "ICL alone", "features": "ICL alone", "universeg+conf": "+ map in UniverSeg (Eq. 4)",
                "sam": "+ SAM, boxes", "sam+conf": "+ map in SAM (Eq. 3)", "iclsam": "+ fusion: ICL-SAM",
                "sam+gt": "SAM + GT boxes"}
BACKBONE_NAME = {"lite": "LiteMedSAM", "sam": "SAM", "medsam": "MedSAM"}


@dataclass(frozen=True)
class Provenance:
    """What every table and figure states."""

    data: str  # e.g. "SYNTHETIC benchmark (seed 0)" or "REFUGE, RIM-ONE r3, Drishti-GS1, BraTS2020, KiTS23"
    sam: str  # SAM backbone in words
    icl_weights: str
    profile: str

    def line(self) -> str:
        return (f"Data: {self.data}. SAM backbone: {self.sam}. ICL weights: {self.icl_weights}. "
                f"Profile: {self.profile}.")

    @property
    def is_paper_reproduction(self) -> bool:
        return self.profile == "paper" and "SYNTHETIC" not in self.data and "iclsam" not in self.icl_weights


def paper_table(name: str) -> pd.DataFrame:
    return pd.read_csv(PAPER_DIR / f"{name}.csv")


def per_draw_means(scores: pd.DataFrame, metric: str = "dice") -> pd.DataFrame:
    """Mean over queries for each (icl, task, variant, m, draw)."""
    keys = [k for k in ("icl", "task", "variant", "m", "draw") if k in scores.columns]
    return scores.groupby(keys, as_index=False)[metric].mean()


def ours_by_paper_task(scores: pd.DataFrame, metric: str = "dice") -> pd.DataFrame:
    """Our per-(icl, paper task, variant, m) means: over queries, then draws, then the source data
    sets that the paper averages (fundus)."""
    draws = per_draw_means(scores, metric)
    tasks = draws.groupby([c for c in ("icl", "task", "variant", "m") if c in draws.columns], as_index=False)[metric].mean()
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
    alone = ours["variant"] == ours["icl"]  # "universeg" or "features": the ICL model by itself
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
    ours["model"] = ours["variant"].map(lambda v: TABLE1_ROW["iclsam"][sam] if v == "iclsam" else TABLE1_ROW["universeg"])
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
    table = pd.concat([table, table.groupby(outer, as_index=False)[["ours", "support_dice"]].mean().assign(task="mean")],
                      ignore_index=True)
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


def weak_context_markdown(table: pd.DataFrame, digits: int = 3) -> str:
    """`weak_context_table` in a reader's shape: rows task / ICL model / m, a column of the full
    method's Dice per support annotation, then each weak annotation's fraction of the masks'."""
    kinds = list(dict.fromkeys(table["annotation"]))
    ratios = [k for k in kinds if k != "mask"] if "mask" in kinds else []
    lines = ["| task | ICL model | m | " + " | ".join(kinds) + "".join(f" | {k} / mask" for k in ratios) + " |",
             "|" + "---|" * (3 + len(kinds) + len(ratios))]
    for (icl, task, m), rows in table.groupby(["icl", "task", "m"], sort=False):
        ours, of_mask = dict(zip(rows["annotation"], rows["ours"])), dict(zip(rows["annotation"], rows["of_mask"]))
        cells = [f"{ours[k]:.{digits}f}" if k in ours else "" for k in kinds]
        cells += [f"{of_mask[k]:.{digits - 1}f}" if k in of_mask else "" for k in ratios]
        lines.append(f"| {task} | {icl} | {m} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


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
    names = {"universeg": "UniverSeg", "features": "UniverSeg", "iclsam": f"UniverSeg+{backbone}", "sam+gt": f"{backbone}+GT"}
    ours["model"] = ours["variant"].map(names)
    paper = paper_long(paper_table("assd_table6"), ["dataset", "model"], "assd")
    return in_paper_order(side_by_side(ours, paper, ["dataset", "model"], "assd"))


def task_rank(task: str) -> tuple[int, str]:
    """Where one of our tasks sorts: by its paper task (`TASK_ORDER`), then by name."""
    known = {t: i for i, t in enumerate(TASK_ORDER)}
    return known.get(PAPER_TASK.get(task, task), len(known)), str(task)


def in_paper_order(frame: pd.DataFrame, icl_first: str | None = None) -> pd.DataFrame:
    """Rows in the paper's order: backbone, data set, task (`DATASET_ORDER`, `TASK_ORDER`), ICL model
    (`icl_first` first, then by name), variant (`VARIANT_ORDER`), m; unknown values after known ones."""
    def rank(column, order):
        known = {v: i for i, v in enumerate(order)}
        return frame[column].map(lambda v: (known.get(v, len(known)), str(v)))

    orders = {"sam": (), "dataset": DATASET_ORDER, "paper_task": TASK_ORDER, "task": None,
              "icl": (icl_first,) if icl_first else (), "variant": VARIANT_ORDER, "m": ()}
    keys = [c for c in orders if c in frame.columns]
    ranks = [frame[c].map(task_rank) if orders[c] is None else rank(c, orders[c])
             if orders[c] or frame[c].dtype == object else frame[c] for c in keys]
    per_row = list(zip(*ranks)) if keys else [()] * len(frame)
    order = sorted(range(len(frame)), key=per_row.__getitem__)
    return frame.iloc[order].reset_index(drop=True)


def paper_shaped_markdown(table: pd.DataFrame, rows: list[tuple[str, str]], value: str = "ours",
                          reference: str = "paper", digits: int = 3, icl_first: str | None = None) -> str:
    """A long table in the paper's own shape: one row per combination of the `rows` columns (column,
    header), in the paper's order (`in_paper_order`), one column per m, each cell "ours (paper)"
    (just "ours" where the paper has no number). The SAM backbone leads when there are several."""
    if "sam" in table.columns and table["sam"].nunique() > 1:
        rows = [("sam", "SAM backbone"), *rows]
    table = in_paper_order(table, icl_first)
    sizes = sorted(table["m"].unique())
    names = {"icl": ICL_NAME, "sam": BACKBONE_NAME, "variant": VARIANT_NAME}

    def cell(by_m, m):
        if m not in by_m.index or pd.isna(by_m.at[m, value]):
            return ""
        ours, paper = by_m.at[m, value], by_m.at[m, reference] if reference in by_m.columns else np.nan
        return f"{ours:.{digits}f}" + ("" if pd.isna(paper) else f" ({paper:.{digits}f})")

    keys = [c for c, _ in rows]
    lines = [f"Each cell: ours ({reference if reference != 'paper' else 'the paper'}).", "",
             "| " + " | ".join(h for _, h in rows) + " | " + " | ".join(f"m = {m}" for m in sizes) + " |",
             "|" + "---|" * (len(rows) + len(sizes))]
    for key, group in table.groupby(keys, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        labels = [names.get(c, {}).get(k, str(k)) for c, k in zip(keys, key)]
        by_m = group.set_index("m")
        lines.append("| " + " | ".join(labels) + " | " + " | ".join(cell(by_m, m) for m in sizes) + " |")
    return "\n".join(lines)


def to_markdown(frame: pd.DataFrame, digits: int = 4) -> str:
    """A Markdown table (no extra dependency), numbers rounded, missing values blank."""
    def cell(v):
        if isinstance(v, (float, np.floating)):
            return "" if np.isnan(v) else f"{v:.{digits}f}"
        return str(v)

    header = "| " + " | ".join(frame.columns) + " |"
    rule = "|" + "---|" * len(frame.columns)
    return "\n".join([header, rule] + ["| " + " | ".join(cell(v) for v in row) + " |"
                                       for row in frame.itertuples(index=False)])


COLUMN_ORDER = ("sam", "icl", "dataset", "paper_task", "task", "model", "paper_model", "variant", "annotation", "m",
                "ours", "paper", "difference")


def write_table(frame: pd.DataFrame, stem: str | Path, title: str, provenance: Provenance,
                markdown: str | None = None) -> None:
    """`<stem>.csv` and `<stem>.md` (title, provenance, table: `markdown`, else the frame as it is),
    written atomically."""
    first = [c for c in COLUMN_ORDER if c in frame.columns]
    frame = frame[first + [c for c in frame.columns if c not in first]]
    stem = Path(stem)
    note = "" if provenance.is_paper_reproduction or "paper" not in frame.columns else (
        "\n\n**Not a paper reproduction**: the paper's numbers are shown beside results on other data "
        "and/or other weights.")
    text = f"# {title}\n\n{provenance.line()}{note}\n\n{markdown or to_markdown(frame)}\n"
    for suffix, write in ((".csv", lambda p: frame.to_csv(p, index=False, float_format="%.6g")),
                          (".md", lambda p: p.write_text(text))):
        write_atomic(stem.with_suffix(suffix), write)


def per_backbone(scores: pd.DataFrame, build) -> pd.DataFrame:
    """`build(scores of one SAM backbone, backbone)` for each backbone in `scores`, stacked, with a
    `sam` column."""
    return pd.concat([build(part.drop(columns="sam"), sam).assign(sam=sam)
                      for sam, part in scores.groupby("sam", sort=True)], ignore_index=True)


def dice_by_m(scores: pd.DataFrame, icl: str, variant: str) -> pd.DataFrame:
    """One ICL model's variant ("alone": the ICL model itself) as a wide table for `dvc plots`: a row
    per m, a column per task (mean over draws of the per-query mean), tasks in the paper's order."""
    variant = icl if variant == "alone" else variant
    draws = per_draw_means(scores[(scores["icl"] == icl) & (scores["variant"] == variant)])
    wide = draws.groupby(["m", "task"])["dice"].mean().unstack("task")
    return wide[sorted(wide.columns, key=task_rank)].reset_index().rename_axis(columns=None)


def dice_metrics(scores: pd.DataFrame, icl_first: str) -> dict:
    """The Dice part of metrics.json (`dvc metrics show / diff`): per ICL model, the mean over tasks
    of the ICL model alone, the full method and SAM with GT boxes at each m; per task, the full
    method of the default ICL model (`icl_first`) at each m. Rounded to 4 digits."""
    def by_m(frame):
        return {f"m{int(m)}": round(float(v), 4) for m, v in frame.items()}

    out = {"mean_over_tasks": {}, "full_method_per_task": {}}
    for icl in sorted(scores["icl"].unique(), key=lambda i: (i != icl_first, i)):
        out["mean_over_tasks"][icl] = {name: by_m(dice_by_m(scores, icl, variant).set_index("m").mean(axis=1))
                                       for name, variant in (("icl_alone", "alone"), ("iclsam", "iclsam"), ("sam_gt", "sam+gt"))}
    full = dice_by_m(scores, icl_first, "iclsam").set_index("m")
    out["full_method_per_task"] = {task: by_m(full[task]) for task in full.columns}
    return out


def run_summary(profile: str, records: list[dict], backbones: int) -> dict:
    """metrics.json: encoder passes against unique images and backbones, from the grid's run records
    (timings stay in the untracked run records, so the same run gives the same file)."""
    images = set().union(*(r["images"] for r in records))
    passes = sum(r["encoder_passes"] for r in records)
    return {"profile": profile, "encoder_passes": passes,
            "encoder_cache_hits": sum(r["encoder_cache_hits"] for r in records),
            "unique_images": len(images), "backbones": backbones,
            "encoder_passes_per_image_and_backbone": round(passes / max(len(images) * backbones, 1), 4)}


# across CPUs (measured between two x86_64 machines on the default profile: Dice up to 2.8e-4, ASSD up
# to 0.0132 px), floating-point sums differ in their last bits and a few masks by a pixel
TOLERANCE = {"dice": 1e-3, "assd": 0.05}


def compare_tables(tables: str | Path, reference: str | Path, tolerance: dict[str, float] = TOLERANCE) -> list[str]:
    """Differences between two folders of our CSV tables beyond `tolerance` (ASSD tables: "assd",
    the others: "dice"), in words; empty when they agree. Text cells must be equal, and every table on
    either side must have its match. A missing or table-less folder is an error: comparing against
    nothing proves nothing."""
    tables, reference = Path(tables), Path(reference)
    for what, folder in (("tables", tables), ("reference", reference)):
        if not folder.is_dir():
            raise ValueError(f"{what} folder {folder} not found")
        if not any(folder.glob("*.csv")):
            raise ValueError(f"{what} folder {folder} holds no CSV table; nothing to compare")
    ours_only = sorted({p.name for p in tables.glob("*.csv")} - {p.name for p in reference.glob("*.csv")})
    problems = [f"{tables / name}: not in the reference {reference}" for name in ours_only]
    for expected_path in sorted(reference.glob("*.csv")):
        path = tables / expected_path.name
        if not path.is_file():
            problems.append(f"{path}: missing")
            continue
        problems += _compare_table(path, expected_path, tolerance["assd" if "assd" in path.name else "dice"])
    return problems


def read_table(path: Path) -> pd.DataFrame:
    """A CSV table, or an error naming the file."""
    try:
        return pd.read_csv(path)
    except (ValueError, OSError, UnicodeDecodeError) as error:  # pandas' parser errors are ValueErrors
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ValueError(f"{path}: not a readable CSV table ({first})") from None


def _compare_table(path: Path, expected_path: Path, limit: float) -> list[str]:
    ours, expected = read_table(path), read_table(expected_path)
    if list(ours.columns) != list(expected.columns) or len(ours) != len(expected):
        return [f"{path}: {len(ours)} rows {list(ours.columns)}, reference {len(expected)} rows "
                f"{list(expected.columns)}"]
    problems = []
    for column in ours.columns:
        a, b = ours[column], expected[column]
        if a.dtype.kind in "fi" and b.dtype.kind in "fi":
            gap = (a - b).abs().where(~(a.isna() & b.isna()), 0.0)
            if gap.isna().any() or gap.max() > limit:
                problems.append(f"{path}: column {column} differs by up to {gap.max():.3g} (tolerance {limit:g})")
        elif not a.astype(str).equals(b.astype(str)):
            problems.append(f"{path}: column {column} differs in text")
    return problems
