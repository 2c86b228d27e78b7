"""Binary convolutions on narrow layers (16/32/64 channels): whole-network
latency and per-step times of the benchmark nets, and the isolated kernels
at the narrow shapes with each output kind, 1 thread.

    python benchmarks/narrow_layers.py [--nets DIR] [--save after.json]
                                       [--before before.json] [--runs 1000]

--nets DIR holds resnet20.ebnn and lenet.ebnn (write them with
`python benchmarks/peers/build_edgebnn.py DIR resnet20 lenet`); the shipped
edgebnn/models/lenet_mnist.ebnn is timed too. --save keeps
the numbers as JSON; --before prints them in a "before" column next to this
run's, with the ratio. Times are medians in microseconds. On a shared machine
pause other heavy work while this runs (about 40 s).
"""
import argparse
import json
import os
import sys

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np

import clock

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import edgebnn  # noqa: E402
from edgebnn import _engine as E  # noqa: E402

# (name, h, w, in_c, out_c, k, stride, padding)
KERNELS = [
    ("r20 s1 32x32x16->16", 32, 32, 16, 16, 3, 1, "same_one"),
    ("r20 s2 32x32x16->32", 32, 32, 16, 32, 3, 2, "same_one"),
    ("r20 s1 16x16x32->32", 16, 16, 32, 32, 3, 1, "same_one"),
    ("r20 s1 8x8x64->64", 8, 8, 64, 64, 3, 1, "same_one"),
    ("lenet 14x14x32->64 5x5", 14, 14, 32, 64, 5, 1, "same_one"),
    ("zero 32x32x16->16", 32, 32, 16, 16, 3, 1, "same_zero"),
]
OUTS = ["float+res", "bits thr", "int32"]


def median_us(fn, runs, warmup):
    return float(np.median(clock.timings(fn, runs, warmup))) * 1e6


def kernel_case(rng, h, w, c, o, k, s, pad, out):
    x = E.bitpack(rng.standard_normal((1, h, w, c)).astype(np.float32))
    wt = E.bitpack(rng.standard_normal((o, k, k, c)).astype(np.float32))
    oh, ow = -(-h // s), -(-w // s)
    kw = dict(strides=s, padding=pad)
    if out == "float+res":
        kw.update(out="float", mul=rng.random(o).astype(np.float32),
                  bias=rng.standard_normal(o).astype(np.float32),
                  residual=rng.standard_normal((1, oh, ow, o)).astype(np.float32))
    elif out == "bits thr":
        kw.update(out="bits", thresholds=rng.integers(-20, 20, o).astype(np.int32),
                  flip=(rng.random(o) < 0.3).astype(np.uint8))
    return lambda: E.bconv2d(x, c, wt, k, **kw)


def measure(args):
    res = {"nets": {}, "kernels": {}}
    shipped = os.path.join(ROOT, "edgebnn", "models", "lenet_mnist.ebnn")
    for name in ("resnet20", "lenet", "lenet_mnist (shipped)"):
        path = shipped if "shipped" in name else os.path.join(args.nets, f"{name}.ebnn")
        if not os.path.exists(path):
            print(f"(no {path}: skipped)")
            continue
        m = edgebnn.load(path)
        m.threads = 1
        x = np.random.default_rng(0).standard_normal([1] + m.input_spec.shape).astype(np.float32)
        run = median_us(lambda: m.run(x), args.runs, 200)
        steps = [(s, t * 1e6) for s, t in m.profile(x, repeats=300)]
        res["nets"][name] = {"run": run, "steps": steps}
    rng = np.random.default_rng(1)
    for case in KERNELS:
        for out in OUTS:
            fn = kernel_case(rng, *case[1:], out)
            res["kernels"][f"{case[0]} [{out}]"] = median_us(fn, args.runs, 100)
    return res


def row(label, now, before):
    if before is None:
        return f"{label:<44}{now:>10.2f}"
    return f"{label:<44}{before:>10.2f}{now:>10.2f}{before / now:>8.2f}x"


def show(res, before):
    head = f"{'':<44}{'before':>10}{'now':>10}{'speedup':>9}" if before else \
           f"{'':<44}{'us':>10}"
    for name, r in res["nets"].items():
        b = before["nets"].get(name) if before else None
        print(f"\n== {name} (1 thread, median)\n{head}")
        print(row("whole run", r["run"], b and b["run"]))
        # steps grouped by kind, in order; before matched by position
        bsteps = b["steps"] if b and len(b["steps"]) == len(r["steps"]) else None
        for i, (s, t) in enumerate(r["steps"]):
            print(row("  " + s, t, bsteps[i][1] if bsteps else None))
        kinds = {}
        for s, t in r["steps"]:
            kind = s[s.rfind("(") + 1:-1]
            kinds[kind] = kinds.get(kind, 0.0) + t
        bkinds = {}
        for s, t in (bsteps or []):
            kind = s[s.rfind("(") + 1:-1]
            bkinds[kind] = bkinds.get(kind, 0.0) + t
        for kind, t in kinds.items():
            print(row(f"  total {kind}", t, bkinds.get(kind) if bsteps else None))
    print(f"\n== isolated binary convs (batch 1, 1 thread, ISA {E.get_isa()})\n{head}")
    for k, t in res["kernels"].items():
        print(row(k, t, before["kernels"].get(k) if before else None))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--nets", default="/tmp/pe_bconv")
    ap.add_argument("--runs", type=int, default=1000)
    ap.add_argument("--save")
    ap.add_argument("--before")
    args = ap.parse_args()
    before = json.load(open(args.before)) if args.before else None
    res = measure(args)
    if args.save:
        with open(args.save, "w") as f:
            json.dump(res, f, indent=1)
    show(res, before)


if __name__ == "__main__":
    main()
