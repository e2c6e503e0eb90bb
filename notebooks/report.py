# %% [markdown]
# # Stage `report`: Tables 1, 6 and the GT-box upper bound; Figs. 3 and 4/5; metrics
#
# Every table sits beside the paper's numbers with the difference, and says which data, weights
# and profile produced it. This stage only renders: the scores, the example predictions of Figs.
# 4/5 and the run records all come from the grid stage.

# %% tags=["parameters"]
params_file = "params.yaml"
grid_dir = "results/grid"
tables = "tables"
figures = "figures"
metrics = "metrics.json"

# %%
import json
from pathlib import Path

from iclsam.atomic import write_text_atomic
from iclsam.dvc_stages import grid_results, provenance
from iclsam.figures import dice_vs_m_figure, refinement_figure
from iclsam.protocol import load_example
from iclsam.report import assd_table, gt_box_table, per_backbone, run_summary, table1, write_table

params, scores, records, weights = grid_results(params_file, grid_dir)

# %%
sams = params["grid"]["sam"]
universeg = scores[scores["icl"] == "universeg"] if "universeg" in set(scores["icl"]) else scores
icl_used = sorted(universeg["icl"].unique())
source = provenance(params, sams, [weights[f"{sam}/{icl}"] for sam in sams for icl in icl_used])

t1 = per_backbone(universeg, table1)
write_table(t1, Path(tables) / "table1_dice", "Table 1: Dice per data set vs support size", source)
write_table(per_backbone(universeg, assd_table), Path(tables) / "table6_assd", "Table 6: ASSD (pixels, masks at 512 x 512)",
            source)
write_table(per_backbone(universeg, gt_box_table), Path(tables) / "gt_box_upper_bound",
            "SAM upper bound: ground-truth boxes (mean over m)", source)
t1.pivot_table(index=["sam", "dataset", "model"], columns="m", values="ours").round(3)

# %%
first = scores[scores["sam"] == sams[0]].drop(columns=["sam"])
dice_vs_m_figure(first, provenance(params, [sams[0]], [weights[f"{sams[0]}/{icl}"] for icl in sorted(first["icl"].unique())]),
                 Path(figures) / "figure3_dice_vs_m.png")

# %% [markdown]
# Figs. 4/5: the refinement stages on example queries (computed by the grid stage: the first draw of
# the middle support size, first backbone and ICL model).

# %%
sam, icl = params["grid"]["sam"][0], params["grid"]["icl"][0]
tasks = params["tasks"][:: max(1, len(params["tasks"]) // params["report"]["examples"])][: params["report"]["examples"]]
examples = [load_example(Path(grid_dir) / f"{name}.example.npz") for name in tasks]
refinement_figure(examples, provenance(params, [sam], [weights[f"{sam}/{icl}"]]), Path(figures) / "figure4_5_refinement.png")

# %%
summary = run_summary(params["profile"], records, len(params["grid"]["sam"]))
write_text_atomic(metrics, json.dumps(summary, indent=1) + "\n")
summary
