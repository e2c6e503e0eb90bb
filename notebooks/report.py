# %% [markdown]
# # Stage `report`: Tables 1, 6 and the GT-box upper bound; Figs. 3 and 4/5; metrics
#
# Every table sits beside the paper's numbers, in the paper's shape (rows data set x model, columns
# m, each cell "ours (paper)"; the CSVs beside them are long, with the difference), and says which
# data, weights and profile produced it. This stage only renders: the scores, the example
# predictions of Figs. 4/5 and the run records all come from the grid stage.

# %% tags=["parameters"]
params_file = "params.yaml"
grid_dir = "results/grid"
tables = "tables"
figures = "figures"
metrics = "metrics.json"
plots = "results/plots"

# %%
import json
from pathlib import Path

from iclsam.common.atomic import write_csv_atomic, write_text_atomic
from iclsam.pipeline.dvc_stages import default_icl, example_tasks, grid_results, provenance
from iclsam.pipeline.figures import dice_vs_m_figure, refinement_figure
from iclsam.pipeline.protocol import load_examples
from iclsam.pipeline.report import (
    assd_table,
    dice_by_m,
    dice_metrics,
    gt_box_table,
    paper_shaped_markdown,
    per_backbone,
    run_summary,
    sam_gt_once,
    table1,
    write_table,
)

params, scores, records, weights = grid_results(params_file, grid_dir)

# %%
sams, icls = params["grid"]["sam"], params["grid"]["icl"]
first_icl = default_icl(params["grid"])
source = provenance(params, sams, [weights[f"{sam}/{icl}"] for sam in sams for icl in icls])
shape = [("dataset", "data set"), ("icl", "ICL model"), ("variant", "model"), ("model", "paper's row")]

t1 = per_backbone(scores, table1)
write_table(
    t1,
    Path(tables) / "table1_dice",
    "Table 1: Dice per data set vs support size",
    source,
    paper_shaped_markdown(t1, shape, icl_first=first_icl),
)
t6 = sam_gt_once(per_backbone(scores, assd_table), first_icl)  # SAM + GT boxes: the same for every ICL model
write_table(
    t6,
    Path(tables) / "table6_assd",
    "Table 6: ASSD (pixels, masks at 512 x 512)",
    source,
    paper_shaped_markdown(t6, shape, digits=2, icl_first=first_icl),
)
gt = per_backbone(scores[scores["icl"] == icls[0]], gt_box_table)
write_table(gt, Path(tables) / "gt_box_upper_bound", "SAM upper bound: ground-truth boxes (mean over m)", source)
print(paper_shaped_markdown(t1, shape, icl_first=first_icl))

# %%
first = scores[scores["sam"] == sams[0]].drop(columns=["sam"])
dice_vs_m_figure(
    first,
    provenance(params, [sams[0]], [weights[f"{sams[0]}/{icl}"] for icl in icls]),
    Path(figures) / "figure3_dice_vs_m.png",
    icl_first=first_icl,
)

# %% [markdown]
# Figs. 4/5: the refinement stages on example queries (computed by the grid stage: the first draw of
# the middle support size, first backbone), the default ICL model's row first, the other backend's
# below it.

# %%
sam = sams[0]
order = [first_icl] + [icl for icl in icls if icl != first_icl]
examples = [
    example
    for name in example_tasks(params)
    for example in load_examples(Path(grid_dir) / f"{name}.example.npz", order)
]
refinement_figure(
    examples,
    provenance(params, [sam], [weights[f"{sam}/{icl}"] for icl in order]),
    Path(figures) / "figure4_5_refinement.png",
)

# %% [markdown]
# `dvc plots show` draws the Dice-vs-m curves of the default ICL model from these two files (declared
# under `plots:` in dvc.yaml); `dvc metrics show` / `dvc metrics diff` read metrics.json (encoder
# passes, and Dice per ICL model and m).

# %%
for variant, name in (("iclsam", "dice_vs_m_full_method.csv"), ("alone", "dice_vs_m_icl_alone.csv")):
    write_csv_atomic(dice_by_m(first, first_icl, variant).round(4), Path(plots) / name)

summary = run_summary(params["profile"], records, len(params["grid"]["sam"]))
summary["dice"] = dice_metrics(first, first_icl)
write_text_atomic(metrics, json.dumps(summary, indent=1) + "\n")
summary  # noqa: B018 (the cell's output)

# %% [markdown]
# The parameters this stage read; each must be one of the stage's `params` in dvc.yaml, so that DVC
# re-runs it when one changes (`iclsam.pipeline.params_read`).

# %%
from iclsam.pipeline.params_read import check_declared

check_declared(params, "report")
