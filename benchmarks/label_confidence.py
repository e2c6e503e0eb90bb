"""Eq. 2 for K labels: one multinomial logistic regression (background + K labels) against K
one-vs-rest fits (what `ICLSAM.predict` does with label maps), on 2-D slices of real volumes.

    python benchmarks/label_confidence.py [--data ../shared/data/real-dev-3d] [--m 4] [--queries 8] [--out DIR]

The slices, support sets and queries are those of `benchmarks/label_maps.py`. One-vs-rest: each
label's map is fit on the support images holding it, target = that label (the default). Multinomial:
one fit on every support image's tokens, a token's class the label covering at least half of it
(else background), the same token cap, class balancing, C and iterations; label v's map is the
softmax's probability of v. Everything after Eq. 2 (ICL model, boxes, SAM, Eq. 1, overlaps) is the
same code. Per label: mean Dice of each one-pass label map over the queries where the truth or a
prediction holds it; time of each pass (encoder cache warm for both). Writes `confidence.csv` and
`confidence.md` under --out and prints them."""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from label_maps import benchmark_arguments, volume_cases
from sklearn.linear_model import LogisticRegression

from iclsam import ICLSAM
from iclsam.common.atomic import write_csv_atomic, write_text_atomic
from iclsam.common.metrics import dice
from iclsam.method.confidence import token_labels
from iclsam.method.label_maps import label_target


@dataclass
class MultinomialMap:
    """Label `index`'s confidence map from a multinomial fit: softmax(W f + b)[index] per token."""

    weight: np.ndarray  # classes x 256
    bias: np.ndarray  # classes
    index: int
    converged: bool = True

    @torch.inference_mode()
    def confidence_grid(self, features: torch.Tensor) -> torch.Tensor:
        w = torch.as_tensor(self.weight, dtype=features.dtype, device=features.device)
        b = torch.as_tensor(self.bias, dtype=features.dtype, device=features.device)
        logits = torch.einsum("kc,chw->khw", w, features[0]) + b[:, None, None]
        return torch.softmax(logits, dim=0)[self.index]


def multinomial_fit(model: ICLSAM, images, maps, values, seed: int = 0, cap: int = 30_000) -> tuple:
    """One fit over every support image's tokens (see the module): weight, bias, classes."""
    features, classes = [], []  # classes: per image, labels x tokens fractions
    for image, labels in zip(images, maps):
        embedding = model.sam.encode(image)
        features.append(embedding.crop_valid(embedding.features[0]).flatten(1).T.numpy())
        fractions = np.stack([token_labels(labels == v, embedding, model.sam.input_size).ravel() for v in values])
        classes.append(fractions)
    x, fractions = np.concatenate(features), np.concatenate(classes, axis=1)
    # a token's class: the label covering the most of it among those covering at least half (a label
    # that no token of the set half-covers, as in the binary fit: any part), else background
    reach = np.where((fractions >= 0.5).any(axis=1, keepdims=True), fractions >= 0.5, fractions > 0)
    covered = np.where(reach, fractions, -1.0)
    y = np.where(reach.any(axis=0), np.asarray(values)[covered.argmax(axis=0)], 0)
    keep = np.random.default_rng(seed).permutation(len(y))[: int(0.8 * min(len(y), cap))]
    fit = LogisticRegression(class_weight="balanced", C=1.0, max_iter=100, random_state=seed)
    fit.fit(x[keep], y[keep])
    return fit.coef_, fit.intercept_, list(fit.classes_)


def one_pass(model: ICLSAM, images, maps, queries, multinomial: bool):
    """The label maps of one pass, and its seconds."""
    model.clear_support_sets()
    values = sorted(set(np.unique(np.stack(maps)).tolist()) - {0})
    start = time.perf_counter()
    if multinomial:
        weight, bias, classes = multinomial_fit(model, images, maps, values)
        for value in values:
            targets = [label_target(m, value, {}) for m in maps]
            holding = [i for i, t in enumerate(targets) if t.any()]
            support = model.support_set([images[i] for i in holding], [targets[i] for i in holding])
            support.classifier = MultinomialMap(weight, bias, classes.index(value))
    found = model.predict_many(images, maps, [x for x, _ in queries], variants=["iclsam"])
    return [p.labels for p in found], time.perf_counter() - start


def main() -> None:
    warnings.filterwarnings("ignore", message="Importing from timm")
    args = benchmark_arguments(__doc__.split("\n\n")[0])
    model = ICLSAM()
    rows, times = [], []
    for set_name, case, support, queries in volume_cases(args.data, args.m, args.queries):
        images, maps = [x for x, _ in support], [y for _, y in support]
        values = sorted(set(np.unique(np.stack(maps)).tolist()) - {0})
        model.sam.encode_many(images + [x for x, _ in queries])  # both passes start warm
        ovr, ovr_s = one_pass(model, images, maps, queries, multinomial=False)
        multi, multi_s = one_pass(model, images, maps, queries, multinomial=True)
        times.append({"set": set_name, "case": case, "one_vs_rest_s": ovr_s, "multinomial_s": multi_s})
        for q, (_, truth) in enumerate(queries):
            for v in values:
                t, a, b = truth == v, ovr[q] == v, multi[q] == v
                if t.any() or a.any() or b.any():
                    rows.append({"set": set_name, "case": case, "query": q, "label": v,
                                 "one_vs_rest": dice(a, t), "multinomial": dice(b, t)})  # fmt: skip
        print(case, f"one-vs-rest {ovr_s:.1f} s, multinomial {multi_s:.1f} s", flush=True)
    table, timing = pd.DataFrame(rows), pd.DataFrame(times)
    write_csv_atomic(table, Path(args.out) / "confidence.csv")
    per_label = table.groupby(["set", "label"], as_index=False).agg(
        one_vs_rest=("one_vs_rest", "mean"), multinomial=("multinomial", "mean"), queries=("query", "count")
    )
    per_label["difference"] = per_label["multinomial"] - per_label["one_vs_rest"]
    text = (
        f"# Eq. 2 for K labels: one multinomial fit against K one-vs-rest fits (m = {args.m}, {args.queries} "
        f"queries per volume; LiteMedSAM, ICL model {model.icl})\n\n## Mean Dice per label (one-pass label maps)\n\n"
        + per_label.round(3).to_markdown(index=False)
        + f"\n\nMean over labels: one-vs-rest {per_label['one_vs_rest'].mean():.3f}, multinomial "
        f"{per_label['multinomial'].mean():.3f}.\n\n## Time of each pass (encoder cache warm)\n\n"
        + timing.round(2).to_markdown(index=False)
        + "\n"
    )
    write_text_atomic(Path(args.out) / "confidence.md", text)
    print(text)


if __name__ == "__main__":
    main()
