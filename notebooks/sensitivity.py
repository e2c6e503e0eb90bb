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

from iclsam.common.atomic import write_csv_atomic
from iclsam.pipeline.dvc_stages import provenance, sensitivity_stage
from iclsam.pipeline.figures import sensitivity_figure
from iclsam.pipeline.profiles import load_params

params = load_params(params_file)
p = params["sensitivity"]

# %%
results, icl_weights = sensitivity_stage(params, data, splits_file, draws_file, progress=tqdm)
write_csv_atomic(results, out)
sensitivity_figure(results, provenance(params, [p["sam"]], [icl_weights]), figure)
results.groupby(["constant", "value"])["dice"].mean().round(4).to_frame()

# %% [markdown]
# The parameters this stage read; each must be one of the stage's `params` in dvc.yaml, so that DVC
# re-runs it when one changes (`iclsam.pipeline.params_read`).

# %%
from iclsam.pipeline.params_read import check_declared

check_declared(params, "sensitivity")
