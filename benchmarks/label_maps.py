"""Several labels in one pass against each label segmented alone, on 2-D slices of real volumes.

    python benchmarks/label_maps.py [--data ../shared/data/real-dev-3d] [--m 4] [--queries 8] [--out DIR]

For each volume of the multi-label sets (BraTS T1c: necrosis, oedema, non-enhancing, enhancing
tumour; LUNG1 chest CT: left lung, right lung, cord, tumour): axial slices, one intensity window per
volume; m support slices evenly spread over the slices holding the most labels, `--queries` query
slices evenly spread over the slices holding any label, none within 2 slices of a support slice.
A label is segmented if some support slice holds it (the others are left out, in both runs).

Per label: Dice of the one-pass label map (`ICLSAM.predict` with label maps, overlaps resolved)
and of the label segmented alone (`predict` with its binary masks, the label's own pixels), over
the queries where the truth or either prediction holds the label. Time: the one pass against the
K separate runs, each run starting with an empty encoder cache (as K separate `iclsam segment`
runs would), same model, same process. Writes `labels.csv` (one row per volume, query and label),
`summary.md`, and prints the summary."""

from __future__ import annotations

import argparse
import os
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from iclsam import ICLSAM
from iclsam.apps.volumes.checks import normalise_intensities
from iclsam.apps.volumes.scan_io import read_scan
from iclsam.common.atomic import write_csv_atomic, write_text_atomic
from iclsam.common.metrics import dice

SETS = ("deepmedic_brats2013_t1c", "nsclc_radiomics_lung1_ct")


def slices_of(image_path: Path, label_path: Path, m: int, queries: int):
    """(support [(image, label map)], queries [(image, label map)]) of one volume (see the module)."""
    image = np.moveaxis(read_scan(image_path).array, 2, 0)
    labels = np.moveaxis(read_scan(label_path).array, 2, 0).astype(np.uint8)
    window = normalise_intensities(image)
    count = np.array([len(set(np.unique(s).tolist()) - {0}) for s in labels])
    rich = np.nonzero(count == count.max())[0]
    support = sorted(set(rich[np.linspace(0, len(rich) - 1, m).round().astype(int)].tolist()))
    holding = [z for z in np.nonzero(count > 0)[0] if min(abs(z - s) for s in support) > 2]
    chosen = sorted(set(np.asarray(holding)[np.linspace(0, len(holding) - 1, queries).round().astype(int)].tolist()))
    return [(window[z], labels[z]) for z in support], [(window[z], labels[z]) for z in chosen]


def benchmark_arguments(description: str) -> argparse.Namespace:
    """The options the 2-D label-map benchmarks share: --data, --m, --queries, --out."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--data", default="../shared/data/real-dev-3d")
    parser.add_argument("--m", type=int, default=4)
    parser.add_argument("--queries", type=int, default=8)
    parser.add_argument("--out", default="benchmarks/label_maps")
    return parser.parse_args()


def volume_cases(data: str, m: int, queries: int):
    """(set, case, support, queries) for each volume of `SETS` under `data` (see `slices_of`)."""
    for set_name in SETS:
        for image in sorted((Path(data) / set_name).glob("*_image.nii.gz")):
            case = image.name.split("_image.nii")[0]
            yield set_name, case, *slices_of(image, image.with_name(f"{case}_label.nii.gz"), m, queries)


def run_volume(model: ICLSAM, support, queries) -> tuple[list[dict], float, float]:
    """Rows per query and label, the one pass's seconds and the separate runs' seconds."""
    images, maps = [x for x, _ in support], [y for _, y in support]
    values = sorted(set(np.unique(np.stack(maps)).tolist()) - {0})
    restricted = [(x, np.where(np.isin(y, values), y, 0)) for x, y in queries]
    model.sam.forget()
    model.clear_support_sets()
    start = time.perf_counter()
    together = model.predict_many(images, maps, [x for x, _ in restricted], variants=["iclsam"])
    one_pass = time.perf_counter() - start
    alone, separate = {}, 0.0
    for value in values:
        model.sam.forget()
        model.clear_support_sets()
        holding = [i for i, y in enumerate(maps) if (y == value).any()]
        start = time.perf_counter()
        alone[value] = model.predict_many(
            [images[i] for i in holding],
            [maps[i] == value for i in holding],
            [x for x, _ in restricted],
            variants=["iclsam"],
        )
        separate += time.perf_counter() - start
    rows = []
    for q, (_, truth) in enumerate(restricted):
        for value in values:
            t, p, a = truth == value, together[q].labels == value, alone[value][q].masks["iclsam"]
            if t.any() or p.any() or a.any():
                rows.append(
                    {
                        "query": q,
                        "label": value,
                        "one_pass": dice(p, t),
                        "alone": dice(a, t),
                        "truth_pixels": int(t.sum()),
                    }
                )
    return rows, one_pass, separate


def main() -> None:
    warnings.filterwarnings("ignore", message="Importing from timm")
    args = benchmark_arguments(__doc__.split("\n\n")[0])
    model = ICLSAM()
    rows, times = [], []
    for set_name, case, support, queries in volume_cases(args.data, args.m, args.queries):
        found, one_pass, separate = run_volume(model, support, queries)
        rows += [{"set": set_name, "case": case, **r} for r in found]
        times.append({"set": set_name, "case": case, "one_pass_s": one_pass, "separate_s": separate})
        print(case, f"one pass {one_pass:.1f} s, separate {separate:.1f} s", flush=True)
    table = pd.DataFrame(rows)
    out = Path(args.out)
    write_csv_atomic(table, out / "labels.csv")
    per_label = table.groupby(["set", "label"], as_index=False).agg(
        one_pass=("one_pass", "mean"), alone=("alone", "mean"), queries=("query", "count")
    )
    per_label["difference"] = per_label["one_pass"] - per_label["alone"]
    timing = pd.DataFrame(times)
    timing["ratio"] = timing["one_pass_s"] / timing["separate_s"]
    text = (
        f"# Label maps: one pass against each label alone (real-dev-3d 2-D slices, m = {args.m}, "
        f"{args.queries} queries per volume; LiteMedSAM, ICL model {model.icl}; {os.cpu_count()} CPUs, "
        f"torch threads {torch.get_num_threads()})\n\n## Mean Dice per label\n\n"
        + per_label.round(3).to_markdown(index=False)
        + "\n\n## Time: the one pass against the K separate runs (each from an empty encoder cache)\n\n"
        + timing.round(2).to_markdown(index=False)
        + f"\n\nTotal: one pass {timing['one_pass_s'].sum():.1f} s, separate runs {timing['separate_s'].sum():.1f} s, "
        f"ratio {timing['one_pass_s'].sum() / timing['separate_s'].sum():.2f}.\n"
    )
    write_text_atomic(out / "summary.md", text)
    print(text)


if __name__ == "__main__":
    main()
