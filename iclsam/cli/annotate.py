"""`iclsam annotate`: a folder annotated in napari (`apps.napari_annotator`); `iclsam evaluate-annotation`:
the simulated user on a prepared folder (`pipeline.evaluate_annotation`)."""

from __future__ import annotations

import sys

from iclsam.cli.options import (
    add_model,
    build_model,
    csv_path,
    model_record,
    positive_int,
    unit_interval,
    write_rows_and_record,
)

METHOD_CHOICES = ("sam-clicks", "fixed-context", "growing-context")  # iclsam.pipeline.evaluate_annotation.METHODS
PROPOSAL_MIN_CONFIDENCE = 0.8  # iclsam.apps.annotation.PROPOSAL_MIN_CONFIDENCE (the help imports no model)


def add_annotate(commands) -> None:
    p = commands.add_parser(
        "annotate",
        help="annotate a folder in napari: ICL-SAM proposes, clicks correct, each accepted mask joins the context",
    )
    p.add_argument("--images", required=True, help="a folder of images (PNG, JPEG, TIFF, BMP, 2-D NIfTI slices)")
    p.add_argument("--masks", help="the masks folder (default: <images>-masks beside it; never the image folder)")
    p.add_argument("--max-context", type=positive_int, default=16, help="images kept in the context (default 16)")
    add_min_confidence(p)
    add_model(p)
    p.set_defaults(run=annotate)


def add_min_confidence(p) -> None:
    p.add_argument(
        "--min-confidence",
        type=unit_interval,
        default=PROPOSAL_MIN_CONFIDENCE,
        help="a proposal less confident than this (the confidence map's mean over it) is withheld and the image "
        f"starts empty (default {PROPOSAL_MIN_CONFIDENCE}; 0: always shown)",
    )


def annotate(args) -> int:
    from pathlib import Path

    try:
        import napari
    except ImportError:
        raise RuntimeError("iclsam annotate needs napari: pip install 'iclsam[gui]'") from None
    from iclsam.apps.annotation_folder import FolderAnnotation
    from iclsam.apps.napari_annotator import AnnotatorWidget, default_masks_folder

    images = Path(args.images)
    masks = Path(args.masks) if args.masks else default_masks_folder(images)
    session = FolderAnnotation(
        build_model(args), images, masks, args.max_context, args.min_confidence
    )  # bad folders: one line, no window
    viewer = napari.Viewer(title="ICL-SAM annotator")
    widget = AnnotatorWidget(viewer, max_context=args.max_context)
    viewer.window.add_dock_widget(widget, area="right", name="ICL-SAM annotator")
    widget.open_session(session)
    napari.run()
    return 0


def add_evaluate_annotation(commands) -> None:
    p = commands.add_parser(
        "evaluate-annotation",
        help="clicks a simulated user needs to bring each image to Dice .90: clicks alone, a fixed context, a growing one",
    )
    p.add_argument("--data", required=True, help="a prepared folder (<task>/images, <task>/masks, meta.csv)")
    p.add_argument("--tasks", nargs="+", help="only these tasks (sub-folders)")
    p.add_argument("--images", type=positive_int, default=20, help="images per task, in a seeded order (default 20)")
    p.add_argument("--methods", nargs="+", choices=METHOD_CHOICES, default=list(METHOD_CHOICES))
    p.add_argument("--max-context", type=positive_int, default=16, help="images kept in the context (default 16)")
    p.add_argument("--max-clicks", type=positive_int, default=20, help="clicks per image at most (default 20)")
    add_min_confidence(p)
    p.add_argument("--seed", type=int, default=0, help="the order of the images (default 0)")
    add_model(p)
    p.add_argument("--out", type=csv_path, help="CSV: task, method, image, clicks, dice, seconds; its record beside it")
    p.set_defaults(run=evaluate_annotation)


def evaluate_annotation(args) -> int:
    from iclsam.pipeline.evaluate_annotation import annotation_summary
    from iclsam.pipeline.evaluate_annotation import evaluate_annotation as run

    model = build_model(args)
    rows = run(
        model,
        args.data,
        tasks=args.tasks,
        images=args.images,
        seed=args.seed,
        methods=args.methods,
        max_context=args.max_context,
        max_clicks=args.max_clicks,
        min_confidence=args.min_confidence,
        progress=lambda done: print(
            f"{done[0]['task']} {done[0]['method']}: {sum(r['clicks'] for r in done) / len(done):.2f} clicks per image",
            file=sys.stderr,
        ),
    )
    print(f"Clicks to Dice .90 per image ({args.data}; SAM {model.sam.backbone.name}, ICL {model.icl}):\n")
    print(annotation_summary(rows).to_markdown(index=False, floatfmt=".2f"))
    if args.out:
        record = {
            "data": str(args.data),
            "images": args.images,
            "seed": args.seed,
            "methods": args.methods,
            "max_context": args.max_context,
            "max_clicks": args.max_clicks,
            "min_confidence": args.min_confidence,
            **model_record(model),
        }
        write_rows_and_record(rows, args.out, record)
    return 0


ANNOTATION_COMMANDS = (add_annotate, add_evaluate_annotation)
