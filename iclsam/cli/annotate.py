"""`iclsam evaluate-annotation`: the simulated user on a prepared folder (`pipeline.evaluate_annotation`)."""

from __future__ import annotations

import sys

from iclsam.cli.options import add_model, build_model, csv_path, model_record, positive_int, write_rows_and_record

METHOD_CHOICES = ("sam-clicks", "fixed-context", "growing-context")  # iclsam.pipeline.evaluate_annotation.METHODS


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
            **model_record(model),
        }
        write_rows_and_record(rows, args.out, record)
    return 0


ANNOTATION_COMMANDS = (add_evaluate_annotation,)
