"""The commands that prepare data and weights: prepare, sample-support, weights fetch,
train-universeg. Each has a function that declares its options and one that runs it."""

from __future__ import annotations

import dataclasses

from iclsam.cli.options import CHECKPOINT_CHOICES, DATASET_CHOICES, positive_int


def add_prepare(commands) -> None:
    p = commands.add_parser("prepare", help="bring a data set into the prepared folder format")
    p.add_argument("dataset", choices=[*DATASET_CHOICES, "synthetic"])
    p.add_argument("--raw", help="the official download, unpacked (see docs/data.md for each layout)")
    p.add_argument("--out", required=True, help="output folder; one sub-folder per task")
    p.add_argument("--seed", type=int, default=0, help="seed of the meta-support/query split (and of synthetic data)")
    p.add_argument("--max-side", type=int, default=1024, help="fundus photographs: cap the longest side (default 1024)")
    p.add_argument("--n-support", type=int, default=24, help="synthetic: meta-support cases per family")
    p.add_argument("--n-query", type=int, default=12, help="synthetic: query cases per family")
    p.add_argument("--figure", help="synthetic: also write a PNG of example cases")
    p.add_argument(
        "--allow-partial",
        action="store_true",
        help="prepare a download that lacks its meta-support or query part (e.g. Drishti-GS1 without Test/)",
    )
    p.set_defaults(run=prepare)


def prepare(args) -> int:
    from tqdm import tqdm

    from iclsam.data.prepare import SOURCES, prepare_source, prepare_synthetic

    if args.dataset == "synthetic":
        written = prepare_synthetic(
            args.out, seed=args.seed, n_support=args.n_support, n_query=args.n_query, progress=tqdm
        )
        if args.figure:
            from iclsam.pipeline.figures import synthetic_examples_figure

            synthetic_examples_figure(args.figure, seed=args.seed)
    else:
        if not args.raw:
            raise ValueError(f"--raw is required for {args.dataset}; expected layout: {SOURCES[args.dataset].layout}")
        written = prepare_source(
            args.dataset,
            args.raw,
            args.out,
            seed=args.seed,
            progress=tqdm,
            max_side=args.max_side,
            allow_partial=args.allow_partial,
        )
    for folder in written:
        print(folder)
    return 0


def add_sample_support(commands) -> None:
    p = commands.add_parser("sample-support", help="draw the support sets of every task (seeded)")
    p.add_argument("--data", required=True, help="folder of prepared tasks")
    p.add_argument("--out", required=True, help="CSV to write (task, m, draw, rank, id)")
    p.add_argument("--m", type=positive_int, nargs="+", default=[1, 2, 4, 8, 16, 32, 64], help="support sizes")
    p.add_argument("--draws", type=positive_int, default=10, help="draws per support size")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(run=sample_support)


def sample_support(args) -> int:
    from iclsam.common.atomic import write_csv_atomic
    from iclsam.data.folder import open_tasks
    from iclsam.data.splits import draws_from_splits, split_table

    tasks = open_tasks(args.data)
    path = write_csv_atomic(
        draws_from_splits(split_table(tasks, seed=args.seed), args.m, args.draws, args.seed), args.out
    )
    print(f"{path}: {len(tasks)} tasks, m in {args.m}, {args.draws} draws each")
    return 0


def add_weights(commands) -> None:
    p = commands.add_parser("weights", help="the official checkpoints: `iclsam weights fetch universeg|sam|medsam`")
    fetch_parser = p.add_subparsers(dest="action", required=True).add_parser(
        "fetch", help="download an official checkpoint from its publisher and check it by a strict load"
    )
    fetch_parser.add_argument("kind", choices=CHECKPOINT_CHOICES)
    fetch_parser.add_argument("--dest", default="checkpoints", help="folder to put it in (default checkpoints/)")
    fetch_parser.add_argument("--url", help="download from here instead (a mirror)")
    fetch_parser.set_defaults(run=weights_fetch)


