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

from iclsam.atomic import write_csv_atomic
from iclsam.data.splits import draw_supports
from iclsam.profiles import load_params

params = load_params(params_file)
p = params["sample_support"]
splits = pd.read_csv(splits_file, dtype={"id": str})
draws = pd.concat([draw_supports(task, group.loc[group["split"] == "support", "id"], p["sizes"], p["draws"], p["seed"])
                   for task, group in splits.groupby("task", sort=True)], ignore_index=True)
write_csv_atomic(draws, out)
draws.groupby(["task", "m"])["draw"].nunique().unstack()
