"""How much faster iclsam does the work than the plain way of doing the same work, on this machine.

    python benchmarks/speed.py [--repeats 3] [--skip-pipeline] [--out benchmarks/speed.md]

Three parts, each a ratio measured in this one run (CPU, the threads torch uses here):
1. The confidence map's fit at m = 64 (64 x 4096 tokens x 256 features, SYNTHETIC CT images, which
   are square so every token is valid): our solver (L-BFGS in torch) and sklearn lbfgs on every
   token, and both on the ICL-SAM code's protocol (a seeded subsample: at most 30,000 tokens, then 80 % of them),
   against sklearn SAGA on every token (the paper's wording); held-out AUC on 16 other images.
2. Per query, SAM features cached (a warm encoder cache; SYNTHETIC brain FLAIR, m = 8, 8 queries):
   ICL-SAM (the full method only) against UniverSeg alone; the full variant set of one `predict`
   against each variant asked for in its own call; one support set shared by its queries against
   the support work redone for each query (the unshared way). For our shipped UniverSeg weights and
   for the official architecture (random weights: timing only, its boxes are whatever it predicts).
   Also what batching would give on this machine: UniverSeg over 8 queries of one support set,
   SAM's decoder over 3 boxes of one query, each against one at a time.
3. The default `dvc repro` from nothing in a temporary copy of this checkout (empty encoder cache):
   encoder passes per unique image and backbone, and the wall time of each stage (papermill's
   record in each executed notebook). About 9 minutes on 2 cores; `--skip-pipeline` leaves it out.

Writes the report (Markdown) to `--out` and prints it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from timing import best_of

from iclsam import ICLSAM
from iclsam.common.atomic import write_text_atomic
from iclsam.data.synthetic import synthetic_cases
from iclsam.method.confidence import fit_confidence_classifier, token_labels
from iclsam.method.sam import SamPredictor
from iclsam.method.universeg import UniverSeg, init_universeg_weights, universeg_image, universeg_label

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".cache" / "benchmark"


def all_tokens(sam: SamPredictor, images, masks) -> tuple[np.ndarray, np.ndarray]:
    """Every token of the 64 x 64 grid (n * 4096 x 256) and its label (>= half target), the
    public code's training matrix."""
    features, labels = [], []
    for x, y in zip(images, masks):
        embedding = sam.encode(x)
        features.append(embedding.features[0].flatten(1).T.numpy())
        fraction = torch.zeros(embedding.features.shape[-2:])
        fraction[: embedding.valid[0], : embedding.valid[1]] = torch.as_tensor(
            token_labels(y, embedding, sam.input_size)
        )
        labels.append(fraction.flatten().numpy() >= 0.5)
    return np.concatenate(features), np.concatenate(labels)


