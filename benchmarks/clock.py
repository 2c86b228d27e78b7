"""The one timing loop of the benchmark scripts: warm up, then time each
call of fn separately (seconds), so callers take a median or percentiles."""
import time

import numpy as np


def timings(fn, runs, warmup):
    for _ in range(warmup):          # caches, the plan pool, the OpenMP team
        fn()
    out = np.empty(runs)
    for i in range(runs):
        t = time.perf_counter()
        fn()
        out[i] = time.perf_counter() - t
    return out
