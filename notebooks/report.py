# %% [markdown]
# # Stage `report`: Tables 1, 6 and the GT-box upper bound; Figs. 3 and 4/5; metrics
#
# Every table sits beside the paper's numbers with the difference, and says which data, weights
# and profile produced it.

# %% tags=["parameters"]
params_file = "params.yaml"
data = "data/prepared"
grid_dir = "results/grid"
draws_file = "data/draws.csv"
tables = "tables"
figures = "figures"
metrics = "metrics.json"

# %%
import json
from pathlib import Path

import pandas as pd

from iclsam.atomic import write_text_atomic
from iclsam.data.folder import open_task
from iclsam.figures import dice_vs_m_figure, refinement_figure
from iclsam.report import assd_table, gt_box_table, table1, write_table
from iclsam.dvc_stages import build_models, load_grid, load_params, provenance

params = load_params(params_file)
scores, records = load_grid(grid_dir, params["tasks"])
weights = records[0]["icl_weights"]

# %%
sams = params["grid"]["sam"]
universeg = scores[scores["icl"] == "universeg"] if "universeg" in set(scores["icl"]) else scores
icl_used = sorted(universeg["icl"].unique())
source = provenance(params, sams, [weights[f"{sam}/{icl}"] for sam in sams for icl in icl_used])


def by_backbone(build):
    return pd.concat([build(part.drop(columns="sam"), sam).assign(sam=sam)
                      for sam, part in universeg.groupby("sam", sort=True)], ignore_index=True)


t1 = by_backbone(table1)
write_table(t1, Path(tables) / "table1_dice", "Table 1: Dice per data set vs support size", source)
write_table(by_backbone(assd_table), Path(tables) / "table6_assd", "Table 6: ASSD (pixels, masks at 512 x 512)", source)
write_table(by_backbone(gt_box_table), Path(tables) / "gt_box_upper_bound",
            "SAM upper bound: ground-truth boxes (mean over m)", source)
t1.pivot_table(index=["sam", "dataset", "model"], columns="m", values="ours").round(3)

# %%
first = scores[scores["sam"] == sams[0]].drop(columns=["sam"])
dice_vs_m_figure(first, provenance(params, [sams[0]], [weights[f"{sams[0]}/{icl}"] for icl in sorted(first["icl"].unique())]),
                 Path(figures) / "figure3_dice_vs_m.png")

# %% [markdown]
# Figs. 4/5: the refinement stages on example queries (the first draws of the middle support size).

# %%
sam, icl = params["grid"]["sam"][0], params["grid"]["icl"][0]
model = build_models(params["grid"], sam, [icl])[icl]
draws = pd.read_csv(draws_file, dtype={"id": str})
m = sorted(draws["m"].unique())[len(draws["m"].unique()) // 2]
tasks = params["tasks"][:: max(1, len(params["tasks"]) // params["report"]["examples"])][: params["report"]["examples"]]
examples = []
for name in tasks:
    task = open_task(Path(data) / name)
    chosen = draws[(draws["task"] == name) & (draws["m"] == m) & (draws["draw"] == 0)].sort_values("rank")["id"]
    support = [task.load(i) for i in chosen]
    query = sorted(scores.loc[scores["task"] == name, "query"].unique())[0]
    image, truth = task.load(query)
    prediction = model.predict([x for x, _ in support], [y for _, y in support], image, truth)
    examples.append({"task": f"{name} (m = {m})", "image": image, "truth": truth, "prediction": prediction})
refinement_figure(examples, provenance(params, [sam], [model.icl_weights]), Path(figures) / "figure4_5_refinement.png")

# %%
images = set().union(*(r["images"] for r in records))
passes = sum(r["encoder_passes"] for r in records)
summary = {"profile": params["profile"], "encoder_passes": passes, "encoder_cache_hits": sum(r["encoder_cache_hits"] for r in records),
           "unique_images": len(images), "backbones": len(params["grid"]["sam"]),
           "encoder_passes_per_image_and_backbone": round(passes / max(len(images) * len(params["grid"]["sam"]), 1), 4),
           "grid_seconds": round(sum(r["seconds"] for r in records), 1)}
write_text_atomic(metrics, json.dumps(summary, indent=1) + "\n")
summary
