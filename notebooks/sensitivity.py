# %% [markdown]
# # Stage `sensitivity`: Fig. 6, the full method while one constant moves
#
# a and tau set the fusion weight (Eq. 1), b and tau the confidence map's weight in UniverSeg (Eq. 4),
# beta its weight in SAM's decoder (Eq. 3). Each constant is swept with the others at their defaults.

# %% tags=["parameters"]
params_file = "params.yaml"
data = "data/prepared"
splits_file = "data/splits.csv"
draws_file = "data/draws.csv"
out = "results/sensitivity.csv"
figure = "figures/figure6_sensitivity.png"

# %%
from tqdm.auto import tqdm

from iclsam.atomic import write_csv_atomic
from iclsam.dvc_stages import build_models, load_params, provenance, task_inputs
from iclsam.figures import sensitivity_figure
from iclsam.protocol import run_sensitivity

params = load_params(params_file)
p = params["sensitivity"]
task, draws, queries = task_inputs(params, data, p["task"], splits_file, draws_file, p["max_queries"])
draws = draws[(draws["task"] == p["task"]) & (draws["m"] == p["m"]) & (draws["draw"] < p["draws"])]
if draws.empty:
    raise SystemExit(f"no support draws of m = {p['m']} for {p['task']}: add m to sample_support.sizes")
model = build_models(params["grid"], p["sam"], [p["icl"]])[p["icl"]]

# %%
results = run_sensitivity(model, task, draws, queries, p["values"], progress=tqdm)
write_csv_atomic(results, out)
sensitivity_figure(results, provenance(params, [p["sam"]], [model.icl_weights]), figure)
results.groupby(["constant", "value"])["dice"].mean().round(4).to_frame()
