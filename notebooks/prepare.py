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

from iclsam.data.prepare import prepare_profile
from iclsam.pipeline.figures import examples_figure
from iclsam.pipeline.profiles import data_description, load_params

params = load_params(params_file)  # the check_inputs stage has checked the profile's inputs

# %%
tasks = prepare_profile(params, out, progress=tqdm)
examples_figure(tasks, data_description(params), Path(figures) / "data_examples.png")
pd.DataFrame(
    [
        {"task": t.name, "images": len(t.meta), "cases": t.meta["case"].nunique() if "case" in t.meta else None}
        for t in tasks
    ]
)

# %% [markdown]
# The parameters this stage read; each must be one of the stage's `params` in dvc.yaml, so that DVC
# re-runs it when one changes (`iclsam.pipeline.params_read`).

# %%
from iclsam.pipeline.params_read import check_declared

check_declared(params, "prepare")
