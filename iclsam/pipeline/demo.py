"""`iclsam demo`: ICL-SAM on a few queries of each synthetic task, then of your own prepared folder of
real images when one is given; Dice per variant."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd

from iclsam.method.model import ICLSAM


def _demo_tasks(args):
    """(task name, data label, support pairs, query pairs) for the demo."""
    from iclsam.data.folder import open_tasks
    from iclsam.data.synthetic import synthetic_cases

    rng = np.random.default_rng(args.seed)
    for family in ("fundus", "brain", "abdomen"):
        cases = list(synthetic_cases(family, args.seed, n_support=2 * args.m, n_query=args.queries))
        for task in cases[0][2]:
            pool = [c[2][task] for c in cases if c[1] == "support"]
            support = [pool[i] for i in sorted(rng.choice(len(pool), args.m, replace=False))]
            yield task, "SYNTHETIC", support, [c[2][task] for c in cases if c[1] == "query"]
    if not args.data:
        return
    data = Path(args.data)
    for task in open_tasks(data):
        ids = task.ids
        chosen = [ids[i] for i in rng.choice(len(ids), args.m + args.queries, replace=False)]
        yield (
            task.name,
            f"real:{data.name}",
            [task.load(i) for i in chosen[: args.m]],
            [task.load(i) for i in chosen[args.m :]],
        )


def run_demo(model: ICLSAM, args) -> int:
    print(
        f"ICL-SAM demo: SAM backbone {model.sam.backbone.name}; ICL weights: {model.icl_weights}; "
        f"m = {args.m} support images, {args.queries} queries per task, seed {args.seed}"
    )
    rows = []
    start = time.perf_counter()
    for task, label, support, queries in _demo_tasks(args):
        images, masks = [x for x, _ in support], [y for _, y in support]
        scores = [model.predict(images, masks, x, y).dice for x, y in queries]
        rows.append({"data": label, "task": task, **pd.DataFrame(scores).mean().round(3).to_dict()})
        print(
            f"  {label:>9} {task:<12} "
            + "  ".join(f"{k} {v:.3f}" for k, v in rows[-1].items() if k not in ("data", "task")),
            flush=True,
        )
    table = pd.DataFrame(rows)
    print("\nMean Dice per variant (synthetic rows are SYNTHETIC data, not the paper's):")
    print(table.to_string(index=False))
    print(f"{len(rows)} tasks in {time.perf_counter() - start:.0f} s")
    return 0
