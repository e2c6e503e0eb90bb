# %% [markdown]
# # Stage `grid`: every variant, support size and draw on one task
#
# For each SAM backbone and ICL backend of `params.yaml` (grid), every support set of
# `data/draws.csv` segments every query image once; every variant of the method is scored (Dice;
# ASSD at 512 x 512). SAM encodes each image once (an on-disk cache keyed by image content and
# backbone, shared by all stages). The example query of Figs. 4/5 (the first draw of the middle support
# size on the first query, first backbone, every ICL model) is kept for the report stage.

# %% tags=["parameters"]
params_file = "params.yaml"
task = "fundus_disc"
data = "data/prepared"
splits_file = "data/splits.csv"
draws_file = "data/draws.csv"
out = "results/grid"

# %%
import json
from pathlib import Path

from tqdm.auto import tqdm

from iclsam.common.atomic import write_csv_atomic, write_text_atomic
from iclsam.pipeline.cluster import grid_stage
from iclsam.pipeline.dvc_stages import task_inputs
from iclsam.pipeline.profiles import load_params
from iclsam.pipeline.protocol import save_examples

params = load_params(params_file)
prepared, draws, queries = task_inputs(params, data, task, splits_file, draws_file, params["grid"]["max_queries"])

# %%
scores, record, examples = grid_stage(
    params["grid"], prepared, draws, queries, progress=tqdm
)  # on a Dask cluster with grid.workers > 1
write_csv_atomic(scores, Path(out) / f"{task}.csv")
write_text_atomic(Path(out) / f"{task}.json", json.dumps(record, indent=1) + "\n")
save_examples(examples, Path(out) / f"{task}.example.npz")

# %%
scores.groupby(["sam", "icl", "variant", "m"])["dice"].mean().unstack("m").round(3)

# %% [markdown]
# The parameters this stage read; each must be one of the stage's `params` in dvc.yaml, so that DVC
# re-runs it when one changes (`iclsam.pipeline.params_read`).

# %%
from iclsam.pipeline.params_read import check_declared

check_declared(params, "grid")
