# %% [markdown]
# # Stage `sample_support`: the support sets
#
# For every task and support size m, `draws` random support sets from the meta-support pool
# (seeded per task and m; the same on any machine).

# %% tags=["parameters"]
params_file = "params.yaml"
splits_file = "data/splits.csv"
out = "data/draws.csv"

# %%
import pandas as pd

from iclsam.common.atomic import write_csv_atomic
from iclsam.data.splits import draws_from_splits
from iclsam.pipeline.profiles import load_params

params = load_params(params_file)
p = params["sample_support"]
draws = draws_from_splits(pd.read_csv(splits_file, dtype={"id": str}), p["sizes"], p["draws"], p["seed"])
write_csv_atomic(draws, out)
draws.groupby(["task", "m"])["draw"].nunique().unstack()

# %% [markdown]
# The parameters this stage read; each must be one of the stage's `params` in dvc.yaml, so that DVC
# re-runs it when one changes (`iclsam.pipeline.params_read`).

# %%
from iclsam.pipeline.params_read import check_declared

check_declared(params, "sample_support")
