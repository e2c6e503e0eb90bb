# %% [markdown]
# # Stage `grid`: every variant, support size and draw on one task
#
# For each SAM backbone and ICL backend of `params.yaml` (grid), every support set of
# `data/draws.csv` segments every query image once; every variant of the method is scored (Dice;
# ASSD at 512 x 512). SAM encodes each image once (an on-disk cache keyed by image content and
# backbone, shared by all stages). The example query of Figs. 4/5 (the first draw of the middle support
# size on the first query, first backbone and ICL model) is kept for the report stage.

# %% tags=["parameters"]
params_file = "params.yaml"
task = "fundus_disc"
data = "data/prepared"
splits_file = "data/splits.csv"
draws_file = "data/draws.csv"
out = "results/grid"

# %%
import json
import time
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from iclsam.atomic import write_text_atomic
from iclsam.data.folder import open_task
from iclsam.atomic import write_csv_atomic
from iclsam.protocol import example_query, run_grid, save_example
from iclsam.sam.cache import image_key
from iclsam.dvc_stages import build_models, load_params, task_queries

params = load_params(params_file)
grid = params["grid"]
prepared = open_task(Path(data) / task)
draws = pd.read_csv(draws_file, dtype={"id": str})
queries = task_queries(splits_file, task, grid["max_queries"], grid["seed"])

# %%
start = time.perf_counter()
frames, record = [], {"task": task, "icl_weights": {}, "encoder_passes": 0, "encoder_cache_hits": 0}
for sam in grid["sam"]:
    models = build_models(grid, sam, grid["icl"])
    for icl, model in models.items():
        scores = run_grid(model, prepared, draws, queries, with_assd=grid["assd"], progress=tqdm)
        frames.append(scores.assign(sam=sam, icl=icl))
        record["icl_weights"][f"{sam}/{icl}"] = model.icl_weights
        if (sam, icl) == (grid["sam"][0], grid["icl"][0]):  # Figs. 4/5's example
            save_example(example_query(model, prepared, draws, queries), Path(out) / f"{task}.example.npz")
    predictor = next(iter(models.values())).sam
    record["encoder_passes"] += predictor.encoder_passes
    record["encoder_cache_hits"] += predictor.disk_hits
used = sorted(set(draws.loc[draws["task"] == task, "id"]) | set(queries))
record["images"] = sorted(image_key(prepared.load(i)[0]) for i in used)
record["seconds"] = round(time.perf_counter() - start, 1)
scores = pd.concat(frames, ignore_index=True)
write_csv_atomic(scores, Path(out) / f"{task}.csv")
write_text_atomic(Path(out) / f"{task}.json", json.dumps(record, indent=1) + "\n")

# %%
scores.groupby(["sam", "icl", "variant", "m"])["dice"].mean().unstack("m").round(3)
