"""What every worker does once its runtime has loaded a model: warm up,
time batch-1 latency and batch-32 throughput, read the peak resident
memory, optionally score accuracy, print one JSON line. Standard library
and numpy only: it is imported under the project's Python and in both
venvs.

A worker module defines load(args) -> runner with
    runner.input_shape   (H, W, C) or (F,) of one sample
    runner.run(x)        x float32 [N, *input_shape] (N = 1 or 32) -> output array
and calls main(load, extra_args)."""
import argparse
import json
import resource
import sys
import time


def _rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024   # Linux: KiB


def _percentile(sorted_vals, q):
    i = min(len(sorted_vals) - 1, max(0, round(q * (len(sorted_vals) - 1))))
    return sorted_vals[i]


def _accuracy(runner, path, np):
    data = np.load(path)
    x, y = data["x"].astype(np.float32), data["y"]
    correct = 0
    for i in range(len(x)):
        out = np.asarray(runner.run(x[i:i + 1])).reshape(1, -1)
        correct += int(np.argmax(out[0]) == y[i])
    return correct / len(x)


def main(load, add_args=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--runs", type=int, default=200, help="timed batch-1 runs")
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--batch", type=int, default=32, help="throughput batch (0: skip)")
    ap.add_argument("--batch-runs", type=int, default=10)
    ap.add_argument("--eval", help="npz with x (float32 model input) and y (labels)")
    if add_args:
        add_args(ap)
    args = ap.parse_args()

    import numpy as np
    rss_base = _rss_mib()          # interpreter + numpy + runtime imported
    t0 = time.perf_counter()
    runner = load(args)
    load_s = time.perf_counter() - t0
    rng = np.random.default_rng(0)
    x1 = rng.standard_normal((1, *runner.input_shape)).astype(np.float32)

    for _ in range(args.warmup):
        out = runner.run(x1)
    times = []
    for _ in range(args.runs):
        t = time.perf_counter()
        runner.run(x1)
        times.append(time.perf_counter() - t)
    times.sort()
    res = {"ok": True, "load_s": load_s, "median_ms": 1e3 * _percentile(times, 0.5),
           "p90_ms": 1e3 * _percentile(times, 0.9), "min_ms": 1e3 * times[0],
           "runs": args.runs, "out_shape": list(np.asarray(out).shape)}

    if args.batch:
        xb = rng.standard_normal((args.batch, *runner.input_shape)).astype(np.float32)
        runner.run(xb)
        best = float("inf")
        for _ in range(args.batch_runs):
            t = time.perf_counter()
            runner.run(xb)
            best = min(best, time.perf_counter() - t)
        res["batch"] = args.batch
        res["throughput"] = args.batch / best        # images/s, best of batch_runs
    res["rss_base_mib"] = rss_base
    res["rss_peak_mib"] = _rss_mib()      # before the test set is loaded
    if args.eval:
        res["accuracy"] = _accuracy(runner, args.eval, np)
    print("RESULT " + json.dumps(res), flush=True)


def fail(msg):
    print("RESULT " + json.dumps({"ok": False, "error": msg}), flush=True)
    sys.exit(1)
