"""The volume commands: segment-volume (a scan from a few annotated slices) and evaluate-volumes."""

from __future__ import annotations

import sys

from iclsam.cli.options import (
    add_label_options,
    add_model,
    build_model,
    csv_path,
    model_record,
    positive_int,
    write_rows_and_record,
)

METHOD_CHOICES = ("iclsam", "interpolation", "contour-interpolation")  # iclsam.apps.volumes.METHODS


def slice_list(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        import argparse

        raise argparse.ArgumentTypeError(f"a comma-separated list of slice indices, got {text!r}") from None


def add_segment_volume(commands) -> None:
    p = commands.add_parser("segment-volume", help="segment a whole CT or MRI scan from a few annotated slices of it")
    add_model(p)
    p.add_argument("--image", required=True, help="the scan: NIfTI, NRRD, MHA/MHD, or a DICOM series folder")
    p.add_argument(
        "--annotations", help="a label volume on the scan's grid holding labels on the annotated slices only"
    )
    p.add_argument(
        "--slices",
        type=slice_list,
        help="the annotated slices, e.g. 12,30,48 (so that empty ones count; default: those holding a label)",
    )
    p.add_argument("--axis", type=int, default=2, help="the slice axis of the array as nibabel loads it (default 2)")
    p.add_argument(
        "--label",
        type=int,
        help="segment this label value alone (default: each label of the annotations; one label map out)",
    )
    add_label_options(p)
    p.add_argument(
        "--support-volumes",
        nargs="+",
        default=[],
        metavar="IMAGE:LABELS",
        help="other annotated scans as context, each image:labels",
    )
    p.add_argument(
        "--boxes",
        help="CSV of boxes drawn on one to three slices instead of masks: columns slice, x0, y0, x1, y1 (pixels "
        "of the slice: x along its columns, y along its rows; one row per box); SAM turns each into a mask",
    )
    p.add_argument(
        "--method",
        choices=METHOD_CHOICES,
        default="iclsam",
        help="iclsam (default), interpolation (fill between the annotated slices: signed-distance shape "
        "interpolation) or contour-interpolation (3D Slicer's fill between slices: morphological contour "
        "interpolation, needs itk-morphologicalcontourinterpolation)",
    )
    p.add_argument("--out", required=True, help="the label volume to write (.nii.gz or .nii), on the scan's grid")
    p.add_argument("--overwrite", action="store_true", help="replace --out even when it is a file iclsam did not write")
    p.set_defaults(run=segment_volume)


def segment_volume(args) -> int:
    from iclsam.apps.volumes.files import segment_volume_files

    model = build_model(args) if args.method == "iclsam" or args.boxes else None
    record = segment_volume_files(
        model,
        args.image,
        args.annotations,
        args.out,
        slices=args.slices,
        axis=args.axis,
        label=args.label,
        support_volumes=args.support_volumes,
        method=args.method,
        labels=args.labels,
        nested=args.nested,
        overwrite=args.overwrite,
        boxes=args.boxes,
    )
    print(
        f"{args.out}: {record['method']}, {record['target_voxels']} target voxels on {record['target_slices']} slices "
        f"from annotated slices {record['annotated']} ({record['seconds']} s)"
    )
    if record["next_slice"] is not None:
        print(f"to improve it, annotate slice {record['next_slice']} next (the least confident one)")
    return 0


def add_evaluate_volumes(commands) -> None:
    p = commands.add_parser(
        "evaluate-volumes", help="3-D Dice / HD95 of ICL-SAM and interpolation from k annotated slices"
    )
    add_model(p)
    p.add_argument(
        "--data",
        required=True,
        help="a folder of <case>_image.nii.gz / <case>_label.nii.gz pairs (sets as sub-folders)",
    )
    p.add_argument("--sets", nargs="+", help="only these sets (sub-folders)")
    p.add_argument(
        "--slices",
        type=positive_int,
        nargs="+",
        default=[1, 3, 5],
        help="k annotated slices per volume (default 1 3 5)",
    )
    p.add_argument("--methods", nargs="+", choices=METHOD_CHOICES, default=list(METHOD_CHOICES))
    p.add_argument("--labels", type=int, nargs="+", help="the target: these label values (default: every label > 0)")
    p.add_argument("--axis", type=int, default=2, help="the slice axis (default 2)")
    p.add_argument("--no-leave-one-out", action="store_true", help="skip the row from the other volumes of each set")
    p.add_argument("--out", type=csv_path, help="CSV of every case's row to write; its run record beside it (.json)")
    p.add_argument(
        "--per-slice",
        type=csv_path,
        help="CSV of every slice's Dice with its distance to the nearest annotated slice; prints their mean by distance",
    )
    p.set_defaults(run=evaluate_volumes)


def evaluate_volumes(args) -> int:
    from iclsam.apps.volumes.evaluate_volumes import distance_summary, volume_markdown, volume_summary
    from iclsam.apps.volumes.evaluate_volumes import evaluate_volumes as run
    from iclsam.common.atomic import write_csv_atomic

    model = build_model(args)
    slices = [] if args.per_slice else None
    rows = run(
        model,
        args.data,
        args.slices,
        args.methods,
        axis=args.axis,
        sets=args.sets,
        labels=args.labels,
        leave_one_out=not args.no_leave_one_out,
        per_slice=slices,
        progress=lambda row: print(
            f"{row['set']}/{row['case']} {row['method']} k={row['k']}: Dice {row['dice']:.3f}", file=sys.stderr
        ),
    )
    print(
        f"Mean 3-D Dice / HD95 (mm) per set ({args.data}; SAM {model.sam.backbone.name}, ICL {model.icl}; "
        "k annotated slices evenly inside the target's extent; 'other volumes': no annotated slice, the set's "
        "other volumes as context):\n"
    )
    print(volume_markdown(volume_summary(rows)))
    if slices:
        import pandas as pd

        per_slice = pd.concat(slices, ignore_index=True)
        print("\nMean Dice per slice by its distance (slices) to the nearest annotated slice (number of slices):\n")
        print(distance_summary(per_slice))
        write_csv_atomic(per_slice, args.per_slice)
    if args.out:
        record = {
            "data": str(args.data),
            "slices": args.slices,
            "methods": args.methods,
            "labels": args.labels,
            "axis": args.axis,
            "box_confidence": args.box_confidence,
            "box_min_area": args.box_min_area,
            **model_record(model),
        }
        write_rows_and_record(rows, args.out, record)
    return 0


VOLUME_COMMANDS = (add_segment_volume, add_evaluate_volumes)
