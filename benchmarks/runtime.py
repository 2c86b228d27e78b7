"""Python-side overhead of Model.run: for each model at batch 1, Model.run
latency (median, p90) next to the sum of its plan steps' own times (clocked
inside the C plan, profiling mode), and the difference = what Python costs
per inference (argument checks, plan pool, input/output copies, entering
C). Then the per-step table and a batch-32 throughput line.

    python benchmarks/runtime.py [--runs 2000] [--threads 1 2] [--models lenet resnet20]

Models (random weights, real shapes):
  lenet     binarized LeNet (thesis): conv5x5x32 float, maxpool2, bconv5x5x64,
            maxpool2, bdense 1024, dense 10; 28x28x1
  resnet20  ResNet-20-shaped binary net: float stem 16, 3 stages x 3 blocks
            of binary 3x3 convs (16/32/64 channels), avgpool+1x1 shortcuts,
            global avgpool, dense 10; 32x32x3
"""
import argparse
import os
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, "tests")]

import clock  # noqa: E402
from model_zoo import Net  # noqa: E402
from edgebnn.model import Model  # noqa: E402


def lenet(rng):
    net = Net(rng, [28, 28, 1])
    net.conv(32, 5, "float", padding="same_zero")
    net.pool("maxpool", 2, 2)
    net.bn()
    net.conv(64, 5, "binary", padding="same_one")
    net.pool("maxpool", 2, 2)
    net.bn(spread=8.0)
    net.op("flatten")
    net.dense(1024, "binary")
    net.bn(spread=8.0)
    net.op("hardtanh")
    net.dense(10, "float")
    return net.build()


def resnet20(rng):
    net = Net(rng, [32, 32, 3])
    net.conv(16, 3, "float")
    net.bn()
    x = net.op("hardtanh")
    width = 16
    for stage in range(3):
        for block in range(3):
            down = stage > 0 and block == 0
            c_out = width * 2 if down else width
            net.conv(c_out, 3, "binary", stride=2 if down else 1, inputs=[x], padding="same_one")
            y = net.bn(spread=4.0)
            s = x
            if down:
                net.op("avgpool", inputs=[x], pool=[2, 2], strides=[2, 2], padding="same")
                net.conv(c_out, 1, "float")
                s = net.bn()
            net.op("add", inputs=[y, s])
            x = net.op("hardtanh")
            width = c_out
    net.op("global_avgpool")
    net.dense(10, "float")
    return net.build()


MODELS = {"lenet": lenet, "resnet20": resnet20}


def timings(fn, runs):
    return clock.timings(fn, runs, max(20, runs // 20))


def overhead_row(name, model, x, threads, runs):
    """Model.run, the same plan called bare and the plan's own step times,
    measured back to back in each iteration so that machine noise (other
    processes preempting us) hits all three alike; the overheads are medians
    of the per-iteration differences."""
    model.threads = threads
    key = (1, threads, False)
    model.run(x)
    cp = model._checkout(key)       # the very plan Model.run uses, called bare
    model._checkin(key, cp)
    for _ in range(max(20, runs // 20)):    # warm caches and the OpenMP team
        model.run(x)
    run, bare, steps = np.empty(runs), np.empty(runs), np.empty(runs)
    for i in range(runs):
        t = time.perf_counter()
        model.run(x)
        run[i] = time.perf_counter() - t
        cp = model._checkout(key)
        t = time.perf_counter()
        cp.plan.run(threads)
        bare[i] = time.perf_counter() - t
        steps[i] = cp.plan.profile(threads).sum()
        model._checkin(key, cp)
    med, p90 = np.median(run), np.percentile(run, 90)
    print(f"{name:<10} {threads:>3} {med * 1e6:>10.1f} {p90 * 1e6:>10.1f} "
          f"{np.median(bare) * 1e6:>10.1f} {np.median(steps) * 1e6:>10.1f} "
          f"{np.median(run - steps) * 1e6:>10.1f} {np.median(run - bare) * 1e6:>10.1f}")
    return model.profile(x, repeats=max(1, runs // 4))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=2000)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--models", nargs="+", choices=sorted(MODELS), default=list(MODELS))
    args = ap.parse_args()
    built = {}
    print("batch 1, times in microseconds (medians unless p90). run: Model.run; plan.run: the\n"
          "same compiled plan called bare; steps: sum of the steps' own times clocked in C;\n"
          "overhead = median of (run - steps) per iteration (Python + entering C; target < 10 us);\n"
          "py = median of (run - plan.run) per iteration (Python alone)")
    print(f"{'model':<10} {'thr':>3} {'run':>10} {'run p90':>10} {'plan.run':>10} {'steps':>10} "
          f"{'overhead':>10} {'py':>10}")
    tables = {}
    for name in args.models:
        model = Model(MODELS[name](np.random.default_rng(0)))
        x = np.random.default_rng(1).standard_normal(
            [1] + model.input_spec.shape).astype(np.float32)
        built[name] = model
        for threads in args.threads:
            tables[(name, threads)] = overhead_row(name, model, x, threads, args.runs)
    for (name, threads), steps in tables.items():
        print(f"\nper step: {name}, batch 1, {threads} thread(s) (median us)")
        for step, t in steps:
            print(f"  {step:<28} {t * 1e6:>9.1f}")
    print(f"\n{'model':<10} {'thr':>3} {'batch':>5} {'ms/batch':>10} {'images/s':>10}")
    for name, model in built.items():
        x = np.random.default_rng(2).standard_normal(
            [32] + model.input_spec.shape).astype(np.float32)
        for threads in args.threads:
            model.threads = threads
            t = np.median(timings(lambda: model.run(x), max(10, args.runs // 50)))
            print(f"{name:<10} {threads:>3} {32:>5} {t * 1e3:>10.2f} {32 / t:>10.0f}")


if __name__ == "__main__":
    main()
