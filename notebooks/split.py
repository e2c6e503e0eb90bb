# %% [markdown]
# # Stage `split`: meta-support pool and query set of every task
#
# Tasks prepared from the paper's data sets carry their split (Table 3 sizes, by case). A task of
# your own without a `split` column is split here by case (`case`, else `group`, else `id`).

# %% tags=["parameters"]
params_file = "params.yaml"
data = "data/prepared"
out = "data/splits.csv"

# %%
from iclsam.common.atomic import write_csv_atomic
from iclsam.data.folder import open_task
from iclsam.data.splits import split_table
from iclsam.pipeline.profiles import load_params

params = load_params(params_file)
splits = split_table(
    [open_task(f"{data}/{name}") for name in params["tasks"]],
    params["split"]["support_fraction"],
    params["split"]["seed"],
)
write_csv_atomic(splits, out)
splits.groupby(["task", "split"]).size().unstack()

# %% [markdown]
# The parameters this stage read; each must be one of the stage's `params` in dvc.yaml, so that DVC
# re-runs it when one changes (`iclsam.pipeline.params_read`).

# %%
from iclsam.pipeline.params_read import check_declared

check_declared(params, "split")
