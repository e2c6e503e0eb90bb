"""A box instead of a mask on one slice (issue 43): for every volume of a real-dev-3d-like folder,
ICL-SAM from the target's largest slice (axial) annotated with its mask, and with one box per
connected region of that mask (SAM makes the mask, `segment_volume(..., boxes=...)`); 3-D Dice of
both and their ratio.

    python benchmarks/volume_boxes.py [--data ../shared/data/real-dev-3d] [--out benchmarks/real_dev_3d/boxes]
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import ndimage

from iclsam import ICLSAM, segment_volume
from iclsam.apps.volumes import volume_metrics
from iclsam.apps.volumes.evaluate_volumes import read_case, volume_pairs
from iclsam.common.atomic import write_csv_atomic, write_text_atomic


def region_boxes(mask: np.ndarray) -> np.ndarray:
    """One XYXY box (x along columns, y along rows) per connected region of a slice's mask."""
    labelled, _ = ndimage.label(mask)
    boxes = []
    for rows, cols in ndimage.find_objects(labelled):
        boxes.append([cols.start, rows.start, cols.stop - 1, rows.stop - 1])
    return np.asarray(boxes, np.int64)


def run(data: str) -> pd.DataFrame:
    model = ICLSAM(icl="features", cache_dir=".cache/embeddings")
    rows = []
    for set_name, pairs in volume_pairs(data).items():
        for case, image, label in pairs:
            scan, truth = read_case(image, label, None, 2)
            z = int(truth.reshape(-1, truth.shape[2]).sum(axis=0).argmax())
            given = truth[..., z]
            for how, options in (("mask", {"annotations": {z: given}}), ("box", {"boxes": {z: region_boxes(given)}})):
                start = time.perf_counter()
                result = segment_volume(model, scan.array, spacing=scan.spacing, **options)
                slice_dice = 2 * (result.mask[..., z] & given).sum() / (result.mask[..., z].sum() + given.sum())
                rows.append(
                    {
                        "set": set_name,
                        "case": case,
                        "annotation": how,
                        "slice": z,
                        "boxes": len(region_boxes(given)),
                        "slice_dice": float(slice_dice),
                        **volume_metrics(result.mask, truth, scan.spacing),
                        "seconds": round(time.perf_counter() - start, 1),
                    }
                )
                print(f"{set_name}/{case} {how}: Dice {rows[-1]['dice']:.3f} (slice {slice_dice:.3f})", flush=True)
    return pd.DataFrame(rows)


def report(rows: pd.DataFrame, data: str) -> str:
    table = rows.pivot_table(index="set", columns="annotation", values=["dice", "slice_dice"], aggfunc="mean")
    lines = [
        f"# A box instead of a mask on the target's largest slice ({data}; LiteMedSAM, features ICL model)",
        "",
        "| set | Dice, mask | Dice, box | box / mask | the slice's own Dice from the box |",
        "|---|---|---|---|---|",
    ]
    for name, row in table.iterrows():
        mask, box = row[("dice", "mask")], row[("dice", "box")]
        lines.append(f"| {name} | {mask:.3f} | {box:.3f} | {box / mask:.2f} | {row[('slice_dice', 'box')]:.3f} |")
    means = rows.groupby("annotation")["dice"].mean()
    lines += [
        "",
        f"Over every case: mask {means['mask']:.3f}, box {means['box']:.3f} ({means['box'] / means['mask']:.2f}).",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="../shared/data/real-dev-3d")
    parser.add_argument("--out", default="benchmarks/real_dev_3d/boxes")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    rows = run(args.data)
    write_csv_atomic(rows, Path(f"{args.out}.csv"))
    text = report(rows, args.data)
    write_text_atomic(Path(f"{args.out}.md"), text)
    print(text)


if __name__ == "__main__":
    main()
