"""Model.run latency per executor (numpy fallback vs compiled engine) on
random zoo-shaped models; prints a table.

    python benchmarks/runtime.py [--runs 5] [--batch 1 32] [--threads 1 2]
"""
import argparse
import os
import sys
import time

# numpy's BLAS spins one thread per core by default; on a shared 2-core
# machine that makes the fallback's small matmuls 50x slower and the
# comparison meaningless. Set before numpy loads BLAS.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, "tests")]

import model_zoo  # noqa: E402
from edgebnn.engine_backend import load_engine  # noqa: E402
from edgebnn.model import Model  # noqa: E402

MODELS = {
    "lenet-28 binary": lambda r: model_zoo.lenet(r, "binary", size=28),
    "alexnet-32 binary": lambda r: model_zoo.alexnet(r, "binary", size=32),
    "alexnet-32 binary_k": lambda r: model_zoo.alexnet(r, "binary_k", size=32),
    "resnet-n3-32 binary": lambda r: model_zoo.resnet(r, "binary", n=3, size=32),
    "larq-style-13 binary": lambda r: model_zoo.larq_style(r),
}


def best_of(fn, runs):
    fn()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--batch", type=int, nargs="+", default=[1, 32])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    args = ap.parse_args()
    backends = ["numpy"] + (["engine"] if load_engine() is not None else [])
    if len(backends) == 1:
        print("(compiled engine not built: numpy fallback only)")
    print(f"{'model':<22} {'executor':<8} {'thr':>3} {'batch':>5} {'ms/batch':>10} {'images/s':>10}")
    for name, make in MODELS.items():
        graph = make(np.random.default_rng(0))
        for backend in backends:
            model = Model(graph, backend=backend)
            for threads in (args.threads if backend == "engine" else [1]):
                model.threads = threads
                for batch in args.batch:
                    x = np.random.default_rng(1).standard_normal(
                        [batch] + graph.input.shape).astype(np.float32)
                    t = best_of(lambda m=model, x=x: m.run(x), args.runs)
                    print(f"{name:<22} {backend:<8} {threads:>3} {batch:>5} {t * 1e3:>10.2f} "
                          f"{batch / t:>10.0f}")


if __name__ == "__main__":
    main()
