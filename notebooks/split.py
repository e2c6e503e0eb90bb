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
import pandas as pd

from iclsam.data.folder import open_task
from iclsam.atomic import write_csv_atomic
from iclsam.data.splits import case_column, with_splits
from iclsam.profiles import load_params

params = load_params(params_file)
p = params["split"]
frames = []
for name in params["tasks"]:
    task = open_task(f"{data}/{name}")
    meta = with_splits(task.meta, p["support_fraction"], p["seed"], key=name)
    frames.append(pd.DataFrame({"task": name, "id": meta["id"], "case": meta[case_column(meta)].astype(str),
                                "split": meta["split"]}))
splits = pd.concat(frames, ignore_index=True)
write_csv_atomic(splits, out)
splits.groupby(["task", "split"]).size().unstack()
