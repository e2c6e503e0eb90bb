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

from tqdm.auto import tqdm

from iclsam.common.atomic import write_csv_atomic
from iclsam.method.densify import ANNOTATION_SECONDS
from iclsam.pipeline.dvc_stages import provenance, weak_context_stage
from iclsam.pipeline.figures import weak_context_figure
from iclsam.pipeline.profiles import load_params
from iclsam.pipeline.report import weak_context_markdown, weak_context_table, write_table

params = load_params(params_file)
p = params["weak_context"]
results, icl_weights = weak_context_stage(params, data, splits_file, draws_file, progress=tqdm)
write_csv_atomic(results, out)

# %%
table = weak_context_table(results, ANNOTATION_SECONDS)
source = provenance(params, [p["sam"]], [icl_weights])
write_table(
    table,
    Path(tables) / "weak_context",
    "Weak context (not in the paper): the full method with support masks, boxes or clicks",
    source,
    markdown=weak_context_markdown(table),
)
weak_context_figure(table, source, figure)
table.pivot_table(index=["task", "annotation"], columns="m", values="ours", sort=False).round(3)

# %% [markdown]
# The parameters this stage read; each must be one of the stage's `params` in dvc.yaml, so that DVC
# re-runs it when one changes (`iclsam.pipeline.params_read`).

# %%
from iclsam.pipeline.params_read import check_declared

check_declared(params, "weak_context")