def part_confidence_fit(sam: SamPredictor, repeats: int) -> list[str]:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    cases = [c[2]["ct_kidney"] for c in synthetic_cases("abdomen", 0, 64, 16)]
    x, y = all_tokens(sam, [a for a, _ in cases[:64]], [b for _, b in cases[:64]])
    x_test, y_test = all_tokens(sam, [a for a, _ in cases[64:]], [b for _, b in cases[64:]])

    def sklearn_fit(solver):
        model = LogisticRegression(solver=solver, class_weight="balanced", C=1.0, max_iter=100, random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(x, y)
        return model.coef_[0], float(model.intercept_[0]), int(model.n_iter_[0])

    rows = []
    start = time.perf_counter()
    w, b, iterations = sklearn_fit("saga")  # once: about a minute
    saga_s = time.perf_counter() - start
    saga_auc = roc_auc_score(y_test, x_test @ w + b)
    rows.append(
        (
            "sklearn SAGA, every token (the plain way)",
            saga_s,
            saga_auc,
            f"{iterations} epochs{' (its limit: NOT converged)' if iterations >= 100 else ''}",
        )
    )
    result = {}
    s = best_of(repeats, lambda: result.update(fit=sklearn_fit("lbfgs")))
    w, b, iterations = result["fit"]
    rows.append(("sklearn lbfgs, every token", s, roc_auc_score(y_test, x_test @ w + b), f"{iterations} iterations"))
    for name, kwargs in (
        ("ours: L-BFGS in torch, every token", dict(solver="torch", train_fraction=1.0, max_tokens=None)),
        ("the ICL-SAM code's protocol: sklearn lbfgs on a seeded subsample, 30,000 tokens then 80 % (our default)", {}),
        ("ours on the code's protocol: L-BFGS in torch, the same subsample", dict(solver="torch")),
    ):
        s = best_of(repeats, lambda: result.update(fit=fit_confidence_classifier(x, y, **kwargs)))
        fit = result["fit"]
        tokens = "every token" if "max_tokens" in kwargs else "24,000 tokens"
        rows.append(
            (
                name,
                s,
                roc_auc_score(y_test, x_test @ fit.weight + fit.bias),
                f"{tokens}, {'converged' if fit.converged else 'NOT converged'}",
            )
        )
    lines = [
        f"### 1. Confidence-map fit (Eq. 2) at m = 64: {len(y):,} x {x.shape[1]} tokens (SYNTHETIC CT kidney, "
        f"{y.mean():.1%} target); held-out AUC on {len(y_test):,} tokens of 16 other images",
        "",
        "| fit | seconds | x faster than SAGA | held-out AUC | AUC - SAGA's | note |",
        "|---|---|---|---|---|---|",
    ]
    for name, s, auc, note in rows:
        lines.append(f"| {name} | {s:.3f} | {saga_s / s:.1f} | {auc:.4f} | {auc - saga_auc:+.4f} | {note} |")
    return lines


def brain_task():
    cases = [c[2]["brain_flair"] for c in synthetic_cases("brain", 0, 8, 8)]
    return [a for a, _ in cases[:8]], [b for _, b in cases[:8]], [a for a, _ in cases[8:]], [b for _, b in cases[8:]]


def part_per_query(sam: SamPredictor, repeats: int) -> list[str]:
    images, masks, queries, truths = brain_task()
    torch.manual_seed(0)
    official = CACHE / "universeg_official_random.pt"
    if not official.is_file():
        official.parent.mkdir(parents=True, exist_ok=True)
        torch.save(init_universeg_weights(UniverSeg()).state_dict(), official)
    lines = [
        "### 2. Per query, SAM features cached (SYNTHETIC brain FLAIR, m = 8, 8 queries; LiteMedSAM)",
        "",
        "| UniverSeg weights | boxes per query | UniverSeg alone s/query | ICL-SAM (full method) s/query | ratio (goal <= 2) "
        "| every variant, one predict s/query | each variant in its own call s/query | ratio "
        "| shared support set s/query | support work redone per query s/query | ratio |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for label, checkpoint in (
        ("ours (shipped, 32 wide, 64 px)", None),
        ("official architecture, random (128 px)", official),
    ):
        model = ICLSAM(sam=sam, universeg_checkpoint=checkpoint)
        for x in images + queries:
            sam.encode(x)  # the query's (and support's) SAM features are cached

        def per_query(variants, shared=True):
            model.clear_support_sets()  # the support set's work is part of each measured run
            for q, t in zip(queries, truths):
                if not shared:
                    model.clear_support_sets()
                model.predict(images, masks, q, t, variants=variants)

        def one_call_per_variant():
            for name in model.variants():
                per_query([name])

        n = len(queries)
        boxes = np.mean([len(p.boxes) for p in model.predict_many(images, masks, queries, truths)])
        alone = best_of(repeats, lambda: per_query(["universeg"])) / n
        full_method = best_of(repeats, lambda: per_query(["iclsam"])) / n
        every = best_of(repeats, lambda: per_query(None)) / n
        separately = best_of(repeats, one_call_per_variant) / n
        unshared = best_of(repeats, lambda: per_query(None, shared=False)) / n
        lines.append(
            f"| {label} | {boxes:.1f} | {alone:.3f} | {full_method:.3f} | {full_method / alone:.2f} | {every:.3f} "
            f"| {separately:.3f} | {separately / every:.2f} | {every:.3f} | {unshared:.3f} | {unshared / every:.2f} |"
        )
    lines += ["", "Batching on this machine (each against one at a time; < 1 means batching is slower):", ""]
    for label, net, size in (
        ("ours", ICLSAM(sam=sam).icl_model.network, 64),
        ("official architecture", init_universeg_weights(UniverSeg()).eval(), 128),
    ):
        support = torch.stack([universeg_image(x, "support", size=size) for x in images])[None]
        labels = torch.stack([universeg_label(y, size) for y in masks])[None]
        targets = torch.stack([universeg_image(q, "query", size=size) for q in queries])
        batch = len(queries)
        with torch.inference_mode():
            single = best_of(repeats, lambda: [net(targets[i : i + 1], support, labels) for i in range(batch)])
            batched = best_of(
                repeats,
                lambda: net(targets, support.expand(batch, -1, -1, -1, -1), labels.expand(batch, -1, -1, -1, -1)),
            )
        lines.append(f"- UniverSeg ({label}), {batch} queries in one batch: x {single / batched:.2f}")
    embedding = sam.encode(queries[0])
    three = np.array([[20, 30, 90, 110], [40, 50, 120, 140], [10, 10, 60, 70]])
    single = best_of(repeats, lambda: [sam.decode(embedding, three[i : i + 1]) for i in range(3)])
    batched = best_of(repeats, lambda: sam.decode(embedding, three))
    lines.append(f"- SAM decoder (LiteMedSAM), 3 boxes in one batch: x {single / batched:.2f}")
    return lines


def part_pipeline() -> list[str]:
    """`dvc repro` of the default profile in a copy of this checkout (tracked and untracked files
    git does not ignore), from nothing."""
    dvc = Path(sys.executable).with_name("dvc")
    with tempfile.TemporaryDirectory(prefix="iclsam-bench-") as tmp:
        copy = Path(tmp) / "repo"
        files = (
            subprocess.run(
                ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                cwd=ROOT,
                check=True,
                capture_output=True,
            )
            .stdout.decode()
            .split("\0")
        )
        for name in filter(None, files):
            if (ROOT / name).is_file():
                (copy / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(ROOT / name, copy / name)
        for generated in ("dvc.lock", "metrics.json"):
            (copy / generated).unlink(missing_ok=True)
        subprocess.run(["git", "init", "-q"], cwd=copy, check=True)
        env = dict(os.environ, PATH=f"{dvc.parent}{os.pathsep}{os.environ['PATH']}")
        start = time.perf_counter()
        subprocess.run([str(dvc), "repro", "--quiet"], cwd=copy, env=env, check=True)
        wall = time.perf_counter() - start
        stages = {}
        for notebook in sorted((copy / "build" / "notebooks").glob("*.ipynb")):
            stages[notebook.stem] = json.loads(notebook.read_text())["metadata"]["papermill"]["duration"]
        metrics = json.loads((copy / "metrics.json").read_text())
    order = (
        ["prepare", "split", "sample_support"]
        + sorted(s for s in stages if s.startswith("grid-"))
        + ["ablation", "sensitivity", "weak_context", "volumes", "report"]
    )
    lines = [
        "### 3. The default `dvc repro` from nothing (SYNTHETIC benchmark, empty encoder cache)",
        "",
        f"Encoder passes {metrics['encoder_passes']} for {metrics['unique_images']} unique images and "
        f"{metrics['backbones']} backbone: **{metrics['encoder_passes_per_image_and_backbone']:.2f} passes per image** "
        f"(goal 1.0); {metrics['encoder_cache_hits']} reads from the on-disk cache.",
        "",
        "| stage | seconds |",
        "|---|---|",
    ]
    lines += [f"| {name} | {stages[name]:.1f} |" for name in order if name in stages]
    lines += [f"| sum of stages | {sum(stages.values()):.1f} |", f"| `dvc repro` wall (stages + DVC) | {wall:.1f} |"]
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-pipeline", action="store_true")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "speed.md"))
    args = parser.parse_args()
    sam = SamPredictor("lite", cache_dir=CACHE / "embeddings")
    header = [
        f"## Speed benchmark (`python benchmarks/speed.py`), {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores, torch {torch.__version__} with {torch.get_num_threads()} threads, best of {args.repeats}",
        "",
        "All images are from our SYNTHETIC benchmark; the ratios are what matters (same run, same machine).",
        "",
    ]
    lines = header + part_confidence_fit(sam, args.repeats) + [""] + part_per_query(sam, args.repeats)
    if not args.skip_pipeline:
        lines += [""] + part_pipeline()
    text = "\n".join(lines) + "\n"
    write_text_atomic(args.out, text)
    print(text)


if __name__ == "__main__":
    main()
