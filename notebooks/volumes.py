# %% [markdown]
# # Stage `volumes` (not in the paper): a whole scan from a few annotated slices of it
#
# ICL-SAM on a volume (`iclsam.segment_volume`): k slices of the scan are annotated, evenly inside
# the target's extent as `iclsam evaluate-volumes` places them; the other slices are segmented
# outward from them, each with the nearest annotated slices and its segmented neighbours as
# context. Beside it the two "fill between slices" baselines (signed-distance shape interpolation,
# and 3D Slicer's morphological contour interpolation), from the same slices; with two or more
# volumes, a leave-one-volume-out row (the
# other volumes as context, no slice annotated). It runs on the bundled SYNTHETIC volumes
# (`iclsam.pipeline.synthetic_volumes`); real volumes: `iclsam evaluate-volumes` (docs/volumes.md).

# %% tags=["parameters"]
params_file = "params.yaml"
out = "results/volumes.csv"
slices_out = "results/volumes_per_slice.csv"
tables = "tables"
figure = "figures/volumes.png"

# %%
from pathlib import Path

from iclsam.apps.volumes.evaluate_volumes import volume_markdown, volume_summary
from iclsam.common.atomic import write_csv_atomic
from iclsam.method.sam import SAM_BACKBONES
from iclsam.pipeline.grid import build_models
from iclsam.pipeline.profiles import load_params
from iclsam.pipeline.report import Provenance, write_table
from iclsam.pipeline.volumes_figure import volume_figure
from iclsam.pipeline.volumes_stage import volumes_stage

params = load_params(params_file)
p = params["volumes"]
model = build_models(params["grid"], p["sam"], [p["icl"]])[p["icl"]]
rows, per_slice, example = volumes_stage(model, params)
write_csv_atomic(rows, out)
write_csv_atomic(per_slice, slices_out)

# %%
context = [p["seed"] + 1 + i for i in range(p["context_volumes"])]
data = f"SYNTHETIC volume (seed {p['seed']}; context volumes: seeds {context or 'none'})"
source = Provenance(
    data=data, sam=SAM_BACKBONES[p["sam"]].name, icl_weights=model.icl_weights, profile=params["profile"]
)
summary = volume_summary(rows)
write_table(
    summary,
    Path(tables) / "volumes",
    "Volumes (not in the paper): mean 3-D Dice / HD95 (mm) from k annotated slices",
    source,
    markdown=volume_markdown(summary),
)
volume_figure(example, per_slice, max(p["slices"]), source, figure)
summary.round(3)

# %% [markdown]
# The parameters this stage read; each must be one of the stage's `params` in dvc.yaml, so that DVC
# re-runs it when one changes (`iclsam.pipeline.params_read`).

# %%
from iclsam.pipeline.params_read import check_declared

check_declared(params, "volumes")
