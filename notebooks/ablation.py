# %% [markdown]
# # Stage `ablation`: Tables 4-5 (per task), Table 2 (per data set), the ICL backends side by side
#
# Each row adds one part of the method (UniverSeg, + confidence map in UniverSeg, + SAM, + confidence
# map in SAM, + fusion) beside the paper's MedSAM ablation rows, with the difference.

# %% tags=["parameters"]
params_file = "params.yaml"
grid_dir = "results/grid"
tables = "tables"

# %%
from pathlib import Path

from iclsam.report import ablation_table, dataset_ablation_table, icl_backend_table, per_backbone, write_table
from iclsam.dvc_stages import grid_results, provenance

params, scores, records, weights = grid_results(params_file, grid_dir)

# %%
sams = params["grid"]["sam"]
universeg = scores[scores["icl"] == "universeg"]
source = provenance(params, sams, [weights[f"{sam}/universeg"] for sam in sams])
per_task = per_backbone(universeg, lambda part, sam: ablation_table(part))
per_dataset = per_backbone(universeg, lambda part, sam: dataset_ablation_table(part))
write_table(per_task, Path(tables) / "table4_5_ablation",
            "Tables 4-5: ablation per task (paper: its MedSAM ablation rows)", source)
write_table(per_dataset, Path(tables) / "table2_ablation_by_dataset",
            "Table 2: ablation per data set (paper values: means of its Tables 4-5 rows)", source)
per_dataset.pivot_table(index=["sam", "dataset", "model"], columns="m", values="ours").round(3)

# %% [markdown]
# The ICL backends side by side (UniverSeg weights vs the training-free `features` backend), alone and
# inside the full method.

# %%
backends = per_backbone(scores, lambda part, sam: icl_backend_table(part))
all_weights = [weights[f"{sam}/{icl}"] for sam in sams for icl in params["grid"]["icl"]]
write_table(backends, Path(tables) / "icl_backends", "ICL backends side by side: the ICL model alone and the full method",
            provenance(params, sams, all_weights))
backends.pivot_table(index=["sam", "paper_task", "variant", "icl"], columns="m", values="ours").round(3)
