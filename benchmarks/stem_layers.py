"""Float first layers (network stems), the K map, the pools and LeNet's
binary layers: per-call kernel times and the per-step profile of whole
networks (the peer LeNet / ResNet-20 / Bi-Real-18 and the shipped LeNet,
the file the docs' LeNet ratios time), 1 thread, for this checkout and
optionally for another build side by side.

    python benchmarks/peers/build_edgebnn.py /tmp/pe_fconv   # the peer nets, once
    python benchmarks/stem_layers.py [--before DIR] [--peers /tmp/pe_fconv] [--nets NET.ebnn ...]

--before DIR: a directory holding another `edgebnn` package (with its built
_engine*.so, e.g. a copy of the package taken before a change); the same
measurements run there in a subprocess and the table shows both columns.
Kernel times are the best of 7 batch averages (this machine is shared: other
processes only ever add time); network times the median of --runs runs
after a warm-up, and the plan's own per-step profile."""
import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

import clock

ROOT = Path(__file__).resolve().parents[1]
PEER_NETS = ["lenet.ebnn", "resnet20.ebnn", "bireal18.ebnn"]
SHIPPED = str(ROOT / "edgebnn/models/lenet_mnist.ebnn")


def per_call(fn, budget):
    fn()
    t0, n = time.perf_counter(), 0
    while time.perf_counter() - t0 < budget / 7 or n < 3:
        fn()
        n += 1
    best = float("inf")
    for _ in range(7):
        t = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, (time.perf_counter() - t) / n)
    return best


def kernel_cases(E):
    rng = np.random.default_rng(0)

    def r(*shape):
        return rng.standard_normal(shape).astype(np.float32)

    lx, lw = r(1, 28, 28, 1), r(32, 5, 5, 1)
    rx, rw = r(1, 32, 32, 3), r(16, 3, 3, 3)
    bx, bw = r(1, 224, 224, 3), r(64, 7, 7, 3)
    mul, bias = np.abs(r(32)) + 0.1, r(32)
    kx = r(1, 14, 14, 32)
    px = r(1, 28, 28, 32)
    # LeNet's binary layers: conv2 5x5x32 -> 64 on 14x14 (zero padding, K
    # scale per pixel, float out) and the dense 3136 -> 1024 (batch 1)
    bits2, w2 = E.bitpack(kx), E.bitpack(r(64, 5, 5, 32))
    kmap = np.abs(r(1, 14, 14)) + 0.1
    mul2, bias2 = np.abs(r(64)) + 0.1, r(64)
    dx, dw = E.bitpack(r(1, 3136)), E.bitpack(r(1024, 3136))
    mul3, bias3 = np.abs(r(1024)) + 0.1, r(1024)
    bitx = E.bitpack(px)
    return [
        ("fconv LeNet 28x28x1 5x5->32 same", lambda: E.fconv2d(lx, lw)),
        ("fconv LeNet, mul+bias+clamp", lambda: E.fconv2d(lx, lw, mul=mul, bias=bias, clamp=(-1.0, 1.0))),
        ("fconv LeNet, bits out", lambda: E.fconv2d(lx, lw, out="bits", bias=bias)),
        ("fconv ResNet 32x32x3 3x3->16 same", lambda: E.fconv2d(rx, rw)),
        ("fconv BiReal 224x224x3 7x7/2->64", lambda: E.fconv2d(bx, bw, 7, 2)),
        ("kmap 14x14x32 5x5 same", lambda: E.kmap(kx, 5, 1, "same_one")),
        ("maxpool 28x28x32 2x2/2", lambda: E.maxpool(px, 2, 2)),
        ("maxpool bits 28x28x32 2x2/2", lambda: E.maxpool_bits(bitx, 32, 2, 2)),
        ("bconv LeNet 14x14x32 5x5->64 same_zero, K",
         lambda: E.bconv2d(bits2, 32, w2, 5, padding="same_zero", out="float", mul=mul2,
                           bias=bias2, pixel_scale=kmap)),
        ("bdense LeNet 3136->1024, float out",
         lambda: E.bdense(dx, 3136, dw, out="float", mul=mul3, bias=bias3)),
    ]


