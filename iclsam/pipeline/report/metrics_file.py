"""metrics.json: Dice per ICL model and task (`dvc metrics`), and the grid's encoder counts."""

from __future__ import annotations

import pandas as pd

from iclsam.pipeline.report.tables import dice_by_m


def dice_metrics(scores: pd.DataFrame, icl_first: str) -> dict:
    """The Dice part of metrics.json (`dvc metrics show / diff`): per ICL model, the mean over tasks
    of the ICL model alone, the full method and SAM with GT boxes at each m; per task, the full
    method of the default ICL model (`icl_first`) at each m. Rounded to 4 digits."""

    def by_m(frame):
        return {f"m{int(m)}": round(float(v), 4) for m, v in frame.items()}

    out = {"mean_over_tasks": {}, "full_method_per_task": {}}
    for icl in sorted(scores["icl"].unique(), key=lambda i: (i != icl_first, i)):
        out["mean_over_tasks"][icl] = {
            name: by_m(dice_by_m(scores, icl, variant).set_index("m").mean(axis=1))
            for name, variant in (("icl_alone", "alone"), ("iclsam", "iclsam"), ("sam_gt", "sam+gt"))
        }
    full = dice_by_m(scores, icl_first, "iclsam").set_index("m")
    out["full_method_per_task"] = {task: by_m(full[task]) for task in full.columns}
    return out


def run_summary(profile: str, records: list[dict], backbones: int) -> dict:
    """metrics.json: encoder passes against unique images and backbones, from the grid's run records
    (timings stay in the untracked run records, so the same run gives the same file)."""
    images = set().union(*(r["images"] for r in records))
    passes = sum(r["encoder_passes"] for r in records)
    return {
        "profile": profile,
        "encoder_passes": passes,
        "encoder_cache_hits": sum(r["encoder_cache_hits"] for r in records),
        "unique_images": len(images),
        "backbones": backbones,
        "encoder_passes_per_image_and_backbone": round(passes / max(len(images) * backbones, 1), 4),
    }
