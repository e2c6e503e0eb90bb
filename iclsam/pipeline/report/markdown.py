"""Tables as Markdown in the paper's shape, and writing a table (CSV + Markdown) with its provenance."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from iclsam.common.atomic import write_atomic
from iclsam.pipeline.report.paper import BACKBONE_NAME, ICL_NAME, VARIANT_NAME, Provenance, in_paper_order


def weak_context_markdown(table: pd.DataFrame, digits: int = 3) -> str:
    """`weak_context_table` in a reader's shape: rows task / ICL model / m, a column of the full
    method's Dice per support annotation, then each weak annotation's fraction of the masks'."""
    kinds = list(dict.fromkeys(table["annotation"]))
    ratios = [k for k in kinds if k != "mask"] if "mask" in kinds else []
    lines = [
        "| task | ICL model | m | " + " | ".join(kinds) + "".join(f" | {k} / mask" for k in ratios) + " |",
        "|" + "---|" * (3 + len(kinds) + len(ratios)),
    ]
    for (icl, task, m), rows in table.groupby(["icl", "task", "m"], sort=False):
        ours, of_mask = dict(zip(rows["annotation"], rows["ours"])), dict(zip(rows["annotation"], rows["of_mask"]))
        cells = [f"{ours[k]:.{digits}f}" if k in ours else "" for k in kinds]
        cells += [f"{of_mask[k]:.{digits - 1}f}" if k in of_mask else "" for k in ratios]
        lines.append(f"| {task} | {icl} | {m} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def paper_shaped_markdown(
    table: pd.DataFrame,
    rows: list[tuple[str, str]],
    value: str = "ours",
    reference: str = "paper",
    digits: int = 3,
    icl_first: str | None = None,
) -> str:
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
    lines = [
        f"Each cell: ours ({reference if reference != 'paper' else 'the paper'}).",
        "",
        "| " + " | ".join(h for _, h in rows) + " | " + " | ".join(f"m = {m}" for m in sizes) + " |",
        "|" + "---|" * (len(rows) + len(sizes)),
    ]
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
    return "\n".join(
        [header, rule] + ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    )


COLUMN_ORDER = (
    "sam",
    "icl",
    "dataset",
    "paper_task",
    "task",
    "model",
    "paper_model",
    "variant",
    "annotation",
    "m",
    "ours",
    "paper",
    "difference",
)


def write_table(
    frame: pd.DataFrame, stem: str | Path, title: str, provenance: Provenance, markdown: str | None = None
) -> None:
    """`<stem>.csv` and `<stem>.md` (title, provenance, table: `markdown`, else the frame as it is),
    written atomically."""
    first = [c for c in COLUMN_ORDER if c in frame.columns]
    frame = frame[first + [c for c in frame.columns if c not in first]]
    stem = Path(stem)
    note = (
        ""
        if provenance.is_paper_reproduction or "paper" not in frame.columns
        else (
            "\n\n**Not a paper reproduction**: the paper's numbers are shown beside results on other data "
            "and/or other weights."
        )
    )
    text = f"# {title}\n\n{provenance.line()}{note}\n\n{markdown or to_markdown(frame)}\n"
    for suffix, write in (
        (".csv", lambda p: frame.to_csv(p, index=False, float_format="%.6g")),
        (".md", lambda p: p.write_text(text)),
    ):
        write_atomic(stem.with_suffix(suffix), write)
