"""Binary kernel throughput on this machine, next to its own limit.

For every available ISA: the 3x3 binary convolutions 14x14x256 -> 256 and
28x28x512 -> 512 (TF "same" padding with exact zero-padding correction,
batch 1) at 1 and 2 threads, and a register-only probe running the same
xor + popcount + add tile with no memory traffic. Each line shows binary
MACs per second, per cycle, and the ratio to the probe (x threads).
Cycles come from a chain of dependent adds (1 cycle each), measured here.
"% probe" at 2 threads compares with twice the 1-thread probe. Times are the
best of --reps calls (the median is printed too: on a shared machine the
median at 2 threads mostly measures the other tenants).

    python benchmarks/kernels.py [--reps N] [--isa avx512 ...]
"""
import argparse
import time

import os
import sys

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # idle BLAS threads spin

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from edgebnn import _engine as E

SHAPES = [  # (h, w, c, filters, k)
    (14, 14, 256, 256, 3),
    (28, 28, 512, 512, 3),
]


def best_time(fn, reps):
    fn()  # warm caches and thread pool
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times), float(np.median(times))


# Probes run many short bursts and keep the fastest: the machine is shared,
# and a burst that was preempted says nothing about the core.
def clock_hz():
    return max(a / t for a, t in (E.cycle_probe(2 * 10**5) for _ in range(100)))


def probe_rate(isa):
    return max(m / t for m, t in (E.bgemm_probe(isa, 2 * 10**4) for _ in range(100)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=30)
    ap.add_argument("--isa", nargs="*", default=None)
    ap.add_argument("--padding", default="same_zero", choices=["same_zero", "same_one"])
    args = ap.parse_args()
    isas = args.isa or [i for i in E.isa_available() if i != "ref"]
    hz = clock_hz()
    print(f"clock estimate (dependent adds): {hz / 1e9:.2f} GHz; "
          f"max threads {E.max_threads()}; padding {args.padding}")
    rng = np.random.default_rng(0)
    old = E.get_isa()
    for isa in isas:
        E.set_isa(isa)
        try:
            probe = probe_rate(isa)
        except ValueError:
            probe = float("nan")
        print(f"\n== {isa}: probe {probe / 1e9:.1f} GMAC/s = "
              f"{probe / hz:.0f} binary MACs/cycle (1 thread, registers only)")
        print(f"{'layer':<26}{'thr':>4}{'ms best':>9}{'ms med':>9}{'GMAC/s':>9}"
              f"{'MAC/cyc':>9}{'% probe':>9}{'speedup':>9}")
        for h, w, c, o, k in SHAPES:
            x = E.bitpack(rng.standard_normal((1, h, w, c)).astype(np.float32))
            wt = E.bitpack(rng.standard_normal((o, k, k, c)).astype(np.float32))
            macs = h * w * o * k * k * c
            one = None
            for nt in (1, 2):
                best, med = best_time(lambda: E.bconv2d(x, c, wt, k, padding=args.padding,
                                                        num_threads=nt), args.reps)
                one = one or best
                rate = macs / best
                print(f"{f'{h}x{w}x{c}->{o} {k}x{k}':<26}{nt:>4}{best * 1e3:>9.3f}"
                      f"{med * 1e3:>9.3f}{rate / 1e9:>9.1f}{rate / hz / nt:>9.0f}"
                      f"{100 * rate / (probe * nt):>8.0f}%{one / best:>8.2f}x")
        print(f"{'bitpack f32 (per call)':<26}{'thr':>4}{'ms best':>9}{'ms med':>9}{'GB/s':>9}")
        for h, w, c, o, k in SHAPES:
            xf = rng.standard_normal((1, h, w, c)).astype(np.float32)
            best, med = best_time(lambda: E.bitpack(xf), args.reps)
            print(f"{f'{h}x{w}x{c}':<26}{1:>4}{best * 1e3:>9.3f}{med * 1e3:>9.3f}"
                  f"{xf.nbytes / best / 1e9:>9.1f}")
    E.set_isa(old)


if __name__ == "__main__":
    main()