def weights_fetch(args) -> int:
    from tqdm import tqdm

    from iclsam.apps.fetch import fetch

    path = fetch(args.kind, args.dest, url=args.url, progress=tqdm)
    print(f"{path}: checked (loads key for key)")
    return 0


def add_train_universeg(commands) -> None:
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


def train_universeg(args) -> int:
    from iclsam.pipeline.training import TrainingConfig, train

    config = TrainingConfig(
        encoder_widths=tuple(args.widths),
        size=args.size,
        minutes=args.minutes,
        steps=args.steps,
        batch=args.batch,
        max_support=args.max_support,
        lr=args.lr,
        seed=args.seed,
    )
    record = train(config, args.out)
    print(f"{args.out}.pt: {record['steps']} steps in {record['seconds']:.0f} s")
    return 0


def add_slice_volumes(commands) -> None:
    p = commands.add_parser(
        "slice-volumes", help="2-D tasks in the prepared format cut from real volumes (the real-dev-3d layout)"
    )
    p.add_argument("--data", required=True, help="folder of <set>/<case>_image.nii.gz and <case>_label.nii.gz")
    p.add_argument("--out", required=True, help="output folder; one sub-folder per task")
    p.add_argument(
        "--tasks",
        nargs="+",
        help="only these tasks (default: all: rd3d-brats-t1c rd3d-liver-ct rd3d-chest-lungs rd3d-chest-tumour "
        "rd3d-brain-t1post)",
    )
    p.add_argument("--per-volume", type=positive_int, default=24, help="slices per volume, at most (default 24)")
    p.add_argument("--seed", type=int, default=0, help="seed of the meta-support/query split by volume")
    p.set_defaults(run=slice_volumes)


def slice_volumes(args) -> int:
    from iclsam.data.volume_slices import slice_volume_tasks

    for path in slice_volume_tasks(args.data, args.out, args.tasks, args.per_volume, seed=args.seed):
        print(f"{path}: {sum(1 for _ in (path / 'images').iterdir())} slices")
    return 0


def add_train_icl(commands) -> None:
    p = commands.add_parser(
        "train-icl", help="train the label-attention ICL model on a corpus of real tasks (real-wide's layout)"
    )
    p.add_argument("--data", required=True, help="the corpus: task folders and manifest.json (family, licence)")
    p.add_argument("--out", required=True, help="output stem: writes <out>.pt and <out>.json (its model card)")
    p.add_argument("--exclude-families", nargs="*", default=[], help="families left out (leave-family-out)")
    p.add_argument("--versions", type=positive_int, default=2, help="versions of each image: itself and augmented")
    p.add_argument("--steps", type=positive_int, help="training steps (default: the shipped weights')")
    p.add_argument("--batch", type=positive_int, help="episodes per step (default: the shipped weights')")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cache-dir", default=".cache/embeddings", help="SAM tokens are cached there")
    p.set_defaults(run=train_icl)


def train_icl(args) -> int:
    from tqdm import tqdm

    from iclsam.pipeline.icl_training import TrainingSettings, train_icl_files

    settings = TrainingSettings(seed=args.seed)
    settings = dataclasses.replace(settings, steps=args.steps or settings.steps, batch=args.batch or settings.batch)
    bar = tqdm(total=settings.steps, desc="train-icl", unit="step")

    def progress(step: int, loss: float) -> None:
        bar.update(1)
        bar.set_postfix(loss=f"{loss:.3f}")

    card = train_icl_files(
        args.data,
        args.out,
        settings,
        versions=args.versions,
        exclude=set(args.exclude_families),
        cache_dir=args.cache_dir,
        progress=progress,
        encoding=lambda i, n, name: bar.set_description(f"encoding {i}/{n} {name}"),
    )
    bar.close()
    print(f"{args.out}.pt: {card['episodes']} episodes in {card['seconds']:.0f} s, loss {card['loss_last']:.3f}")
    return 0


DATA_COMMANDS = (add_prepare, add_sample_support, add_weights, add_train_universeg, add_train_icl, add_slice_volumes)
