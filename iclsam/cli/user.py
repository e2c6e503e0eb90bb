"""The commands a user runs on images: demo, segment, evaluate. Each has a function that declares its options and
one that runs it; the heavy modules are imported when a command runs, not before."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

from iclsam.cli.options import (
    ANNOTATION_CHOICES,
    REAL_DATA_VARIABLE,
    VARIANT_CHOICES,
    add_backbone,
    add_label_options,
    add_model,
    add_refinements,
    build_model,
    csv_path,
    model_settings,
    positive_int,
    real_data_default,
)


def _path(text: str | None) -> Path | None:
    return None if text is None else Path(text)


def add_demo(commands) -> None:
    p = commands.add_parser("demo", help="segment query images with ICL-SAM and print Dice per variant")
    add_model(p)
    p.add_argument("--m", type=int, default=4, help="support images per task (default 4)")
    p.add_argument("--queries", type=int, default=5, help="query images per task (default 5)")
    p.add_argument(
        "--data",
        default=real_data_default(),
        help=f"your own prepared folder of real images, segmented after the synthetic tasks (default: ${REAL_DATA_VARIABLE})",
    )
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(run=demo)


def demo(args) -> int:
    from iclsam.pipeline.demo import run_demo

    return run_demo(build_model(args), args)


def add_segment(commands) -> None:
    p = commands.add_parser("segment", help="segment your own images from a few labelled examples")
    add_model(p)
    p.add_argument("--support-images", required=True, help="folder of labelled example images")
    labels = p.add_mutually_exclusive_group(required=True)
    labels.add_argument(
        "--support-masks",
        help="folder of their masks (same file stems; nonzero = target) or label maps (0 = background; "
        "two or more values: one label map per query with those values)",
    )
    labels.add_argument(
        "--support-boxes", help="instead of masks: CSV of boxes (image, x0, y0, x1, y1; a row per object)"
    )
    labels.add_argument("--support-points", help="instead of masks: CSV of clicks (image, x, y; a row per object)")
    p.add_argument("--query", required=True, help="folder of images to segment (2-D files or NIfTI volumes)")
    p.add_argument(
        "--out",
        required=True,
        help="output folder: one mask per query (PNG; NIfTI for NIfTI); new, "
        "empty, or one an earlier iclsam segment wrote",
    )
    p.add_argument("--query-masks", help="ground truth of the queries: also writes dice.csv")
    add_label_options(p)
    p.add_argument(
        "--variant",
        choices=VARIANT_CHOICES,
        default="iclsam",
        help="which prediction to write (default iclsam, the full method; universeg* with --icl universeg, "
        "features with --icl features)",
    )
    p.set_defaults(run=segment)


def segment(args) -> int:
    from tqdm import tqdm

    from iclsam.apps.segment import segment_folders

    model = build_model(args)
    print(f"ICL-SAM: SAM backbone {model.sam.backbone.name}; ICL weights: {model.icl_weights}; variant {args.variant}")
    if model.icl == "universeg" and args.universeg_checkpoint in (None, "shipped"):
        print(
            "note: the shipped UniverSeg-architecture weights were trained on generated (synthetic) tasks and are "
            "weak on real images (iclsam/weights/universeg_synth_w32_s64.md); for real work pass "
            "--universeg-checkpoint universeg_v1_nf64_ss64_STA.pt or use --icl features",
            file=sys.stderr,
        )
    table = segment_folders(
        model,
        Path(args.support_images),
        _path(args.support_masks),
        Path(args.query),
        Path(args.out),
        _path(args.query_masks),
        args.variant,
        progress=tqdm,
        support_boxes=_path(args.support_boxes),
        support_points=_path(args.support_points),
        labels=args.labels,
        nested=args.nested,
    )
    if table is not None:
        print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
        print(f"mean Dice ({args.variant}): {table[args.variant].mean():.4f}; written to {Path(args.out) / 'dice.csv'}")
    return 0


def add_evaluate(commands) -> None:
    p = commands.add_parser("evaluate", help="Dice of every variant on a prepared folder, under the paper's protocol")
    p.add_argument("--data", required=True, help="a prepared folder (<task>/images, <task>/masks, meta.csv)")
    p.add_argument("--tasks", nargs="+", help="only these tasks (sub-folders)")
    p.add_argument("--m", type=positive_int, nargs="+", default=[1, 4], help="support sizes (default 1 4)")
    p.add_argument("--draws", type=positive_int, default=3, help="support draws per size (default 3)")
    p.add_argument("--queries", type=positive_int, default=16, help="query images per task, at most (default 16)")
    add_backbone(p, icl_many=True)
    p.add_argument("--cache-dir", help="keep SAM image embeddings there (faster reruns)")
    add_refinements(p)
    p.add_argument(
        "--annotation",
        nargs="+",
        choices=ANNOTATION_CHOICES,
        help="weak context: support sets annotated as masks, boxes or clicks, each derived from the "
        "true masks and densified by SAM (adds an annotation column; default: true masks only)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--out",
        type=csv_path,
        help="CSV to write: task, m, icl, variant, dice, n (and annotation); its run record beside it (.json)",
    )
    p.add_argument(
        "--scores", type=csv_path, help="CSV of every query's Dice to write: task, m, draw, query, variant, dice, icl"
    )
    p.set_defaults(run=evaluate)


def evaluate(args) -> int:
    from tqdm import tqdm

    from iclsam.common.atomic import write_csv_atomic, write_text_atomic
    from iclsam.method.icl import resolve_icl
    from iclsam.method.model import ICLSAM
    from iclsam.method.sam import SamPredictor
    from iclsam.pipeline.evaluate_folder import evaluate as run_evaluation
    from iclsam.pipeline.evaluate_folder import report

    if not Path(args.data).is_dir():
        raise ValueError(f"--data {args.data}: not a folder (a prepared folder: <task>/images, <task>/masks, meta.csv)")
    sam = SamPredictor(
        args.sam, args.sam_checkpoint, device=args.device, cache_dir=args.cache_dir
    )  # one encoder pass per image
    models = {}
    for icl in dict.fromkeys(resolve_icl(name, args.universeg_checkpoint) for name in args.icl):
        models[icl] = ICLSAM(
            sam=sam,
            icl=icl,
            universeg_checkpoint=args.universeg_checkpoint,
            icl_checkpoint=args.icl_checkpoint,
            **model_settings(args),
        )
        print(
            f"ICL model {icl}: {models[icl].icl_weights}; SAM backbone {models[icl].sam.backbone.name}", file=sys.stderr
        )
    scores, summary = run_evaluation(
        models,
        args.data,
        args.m,
        args.draws,
        args.queries,
        tasks=args.tasks,
        seed=args.seed,
        progress=tqdm,
        annotations=args.annotation,
    )
    steering = {k: v.sam_steering for k, v in models.items()}
    print(
        report(
            summary, args.draws, args.queries, args.data, args.box_confidence, args.fusion, scores, steering=steering
        )
    )
    for path, table in ((args.out, summary), (args.scores, scores)):
        if path:
            print(f"written to {write_csv_atomic(table, path)}", file=sys.stderr)
    if args.out:  # what made the table, beside it
        record = evaluation_record(args, models, summary, sam, steering)
        written = write_text_atomic(Path(args.out).with_suffix(".json"), json.dumps(record, indent=1) + "\n")
        print(f"written to {written}", file=sys.stderr)
    return 0


USER_COMMANDS = (add_demo, add_segment, add_evaluate)


def evaluation_record(args, models: dict, summary, sam, steering: dict) -> dict:
    """What made `iclsam evaluate`'s table: data, protocol, models, settings, device."""
    return {
        "data": str(args.data),
        "tasks": sorted(summary["task"].unique()),
        "m": args.m,
        "draws": args.draws,
        "queries": args.queries,
        "seed": args.seed,
        "icl": list(models),
        "icl_weights": {k: v.icl_weights for k, v in models.items()},
        "sam": sam.backbone.name,
        "box_confidence": args.box_confidence,
        "box_min_area": args.box_min_area,
        "fusion": args.fusion,
        "sam_steering": steering,
        "device": str(sam.device),
        "annotation": args.annotation or ["mask"],
        "config": {k: dataclasses.asdict(v.config) for k, v in models.items()},  # every setting, per ICL model
    }
