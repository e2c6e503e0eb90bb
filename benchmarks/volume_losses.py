"""Where a volume's Dice is lost (issue 43, item 1): from `evaluate-volumes --per-slice` rows, each
slice group's share of the 3-D error, pooled over a set's cases: the errors of a slice are
(|truth| + |prediction|)(1 - Dice), and the groups' shares add up to 1 - the pooled 3-D Dice.
Groups: where the slice lies (annotated, between annotated slices, beyond the outermost ones) and
its target's area against the case's largest cross-section.

    python benchmarks/volume_losses.py SLICES.csv [MORE.csv ...] [--out table.md]
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

AREA_BINS = [-1.0, 0.0, 0.25, 0.5, 1.01]
AREA_NAMES = ["none", "<25%", "25-50%", ">=50%"]


def slice_groups(rows: pd.DataFrame) -> pd.DataFrame:
    """One method on one case: each slice's place, its target's area bin and its errors."""
    marks = rows.loc[rows.distance == 0, "slice"]
    out = rows.copy()
    beyond = (out.slice < marks.min()) | (out.slice > marks.max())
    out["where"] = np.where(out.distance == 0, "annotated", np.where(beyond, "beyond", "between"))
    share = out.truth_pixels / max(out.truth_pixels.max(), 1)
    out["area"] = pd.cut(share, AREA_BINS, labels=AREA_NAMES).astype(str)
    out["errors"] = (out.truth_pixels + out.predicted_pixels) * (1 - out.dice.fillna(1.0))
    return out


def losses(rows: pd.DataFrame) -> pd.DataFrame:
    """Per set, method, place and area bin: the share of the pooled 3-D error, and the slices."""
    grouped = pd.concat([slice_groups(g) for _, g in rows.groupby(["method", "set", "case"])])
    size = grouped.groupby(["set", "method"]).apply(lambda g: (g.truth_pixels + g.predicted_pixels).sum())
    table = grouped.groupby(["set", "method", "where", "area"]).agg(errors=("errors", "sum"), slices=("slice", "size"))
    table["share"] = table.errors / size.reindex(table.index.droplevel([2, 3])).to_numpy()
    return table.reset_index()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("slices", nargs="+", help="per-slice CSVs of evaluate-volumes")
    parser.add_argument("--out", help="write the table as Markdown here")
    args = parser.parse_args()
    rows = pd.concat([pd.read_csv(f) for f in args.slices])
    table = losses(rows)
    wide = table.pivot_table(index=["set", "where", "area"], columns="method", values="share", fill_value=0.0)
    wide["slices"] = table.groupby(["set", "where", "area"]).slices.max()
    text = wide.reset_index().to_markdown(index=False, floatfmt=".3f")
    print(text)
    if args.out:
        from iclsam.common.atomic import write_text_atomic

        write_text_atomic(args.out, text + "\n")


if __name__ == "__main__":
    main()
