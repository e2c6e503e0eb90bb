"""Several labels of a volume in one pass against each label propagated alone, from k annotated slices.

    python benchmarks/label_volumes.py [--data ../shared/data/real-dev-3d] [--k 3] [--out DIR]

Timed volumes: LUNG1-001 (chest CT: left lung, right lung, cord, tumour) and brats_2013_pat0001_1
(T1c: necrosis, oedema, non-enhancing, enhancing tumour). Untimed: the two other BraTS T1c volumes
(pat0003, pat0005), one pass only, "alone" being each label's mask before overlaps were resolved
(the same, bit for bit, as the label run alone: the timed volumes check it, `same_before_overlaps`).
The k annotated slices sit evenly inside the extent of all labels together (as `evaluate-volumes`
places them) and carry every label on them; a label on none of them is left out of both runs. One
pass: `ICLSAM.segment_volume` with the label-map slices. Alone: `segment_volume` with each label's
binary slices, each run from an empty encoder cache (as separate runs would be). Per label: 3-D
Dice of the one pass's label map and of the label alone; times of both. Writes `volumes.csv` and `volumes.md` under --out and prints them."""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from iclsam import ICLSAM
from iclsam.atomic import write_csv_atomic, write_text_atomic
from iclsam.volumes import volume_metrics
from iclsam.volumes.evaluation import annotated_slices
from iclsam.volumes.scan_io import read_scan

BRATS = "deepmedic_brats2013_t1c"
CASES = (("nsclc_radiomics_lung1_ct", "LUNG1-001"), (BRATS, "brats_2013_pat0001_1"))
UNTIMED = ((BRATS, "brats_2013_pat0003_1"), (BRATS, "brats_2013_pat0005_1"))


def run_case(model: ICLSAM, image, labels, spacing, k: int, timed: bool = True) -> tuple[list[dict], float, float]:
    chosen = annotated_slices(labels != 0, k)
    annotations = {z: labels[..., z] for z in chosen}
    values = sorted(set(np.unique(np.stack(list(annotations.values()))).tolist()) - {0})
    model.sam.forget()
    model.clear_support_sets()
    start = time.perf_counter()
    together = model.segment_volume(image, annotations, spacing=spacing, labels=values)
    one_pass = time.perf_counter() - start
    rows, separate = [], 0.0
    for value in values:
        alone = together.per_label[value]
        if timed:
            model.sam.forget()
            model.clear_support_sets()
            start = time.perf_counter()
            alone = model.segment_volume(image, {z: m == value for z, m in annotations.items()}, spacing=spacing)
            separate += time.perf_counter() - start
        truth = labels == value
        rows.append(
            {
                "label": value,
                "annotated": " ".join(map(str, chosen)),
                "one_pass": volume_metrics(together.labels == value, truth, spacing)["dice"],
                "alone": volume_metrics(alone.mask, truth, spacing)["dice"],
                "same_before_overlaps": bool(np.array_equal(together.per_label[value].mask, alone.mask))
                if timed
                else "not run",
            }
        )
    return rows, one_pass, separate


def main() -> None:
    warnings.filterwarnings("ignore", message="Importing from timm")
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="../shared/data/real-dev-3d")
    parser.add_argument("--k", type=int, default=3)
    parser.add_argument("--out", default="benchmarks/label_maps")
    parser.add_argument(
        "--cases", nargs="+", choices=[c for _, c in CASES + UNTIMED], help="only these (default: all four)"
    )
    args = parser.parse_args()
    model = ICLSAM()
    rows, times = [], []
    for set_name, case in [(s, c) for s, c in CASES + UNTIMED if not args.cases or c in args.cases]:
        folder = Path(args.data) / set_name
        scan, labels = read_scan(folder / f"{case}_image.nii.gz"), read_scan(folder / f"{case}_label.nii.gz")
        timed = (set_name, case) in CASES
        found, one_pass, separate = run_case(
            model, scan.array, labels.array.astype(np.int64), scan.spacing, args.k, timed
        )
        rows += [{"set": set_name, "case": case, **r} for r in found]
        if timed:
            times.append({"set": set_name, "case": case, "one_pass_s": one_pass, "separate_s": separate})
        separately = f", separate {separate:.1f} s" if timed else " (untimed: no separate runs)"
        print(case, f"one pass {one_pass:.1f} s{separately}", flush=True)
    table, timing = pd.DataFrame(rows), pd.DataFrame(times)
    table["difference"] = table["one_pass"] - table["alone"]
    timing["ratio"] = timing["one_pass_s"] / timing["separate_s"]
    write_csv_atomic(table, Path(args.out) / "volumes.csv")
    text = (
        f"# Label maps on volumes: one pass against each label alone (k = {args.k} annotated slices; "
        f"LiteMedSAM, ICL model {model.icl})\n\n## 3-D Dice per label\n\n"
        + table.round(3).to_markdown(index=False)
        + "\n\n## Time (each run from an empty encoder cache)\n\n"
        + timing.round(2).to_markdown(index=False)
        + "\n"
    )
    write_text_atomic(Path(args.out) / "volumes.md", text)
    print(text)


if __name__ == "__main__":
    main()
