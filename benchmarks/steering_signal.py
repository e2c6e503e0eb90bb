"""Can the support set tell whether SAM should be steered by the map (Eq. 3)? Per support set, the
signal and the outcome side by side.

    python benchmarks/steering_signal.py [--data .cache/real-dev-all] [--m 1 4] [--out DIR]

For every support set of the ten-set bench's protocol (3 draws, up to 16 queries, seed 0; LiteMedSAM,
features ICL model, confident boxes, the paper's gamma):
- `in_sample`: mean over the support images, each segmented with the support set's own fit, of the
  full method's Dice with SAM steered minus with stock SAM (`fusion="in-sample"`'s signal);
- `leave_one_out`: the same with each support image segmented from the others (m >= 2;
  `fusion="auto"`'s signal, restricted to the steering);
- `query`: the same difference on the queries, the outcome the signal should predict.
Writes DIR/steering_signal.csv (one row per support set) and prints, per set and m, what following
each signal at a few margins would do to the full method's mean Dice."""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from iclsam import ICLSAM
from iclsam.common.atomic import write_csv_atomic
from iclsam.common.metrics import dice
from iclsam.data.folder import open_tasks
from iclsam.method.fusion import fusion_weight
from iclsam.method.fusion_auto import held_out_dice, held_out_inputs
from iclsam.pipeline.protocol import image_loader, support_sets, task_protocol

MARGINS = (0.0, 0.01, 0.03, 0.05, 0.1)


def steering_gain(inputs: dict, truth: np.ndarray, gamma: float) -> float:
    """Dice of Eq. 1 with the steered SAM minus with stock SAM, on one held-out image."""
    return held_out_dice(inputs, truth, True, gamma) - held_out_dice(inputs, truth, False, gamma)


def support_signals(model: ICLSAM, support) -> dict:
    gamma = fusion_weight(model.config.a, model.config.tau, support.m)
    signals = {}
    for name, in_sample in (("in_sample", True), ("leave_one_out", False)):
        if support.m == 1 and not in_sample:
            signals[name] = np.nan
            continue
        gains = [
            steering_gain(held_out_inputs(model, support, k, in_sample), support.masks[k], gamma)
            for k in range(support.m)
        ]
        signals[name] = float(np.mean(gains))
    return signals


def run_task(stock: ICLSAM, steered: ICLSAM, task, sizes) -> list[dict]:
    draws, queries = task_protocol(task, sizes, 3, 16, 0)
    load = image_loader(task)
    query_images, truths = zip(*(load(q) for q in queries))
    rows = []
    for m, draw, ids in support_sets(task, draws):
        images, masks = zip(*(load(i) for i in ids))
        scores = {}
        for name, model in (("stock", stock), ("steered", steered)):
            support = model.support_set(images, masks)
            predictions = model.predict_queries(support, query_images, variants=["iclsam"])
            scores[name] = np.mean([dice(p.masks["iclsam"], t) for p, t in zip(predictions, truths)])
        signals = support_signals(stock, stock.support_set(images, masks))
        rows.append(
            {
                "task": task.name,
                "m": m,
                "draw": draw,
                **signals,
                "query": scores["steered"] - scores["stock"],
                "stock": scores["stock"],
                "steered": scores["steered"],
            }
        )
        print(rows[-1], flush=True)
    return rows


def margins_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Mean full-method Dice per set and m when the steered SAM is taken where a signal exceeds a margin."""
    out = {
        "stock": frame.groupby(["task", "m"])["stock"].mean(),
        "steered": frame.groupby(["task", "m"])["steered"].mean(),
    }
    for signal in ("in_sample", "leave_one_out"):
        for margin in MARGINS:
            chosen = np.where(frame[signal] > margin, frame["steered"], frame["stock"])
            out[f"{signal}>{margin}"] = frame.assign(v=chosen).groupby(["task", "m"])["v"].mean()
    return pd.DataFrame(out)


def main() -> None:
    warnings.filterwarnings("ignore", message="Importing from timm")
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=".cache/real-dev-all")
    parser.add_argument("--m", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--out", default="benchmarks/defaults")
    args = parser.parse_args()
    stock = ICLSAM(icl="features", sam_steering=False, cache_dir=".cache/embeddings")
    steered = ICLSAM(sam=stock.sam, icl="features", sam_steering=True)
    rows = [row for task in open_tasks(Path(args.data)) for row in run_task(stock, steered, task, args.m)]
    frame = pd.DataFrame(rows)
    write_csv_atomic(frame, Path(args.out) / "steering_signal.csv")
    table = margins_table(frame)
    print(table.round(3).to_markdown())
    print(table.groupby(level="m").mean().round(4).to_markdown())


if __name__ == "__main__":
    main()
