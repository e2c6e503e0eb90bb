"""SAM's mask of a box at a lower logit threshold (issue 43, measured and not kept): Dice of the
mask SAM makes from one box per connected component of the truth, at logit threshold 0 (what
`densify_boxes` does), at -1, and with the tight-box rule (the threshold lowered through -0.5, -1,
-1.5 until the mask meets 97 % of the box's rows and columns; 0 kept where the lower one adds under
2 % of them); with tight boxes and with boxes 10 % looser on each side (at least 2 px). Images: the
first 25 of each real-dev set (every n-th) and the largest axial slice of eight real-dev-3d volumes.

    python benchmarks/box_threshold.py [--real-dev ../shared/data/real-dev] [--real-dev-3d ../shared/data/real-dev-3d]
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from iclsam import ICLSAM
from iclsam.apps.volumes.checks import normalise_intensities
from iclsam.apps.volumes.evaluate_volumes import read_case, volume_pairs
from iclsam.common.atomic import write_text_atomic
from iclsam.common.metrics import dice
from iclsam.data.folder import open_tasks
from iclsam.method.densify import boxes_from_mask

PER_SET = 25
STEPS = (0.0, -0.5, -1.0, -1.5)
COVERAGE = 0.97
VOLUMES = ("deepmedic_brats2013_t1c", "pyradiomics_brain_mri", "tcia_btp_t1post")


def images(real_dev: Path, real_dev_3d: Path):
    """(set, image, truth): real-dev PNGs, then each volume's largest axial slice."""
    for task in open_tasks(real_dev):
        ids = sorted(task.ids)
        for image_id in ids[:: max(1, len(ids) // PER_SET)][:PER_SET]:
            image, truth = task.load(image_id)
            if truth.any():
                yield task.root.name, image, truth
    for set_name, pairs in volume_pairs(real_dev_3d).items():
        for _, image, label in pairs if set_name in VOLUMES else []:
            scan, truth = read_case(image, label, None, 2)
            z = int(truth.reshape(-1, truth.shape[2]).sum(0).argmax())
            yield f"3-D {set_name}", normalise_intensities(np.moveaxis(scan.array, 2, 0))[z], truth[..., z]


def loosen(boxes: np.ndarray, shape: tuple[int, int], fraction: float) -> np.ndarray:
    """Each box grown by `fraction` of its size on each side (at least 2 px), inside the image."""
    if not fraction:
        return boxes
    size = np.stack([boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]], axis=1)
    pad = np.maximum(2, np.round(fraction * size)).astype(np.int64)
    h, w = shape
    return np.clip(boxes + np.concatenate([-pad, pad], axis=1), 0, [w - 1, h - 1, w - 1, h - 1])


def coverage(mask: np.ndarray, box) -> float:
    """The mean of the shares of the box's rows and of its columns in which the mask has a pixel."""
    x0, y0, x1, y1 = box
    inside = mask[y0 : y1 + 1, x0 : x1 + 1]
    return 0.5 * (inside.any(axis=0).mean() + inside.any(axis=1).mean())


def tight_box_mask(logits: np.ndarray, box) -> np.ndarray:
    """The tight-box rule on one box's logits."""
    base = chosen = logits > 0
    for threshold in STEPS:
        chosen = logits > threshold
        if coverage(chosen, box) >= COVERAGE:
            break
    return chosen if coverage(chosen, box) >= coverage(base, box) + 0.02 else base


def run(real_dev: Path, real_dev_3d: Path, looseness=(0.0, 0.1)) -> pd.DataFrame:
    sam = ICLSAM(icl="features", cache_dir=".cache/embeddings").sam
    rows = []
    with torch.inference_mode():
        for set_name, image, truth in images(real_dev, real_dev_3d):
            embedding = sam.encode(image)
            for fraction in looseness:
                boxes = loosen(boxes_from_mask(truth), truth.shape, fraction)
                logits = sam.decode(embedding, boxes).numpy()
                masks = {
                    "threshold 0": (logits > 0).any(axis=0),
                    "threshold -1": (logits > -1).any(axis=0),
                    "tight-box rule": np.any([tight_box_mask(lg, b) for lg, b in zip(logits, boxes)], axis=0),
                }
                for name, mask in masks.items():
                    rows.append({"set": set_name, "looser": fraction, "mask": name, "dice": dice(mask, truth)})
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--real-dev", type=Path, default=Path("../shared/data/real-dev"))
    parser.add_argument("--real-dev-3d", type=Path, default=Path("../shared/data/real-dev-3d"))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/real_dev_3d/box_threshold.md"))
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    rows = run(args.real_dev, args.real_dev_3d)
    per_set = rows.pivot_table(index=["looser", "set"], columns="mask", values="dice", aggfunc="mean")
    overall = rows.groupby(["looser", "mask"]).dice.mean().unstack()
    text = (
        "# SAM's mask of a box at a lower logit threshold (mean Dice; `python benchmarks/box_threshold.py`)\n\n"
        f"{per_set.round(3).to_markdown()}\n\nOver every image:\n\n{overall.round(4).to_markdown()}\n"
    )
    write_text_atomic(args.out, text)
    print(text)


if __name__ == "__main__":
    main()
