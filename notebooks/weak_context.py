# %% [markdown]
# # Stage `weak_context` (not in the paper): support sets annotated with boxes or clicks
#
# The same support sets and queries as the grid, each support set annotated three ways: the true
# masks; a tight box per component; one click per component (its pixel deepest inside). SAM turns
# boxes and clicks into support masks (`ICLSAM.densify`), then the full method runs unchanged. The
# figure puts the full method's Dice against the support set's annotation time (WS-ICL's estimates).

# %% tags=["parameters"]
params_file = "params.yaml"
data = "data/prepared"
splits_file = "data/splits.csv"
draws_file = "data/draws.csv"
out = "results/weak_context.csv"
tables = "tables"
figure = "figures/weak_context.png"

# %%
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from iclsam.atomic import write_csv_atomic
from iclsam.densify import ANNOTATION_SECONDS
from iclsam.dvc_stages import build_models, load_params, provenance, task_inputs
from iclsam.figures import weak_context_figure
from iclsam.protocol import run_weak_context
from iclsam.report import weak_context_markdown, weak_context_table, write_table

params = load_params(params_file)
p = params["weak_context"]
model = build_models(params["grid"], p["sam"], [p["icl"]])[p["icl"]]
frames = []
for name in p["tasks"] or params["tasks"]:
    task, draws, queries = task_inputs(params, data, name, splits_file, draws_file, p["max_queries"])
    draws = draws[(draws["task"] == name) & (draws["draw"] < p["draws"])]
    if p["sizes"]:
        draws = draws[draws["m"].isin(p["sizes"])]
    frames.append(run_weak_context(model, task, draws, queries, p["annotations"], progress=tqdm).assign(icl=p["icl"]))
results = pd.concat(frames, ignore_index=True)
write_csv_atomic(results, out)

# %%
table = weak_context_table(results, ANNOTATION_SECONDS)
source = provenance(params, [p["sam"]], [model.icl_weights])
write_table(table, Path(tables) / "weak_context",
            "Weak context (not in the paper): the full method with support masks, boxes or clicks", source,
            markdown=weak_context_markdown(table))
weak_context_figure(table, source, figure)
table.pivot_table(index=["task", "annotation"], columns="m", values="ours", sort=False).round(3)
