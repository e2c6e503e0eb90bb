# %% [markdown]
# # Stage `ablation`: Tables 4-5 (per task), Table 2 (per data set), the ICL backends side by side
#
# Each row adds one part of the method (the ICL model, + confidence map in UniverSeg, + SAM,
# + confidence map in SAM, + fusion) beside the paper's MedSAM ablation rows, for every ICL model
# (the training-free one's own model stands beside the paper's UniverSeg row). Markdown in the
# paper's shape (variant rows, m columns, "ours (paper)"); the CSVs are long, with the difference.

# %% tags=["parameters"]
params_file = "params.yaml"
grid_dir = "results/grid"
tables = "tables"

# %%
from pathlib import Path

from iclsam.pipeline.dvc_stages import default_icl, grid_results, provenance
from iclsam.pipeline.report import (
    ablation_table,
    dataset_ablation_table,
    icl_backend_table,
    paper_shaped_markdown,
    per_backbone,
    write_table,
)

params, scores, records, weights = grid_results(params_file, grid_dir)

# %%
sams, icls = params["grid"]["sam"], params["grid"]["icl"]
first_icl = default_icl(params["grid"])
source = provenance(params, sams, [weights[f"{sam}/{icl}"] for sam in sams for icl in icls])
per_task = per_backbone(scores, lambda part, sam: ablation_table(part))
per_dataset = per_backbone(scores, lambda part, sam: dataset_ablation_table(part))
write_table(
    per_task,
    Path(tables) / "table4_5_ablation",
    "Tables 4-5: ablation per task (paper: its MedSAM ablation rows)",
    source,
    paper_shaped_markdown(
        per_task,
        [("paper_task", "task"), ("icl", "ICL model"), ("variant", "variant"), ("model", "paper's row")],
        icl_first=first_icl,
    ),
)
write_table(
    per_dataset,
    Path(tables) / "table2_ablation_by_dataset",
    "Table 2: ablation per data set (paper values: means of its Tables 4-5 rows)",
    source,
    paper_shaped_markdown(
        per_dataset,
        [("dataset", "data set"), ("icl", "ICL model"), ("variant", "variant"), ("model", "paper's row")],
        icl_first=first_icl,
    ),
)
print(
    paper_shaped_markdown(
        per_dataset, [("dataset", "data set"), ("icl", "ICL model"), ("variant", "variant")], icl_first=first_icl
    )
)

# %% [markdown]
# The ICL backends side by side (UniverSeg weights vs the training-free `features` backend), alone and
# inside the full method.

# %%
backends = per_backbone(scores, lambda part, sam: icl_backend_table(part))
write_table(
    backends,
    Path(tables) / "icl_backends",
    "ICL backends side by side: the ICL model alone and the full method",
    source,
    paper_shaped_markdown(
        backends,
        [("paper_task", "task"), ("variant", "variant"), ("icl", "ICL model"), ("paper_model", "paper's row")],
        icl_first=first_icl,
    ),
)

# %% [markdown]
# The parameters this stage read; each must be one of the stage's `params` in dvc.yaml, so that DVC
# re-runs it when one changes (`iclsam.pipeline.params_read`).

# %%
from iclsam.pipeline.params_read import check_declared

check_declared(params, "ablation")
