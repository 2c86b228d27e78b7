"""Per-call time of the float-side kernels at every ISA this machine runs,
beside numpy (im2col + np.matmul, float weights) doing the same layer.

    python benchmarks/float_kernels.py [--threads 1 2] [--budget 0.3]

Layers: LeNet first conv (28x28x1, 5x5, 32 filters, same), ResNet first conv
(32x32x3, 3x3, 16, same), a weights-only binary conv 14x14x256 -> 256 3x3
(same, zero padding) and the LeNet first layer with binary weights (the
few-channel path: filters in the lanes), batch-1 dense 1024 -> 1024 (weights-only and float;
numpy gets float weights), and an almost-empty call (the fixed per-call cost:
argument checks, output allocation, thread start-up).

numpy's BLAS is held to one thread (OPENBLAS_NUM_THREADS=1 unless set):
its idle worker threads spin and would steal the cores our OpenMP threads
need, which made every 2-thread line meaningless."""
import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout
from edgebnn import _engine as E  # noqa: E402


def per_call(fn, budget):
    """Seconds per call: the best of 5 batch averages over ~budget seconds
    (after a warm-up). The best, not the median, because this machine is
    shared and other processes only ever add time."""
    fn()
    t0, n = time.perf_counter(), 0
    while time.perf_counter() - t0 < budget / 5 or n < 3:
        fn()
        n += 1
    batch = max(1, n)
    times = []
    for _ in range(5):
        t = time.perf_counter()
        for _ in range(batch):
            fn()
        times.append((time.perf_counter() - t) / batch)
    return float(np.min(times))


def numpy_conv(x, w, k):
    """The layer as numpy would do it: pad, im2col by strided view, matmul."""
    p = k // 2
    xp = np.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
    cols = np.lib.stride_tricks.sliding_window_view(xp, (k, k), axis=(1, 2))
    cols = cols.transpose(0, 1, 2, 4, 5, 3).reshape(-1, k * k * x.shape[-1])
    return np.matmul(cols, w.reshape(w.shape[0], -1).T)


def pack_signs(w):
    c = w.shape[-1]
    words = (c + 63) // 64
    bits = np.zeros(w.shape[:-1] + (words * 64,), np.uint64)
    bits[..., :c] = w < 0
    bits = bits.reshape(w.shape[:-1] + (words, 64))
    return (bits << np.arange(64, dtype=np.uint64)).sum(axis=-1, dtype=np.uint64)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--budget", type=float, default=0.3, help="seconds per measurement")
    args = ap.parse_args()
    rng = np.random.default_rng(0)

    def layer(h, c, k, o):
        return (rng.standard_normal((1, h, h, c)).astype(np.float32),
                rng.standard_normal((o, k, k, c)).astype(np.float32))

    lenet, resnet, wbin = layer(28, 1, 5, 32), layer(32, 3, 3, 16), layer(14, 256, 3, 256)
    wbin_packed = pack_signs(wbin[1])
    lenet_packed = pack_signs(lenet[1])
    lenet_signs = np.where(lenet[1] < 0, -1.0, 1.0).astype(np.float32)
    wbin_alpha = np.abs(wbin[1]).mean(axis=(1, 2, 3)).astype(np.float32)
    wbin_float = (np.where(wbin[1] < 0, -1.0, 1.0) * wbin_alpha[:, None, None, None]).astype(np.float32)
    dense_x = rng.standard_normal((1, 1024)).astype(np.float32)
    dense_w = rng.standard_normal((1024, 1024)).astype(np.float32)
    dense_packed = pack_signs(dense_w)
    dense_signs = np.where(dense_w < 0, -1.0, 1.0).astype(np.float32)
    tiny = (np.ones((1, 1, 1, 1), np.float32), np.ones((1, 1, 1, 1), np.float32))
    cases = [
        ("fconv2d LeNet 28x28x1 5x5 ->32", 28 * 28 * 25 * 32,
         lambda t: E.fconv2d(*lenet, num_threads=t), lambda: numpy_conv(*lenet, 5)),
        ("fconv2d ResNet 32x32x3 3x3 ->16", 32 * 32 * 27 * 16,
         lambda t: E.fconv2d(*resnet, num_threads=t), lambda: numpy_conv(*resnet, 3)),
        ("wconv2d LeNet 28x28x1 5x5 ->32", 28 * 28 * 25 * 32,   # few-channel path
         lambda t: E.wconv2d(lenet[0], 1, lenet_packed, 5, num_threads=t),
         lambda: numpy_conv(lenet[0], lenet_signs, 5)),
        ("wconv2d 14x14x256 3x3 ->256", 14 * 14 * 2304 * 256,
         lambda t: E.wconv2d(wbin[0], 256, wbin_packed, 3, mul=wbin_alpha, num_threads=t),
         lambda: numpy_conv(wbin[0], wbin_float, 3)),  # float weights: 32x the memory
        ("wdense batch 1, 1024 -> 1024", 1024 * 1024,
         lambda t: E.wdense(dense_x, dense_packed, num_threads=t),
         lambda: dense_x @ dense_signs.T),
        ("fdense batch 1, 1024 -> 1024", 1024 * 1024,
         lambda t: E.fdense(dense_x, dense_w, num_threads=t), lambda: dense_x @ dense_w.T),
        ("fconv2d 1x1x1 (per-call cost)", 1,
         lambda t: E.fconv2d(*tiny, num_threads=t), lambda: numpy_conv(*tiny, 1)),
    ]
    print(f"isa in use by default: {E.get_isa()}; available: {', '.join(E.isa_available())}; "
          f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cpus")
    print(f"{'layer':34} {'path':8} {'thr':>3} {'us/call':>10} {'GMAC/s':>8} {'vs numpy':>9}")
    default = E.get_isa()
    try:
        for name, macs, run, ref in cases:
            t_np = per_call(ref, args.budget)
            print(f"{name:34} {'numpy':8} {'-':>3} {t_np * 1e6:10.1f} {macs / t_np / 1e9:8.2f} {1:9.2f}")
            for isa in E.isa_available():
                E.set_isa(isa)
                for t in args.threads:
                    if isa == "ref" and macs > 1e7 and t > 1:
                        continue  # the reference path is for correctness, not speed
                    s = per_call(lambda: run(t), args.budget)
                    print(f"{'':34} {isa:8} {t:3d} {s * 1e6:10.1f} {macs / s / 1e9:8.2f} "
                          f"{t_np / s:9.2f}")
    finally:
        E.set_isa(default)


if __name__ == "__main__":
    main()
