"""Leave-family-out cross-validation of the label-attention ICL model on real-wide, against the
training-free features model: 5 folds of families; for each, a network trained with the other folds'
families (`iclsam train-icl --exclude-families ...`), then both models on the held-out families'
tasks (m = 1, 4, 8; one seeded draw; up to 6 queries from other patients), ICL alone and the full
method, LiteMedSAM, default settings otherwise.

    python benchmarks/label_attention_lofo.py --data ../shared/data/real-wide --out benchmarks/label_attention

Writes OUT/fold<i>.pt/.json (weights and card; kept, so a rerun only evaluates), OUT/fold<i>.csv (one
row per query, model and variant), and when every fold is there OUT/lofo.csv and OUT/lofo.md (the
per-family table). Each fold is written when done: a run cut short resumes."""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import pandas as pd

from iclsam.common.atomic import write_csv_atomic, write_text_atomic
from iclsam.method.model import ICLSAM
from iclsam.method.sam import SamPredictor
from iclsam.pipeline.icl_corpus import read_corpus
from iclsam.pipeline.icl_lofo import evaluate_tasks, family_folds, family_table
from iclsam.pipeline.icl_training import TrainingSettings, train_icl_files


def run_fold(i: int, fold: list[str], tasks, sam, args) -> pd.DataFrame:
    stem = args.out / f"fold{i}"
    if not stem.with_suffix(".pt").is_file():
        settings = dataclasses.replace(TrainingSettings(), steps=args.steps or TrainingSettings().steps)
        started = time.perf_counter()

        def progress(step: int, loss: float) -> None:
            if step % 100 == 0:
                print(f"fold {i}: step {step} loss {loss:.4f} {time.perf_counter() - started:.0f} s", flush=True)

        card = train_icl_files(
            args.data, stem, settings, versions=args.versions, exclude=set(fold), sam=sam, progress=progress
        )
        print(f"fold {i}: trained in {time.perf_counter() - started:.0f} s, loss {card['loss_last']}", flush=True)
    models = {
        "features": ICLSAM(sam=sam, icl="features"),
        "label-attention": ICLSAM(sam=sam, icl="label-attention", icl_checkpoint=stem.with_suffix(".pt")),
    }
    held_out = [t for t in tasks if t.family in fold]
    rows = evaluate_tasks(models, held_out, progress=lambda name: print(f"fold {i}: {name}", flush=True))
    rows.insert(0, "fold", i)
    write_csv_atomic(rows, stem.with_suffix(".csv"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/real-wide"))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/label_attention"))
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--steps", type=int, help="training steps per fold (default: the shipped weights')")
    parser.add_argument("--versions", type=int, default=2)
    parser.add_argument("--only", type=int, nargs="*", help="run these folds only")
    args = parser.parse_args()
    tasks = read_corpus(args.data)
    folds = family_folds(sorted({t.family for t in tasks}), args.folds)
    sam = SamPredictor("lite", cache_size=8, cache_dir=".cache/embeddings")
    parts = []
    for i, fold in enumerate(folds):
        path = args.out / f"fold{i}.csv"
        if path.is_file():
            parts.append(pd.read_csv(path))
        elif args.only is None or i in args.only:
            parts.append(run_fold(i, fold, tasks, sam, args))
    if len(parts) == len(folds):
        rows = pd.concat(parts, ignore_index=True)
        write_csv_atomic(rows, args.out / "lofo.csv")
        table = family_table(rows)
        text = "Leave-family-out on real-wide (Dice; folds: " + "; ".join(", ".join(f) for f in folds) + ")\n\n"
        write_text_atomic(args.out / "lofo.md", text + table.to_markdown() + "\n")
        print(text + table.to_markdown())


if __name__ == "__main__":
    main()
