"""Several labels of a volume in one pass against each label propagated alone, from k annotated slices.

    python benchmarks/label_volumes.py [--data ../shared/data/real-dev-3d] [--k 3] [--repeats 2] [--out DIR]

Timed volumes: LUNG1-001 (chest CT: left lung, right lung, cord, tumour) and brats_2013_pat0001_1
(T1c: necrosis, oedema, non-enhancing, enhancing tumour). Untimed: the two other BraTS T1c volumes
(pat0003, pat0005), one pass only, "alone" being each label's mask before overlaps were resolved
(the same, bit for bit, as the label run alone: the timed volumes check it, `same_before_overlaps`).
The k annotated slices sit evenly inside the extent of all labels together (as `evaluate-volumes`
places them) and carry every label on them; a label on none of them is left out of both runs. One
pass: `ICLSAM.segment_volume` with the label-map slices. Alone: `segment_volume` with each label's
binary slices, each run from an empty encoder cache (as separate runs would be). Per label: 3-D
Dice of the one pass's label map and of the label alone. Time: each of the two is run `--repeats`
times in the order one pass, separate, separate, one pass (so a drift of the machine's speed
cancels), the fastest counting, with the encoder passes of each. Writes `volumes.csv` and `volumes.md` under --out and prints them."""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from iclsam import ICLSAM, segment_volume
from iclsam.apps.volumes import volume_metrics
from iclsam.apps.volumes.evaluate_volumes import annotated_slices
from iclsam.apps.volumes.scan_io import read_scan
from iclsam.common.atomic import write_csv_atomic, write_text_atomic

BRATS = "deepmedic_brats2013_t1c"
CASES = (("nsclc_radiomics_lung1_ct", "LUNG1-001"), (BRATS, "brats_2013_pat0001_1"))
UNTIMED = ((BRATS, "brats_2013_pat0003_1"), (BRATS, "brats_2013_pat0005_1"))


def timed(model: ICLSAM, run) -> tuple[object, float, int]:
    """One run from an empty encoder cache: its result, wall seconds and encoder passes."""
    model.sam.forget()
    model.clear_support_sets()
    passes, start = model.sam.encoder_passes, time.perf_counter()
    result = run()
    return result, time.perf_counter() - start, model.sam.encoder_passes - passes


def run_case(
    model: ICLSAM, image, labels, spacing, k: int, timed_case: bool = True, repeats: int = 2
) -> tuple[list[dict], dict]:
    chosen = annotated_slices(labels != 0, k)
    annotations = {z: labels[..., z] for z in chosen}
    values = sorted(set(np.unique(np.stack(list(annotations.values()))).tolist()) - {0})

    def one_pass():
        return timed(model, lambda: segment_volume(model, image, annotations, spacing=spacing, labels=values))

    def separate():
        runs = [
            timed(
                model,
                lambda v=v: segment_volume(model, image, {z: m == v for z, m in annotations.items()}, spacing=spacing),
            )
            for v in values
        ]
        return {v: r for v, (r, _, _) in zip(values, runs)}, sum(t for _, t, _ in runs), sum(n for _, _, n in runs)

    abba = ["one", "separate", "separate", "one"] * repeats  # A B B A: a drift of the machine's speed cancels
    order = abba[: 2 * repeats] if timed_case else ["one"]
    times, together = {"one_pass_s": [], "separate_s": []}, None
    for run in order:
        if run == "one":
            result, seconds, times["one_pass_encoder_passes"] = one_pass()
            together = result if together is None else together
            times["one_pass_s"].append(seconds)
        else:
            alone, seconds, times["separate_encoder_passes"] = separate()
            times["separate_s"].append(seconds)
    if not timed_case:
        alone = {v: together.per_label[v] for v in values}
    rows = []
    for value in values:
        truth = labels == value
        rows.append(
            {
                "label": value,
                "annotated": " ".join(map(str, chosen)),
                "one_pass": volume_metrics(together.labels == value, truth, spacing)["dice"],
                "alone": volume_metrics(alone[value].mask, truth, spacing)["dice"],
                "same_before_overlaps": bool(np.array_equal(together.per_label[value].mask, alone[value].mask))
                if timed_case
                else "not run",
            }
        )
    return rows, times


def main() -> None:
    warnings.filterwarnings("ignore", message="Importing from timm")
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="../shared/data/real-dev-3d")
    parser.add_argument("--k", type=int, default=3)
    parser.add_argument("--out", default="benchmarks/label_maps")
    parser.add_argument("--repeats", type=int, default=2, help="timings per run of a timed volume (the fastest counts)")
    parser.add_argument(
        "--cases", nargs="+", choices=[c for _, c in CASES + UNTIMED], help="only these (default: all four)"
    )
    args = parser.parse_args()
    model = ICLSAM()
    rows, times = [], []
    for set_name, case in [(s, c) for s, c in CASES + UNTIMED if not args.cases or c in args.cases]:
        folder = Path(args.data) / set_name
        scan, labels = read_scan(folder / f"{case}_image.nii.gz"), read_scan(folder / f"{case}_label.nii.gz")
        timed_case = (set_name, case) in CASES
        found, seconds = run_case(
            model, scan.array, labels.array.astype(np.int64), scan.spacing, args.k, timed_case, args.repeats
        )
        rows += [{"set": set_name, "case": case, **r} for r in found]
        runs = {key: " / ".join(f"{t:.1f}" for t in value) for key, value in seconds.items() if key.endswith("_s")}
        if timed_case:
            times.append(
                {
                    "set": set_name,
                    "case": case,
                    "one_pass_s": min(seconds["one_pass_s"]),
                    "separate_s": min(seconds["separate_s"]),
                    "one_pass_runs_s": runs["one_pass_s"],
                    "separate_runs_s": runs["separate_s"],
                    "encoder_passes": f"{seconds['one_pass_encoder_passes']} / {seconds['separate_encoder_passes']}",
                }
            )
        print(case, runs, flush=True)
    table, timing = pd.DataFrame(rows), pd.DataFrame(times)
    table["difference"] = table["one_pass"] - table["alone"]
    timing["ratio"] = timing["one_pass_s"] / timing["separate_s"]
    write_csv_atomic(table, Path(args.out) / "volumes.csv")
    text = (
        f"# Label maps on volumes: one pass against each label alone (k = {args.k} annotated slices; "
        f"LiteMedSAM, ICL model {model.icl})\n\n## 3-D Dice per label\n\n"
        + table.round(3).to_markdown(index=False)
        + f"\n\n## Time (each run from an empty encoder cache; the fastest of {args.repeats}, run in the order "
        "one pass, separate, separate, one pass, ...; encoder passes: one pass / separate)\n\n"
        + timing.round(2).to_markdown(index=False)
        + "\n"
    )
    write_text_atomic(Path(args.out) / "volumes.md", text)
    print(text)


if __name__ == "__main__":
    main()
