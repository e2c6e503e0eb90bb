"""The one timer the benchmarks share."""

from __future__ import annotations

import time


def best_of(repeats: int, fn) -> float:
    """Best of `repeats` wall-clock runs of fn(), in seconds."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best
