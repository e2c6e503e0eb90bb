# %% [markdown]
# # Stage `prepare`: the data sets in the prepared format
#
# Writes one folder per task under `data/prepared/` (images, masks, meta.csv). The default profile
# generates the bundled SYNTHETIC benchmark; the paper profile reads the official downloads under
# `data/raw/<dataset>/`.

# %% tags=["parameters"]
params_file = "params.yaml"
out = "data/prepared"
figures = "figures"

# %%
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from iclsam.data.folder import open_tasks
from iclsam.data.prepare import prepare_source, prepare_synthetic
from iclsam.figures import examples_figure
from iclsam.profiles import data_description, load_params, missing_inputs

params = load_params(params_file)
p = params["prepare"]
missing = missing_inputs(params)
if missing:
    raise SystemExit("The '{}' profile cannot run; missing:\n- {}".format(params["profile"], "\n- ".join(missing)))

# %%
for dataset in p["datasets"]:
    if dataset == "synthetic":
        prepare_synthetic(out, seed=p["seed"], n_support=p["n_support"], n_query=p["n_query"], progress=tqdm)
    else:
        prepare_source(dataset, Path(p["raw"]) / dataset, out, seed=p["seed"], max_side=p["max_side"], progress=tqdm)

# %%
tasks = open_tasks(out)
expected = set(params["tasks"])
found = {t.name for t in tasks}
if not expected <= found:
    raise SystemExit(f"tasks in params.yaml but not prepared: {sorted(expected - found)}")
examples_figure([t for t in tasks if t.name in expected], data_description(params), Path(figures) / "data_examples.png")
pd.DataFrame([{"task": t.name, "images": len(t.meta), "cases": t.meta["case"].nunique() if "case" in t.meta else None}
              for t in tasks])