def measure(nets, runs, budget):
    """all measurements of the edgebnn package on sys.path, as a dict"""
    import edgebnn
    from edgebnn import _engine as E
    res = {"kernels": {}, "nets": {}, "isa": E.get_isa()}
    for name, fn in kernel_cases(E):
        res["kernels"][name] = per_call(fn, budget)
    for path in nets:
        m = edgebnn.load(path)
        m.threads = 1
        shape = [1] + [int(d) for d in m.input_spec.shape]
        x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
        t = clock.timings(lambda: m.run(x), runs, max(20, runs // 5))
        steps = m.profile(x, repeats=max(30, runs // 3))
        res["nets"][Path(path).name] = {"run": float(np.median(t)),
                                        "steps": [[s, float(v)] for s, v in steps]}
    return res


def print_table(cols):
    names = list(cols)
    head = "".join(f"{n:>12}" for n in names)
    first = cols[names[0]]
    print(f"isa: {first['isa']}; load average {os.getloadavg()[0]:.2f}; times in us, 1 thread")
    print(f"\n{'kernel call':44}{head}")
    for k in first["kernels"]:
        print(f"{k:44}" + "".join(f"{cols[n]['kernels'].get(k, float('nan')) * 1e6:12.2f}" for n in names))
    for net in first["nets"]:
        print(f"\n{net + ' (median run / per step)':44}{head}")
        print(f"{'  run':44}" + "".join(f"{cols[n]['nets'][net]['run'] * 1e6:12.1f}" for n in names))
        for i, (step, _) in enumerate(first["nets"][net]["steps"]):
            vals = []
            for n in names:
                st = cols[n]["nets"][net]["steps"]
                vals.append(st[i][1] * 1e6 if i < len(st) and st[i][0] == step else float("nan"))
            print(f"  {step[:42]:42}" + "".join(f"{v:12.2f}" for v in vals))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", help="directory holding another built edgebnn package")
    ap.add_argument("--peers", default="/tmp/pe_fconv",
                    help="directory of the peer nets (benchmarks/peers/build_edgebnn.py)")
    ap.add_argument("--nets", nargs="*", help="networks to profile (default: the peer "
                    "nets and the shipped LeNet)")
    ap.add_argument("--runs", type=int, default=1000)
    ap.add_argument("--budget", type=float, default=0.2, help="seconds per kernel measurement")
    ap.add_argument("--json", action="store_true", help=argparse.SUPPRESS)  # subprocess mode
    args = ap.parse_args()
    wanted = args.nets if args.nets is not None else \
        [os.path.join(args.peers, n) for n in PEER_NETS] + [SHIPPED]
    nets = [p for p in wanted if os.path.exists(p)]
    if not args.json:
        for p in sorted(set(wanted) - set(nets)):
            print(f"(skipped {p}: not found; build the peer nets with "
                  f"benchmarks/peers/build_edgebnn.py {args.peers})")
    if args.json:
        print(json.dumps(measure(nets, args.runs, args.budget)))
        return
    cols = {}
    for label, where in (("before", args.before), ("now", str(ROOT))):
        if where is None:
            continue
        env = dict(os.environ, PYTHONPATH=where, OMP_NUM_THREADS="1")
        out = subprocess.run([sys.executable, __file__, "--json", "--runs", str(args.runs),
                              "--budget", str(args.budget), "--nets", *nets],
                             env=env, capture_output=True, text=True, cwd="/")
        if out.returncode:
            sys.exit(f"measuring {where} failed:\n{out.stderr}")
        cols[label] = json.loads(out.stdout)
    print_table(cols)


if __name__ == "__main__":
    main()
