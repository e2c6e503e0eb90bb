"""Issue 44's other road, measured: our UniverSeg-architecture network (the shipped weights, trained
on generated tasks, as the start) trained further on real-wide's real tasks, then scored
leave-family-out against the training-free `features` model and the shipped weights, on the same
support sets and queries as `benchmarks/label_attention_lofo.py` (`icl_lofo.evaluate_tasks`).

    python benchmarks/universeg_real_wide.py --data ../shared/data/real-wide --fold 0 --minutes 30 --out /tmp/useg

Training: episodes as UniverSeg's own (a task of a training family, m uniform in 1..8, support and
query from different patients where the task has enough), at the shipped network's input size; one
flip or quarter turn for the whole episode (task augmentation) and a gamma and contrast change per
image; soft Dice + BCE; Adam, lr 1e-4 cosine-decayed over the time budget; seeded. Writes
OUT.pt (state_dict), OUT.json (settings, steps, seconds, loss curve), OUT.csv (one row per query,
model and variant) and OUT.md (the per-family table)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from iclsam.common.atomic import write_atomic, write_csv_atomic, write_text_atomic
from iclsam.data.folder import open_task
from iclsam.data.splits import case_column
from iclsam.method.icl.universeg_backend import UniverSegICL
from iclsam.method.model import ICLSAM
from iclsam.method.sam import SamPredictor
from iclsam.method.universeg.preprocessing import universeg_image, universeg_label
from iclsam.method.universeg.weights import load_shipped_universeg
from iclsam.pipeline.icl_corpus import read_corpus
from iclsam.pipeline.icl_lofo import draw_split, evaluate_tasks, family_folds, family_table
from iclsam.pipeline.training import fit


def load_task(task, size: int) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """Every pair of a task at the network's input size: images N x 1 x s x s, labels alike, groups."""
    folder = open_task(task.root)
    pairs = [folder.load(i) for i in folder.ids]
    images = torch.stack([universeg_image(x, "support", size=size) for x, _ in pairs])
    labels = torch.stack([universeg_label(y, size) for _, y in pairs])
    return images, labels, [str(g) for g in folder.meta[case_column(folder.meta)]]


def jitter(x: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """A gamma in [0.7, 1.4] and a contrast and brightness change, per image (values stay in [0, 1])."""
    gamma, contrast, shift = rng.uniform(0.7, 1.4), rng.uniform(0.8, 1.2), rng.uniform(-0.08, 0.08)
    return ((x.clamp(0, 1) ** gamma - 0.5) * contrast + 0.5 + shift).clamp(0, 1)


def episode(data: dict, by_family: dict, m: int, rng: np.random.Generator):
    """One episode: (query image, support images, support labels, query label), m supports."""
    family = sorted(by_family)[rng.integers(len(by_family))]
    names = [n for n in by_family[family] if len(data[n][2]) > m]
    images, labels, groups = data[names[rng.integers(len(names))]]
    support, query = draw_split(groups, m, 1, rng)
    turns, flip = int(rng.integers(4)), bool(rng.integers(2))

    def geometry(t):
        t = torch.rot90(t, turns, dims=(-2, -1))
        return t.flip(-1) if flip else t

    sup = torch.stack([jitter(images[i], rng) for i in support])
    return (
        geometry(jitter(images[query[0]], rng)),
        geometry(sup),
        geometry(labels[support]),
        geometry(labels[query[0]]),
    )


def train(data: dict, by_family: dict, minutes: float, out: Path, seed: int, batch: int = 4) -> dict:
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    net, size, _ = load_shipped_universeg()
    net.train()

    def next_batch():
        m = int(rng.integers(1, 9))
        parts = [episode(data, by_family, m, rng) for _ in range(batch)]
        return tuple(torch.stack([p[i] for p in parts]) for i in range(4))

    steps, curve = fit(net, next_batch, 1e-4, minutes, log_every=50)
    write_atomic(out.with_suffix(".pt"), lambda p: torch.save(net.eval().state_dict(), p))
    record = {"minutes": minutes, "steps": steps, "seed": seed, "batch": batch, "size": size, "loss_curve": curve}
    write_text_atomic(out.with_suffix(".json"), json.dumps(record, indent=1) + "\n")
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/real-wide"))
    parser.add_argument("--fold", type=int, default=0)
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    tasks = read_corpus(args.data)
    held = family_folds(sorted({t.family for t in tasks}))[args.fold]
    training = [t for t in tasks if t.family not in held]
    if not args.out.with_suffix(".pt").is_file():
        _, size, _ = load_shipped_universeg()
        data = {t.name: load_task(t, size) for t in training}
        by_family = {}
        for t in training:
            by_family.setdefault(t.family, []).append(t.name)
        print(f"{len(training)} training tasks from {len(by_family)} families; held out: {', '.join(held)}", flush=True)
        train(data, by_family, args.minutes, args.out, args.seed)
    sam = SamPredictor("lite", cache_size=8, cache_dir=".cache/embeddings")
    trained = UniverSegICL("shipped")
    trained.network.load_state_dict(torch.load(args.out.with_suffix(".pt"), weights_only=True))
    models = {
        "features": ICLSAM(sam=sam, icl="features"),
        "universeg-synthetic": ICLSAM(sam=sam, icl=UniverSegICL("shipped")),
        "universeg-real-wide": ICLSAM(sam=sam, icl=trained),
    }
    rows = evaluate_tasks(models, [t for t in tasks if t.family in held], progress=lambda n: print(n, flush=True))
    write_csv_atomic(rows, args.out.with_suffix(".csv"))
    table = family_table(rows)
    write_text_atomic(args.out.with_suffix(".md"), table.to_markdown() + "\n")
    print(table.to_markdown())


if __name__ == "__main__":
    main()
