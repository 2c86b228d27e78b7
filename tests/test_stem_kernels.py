"""Exact (bit-for-bit) checks of the float stem kernels against numpy float32
emulations of the operation order their C comments define:

- K map: A = mean |x| over channels as eight partial sums (partial l takes
  channels l, l+8, ...) added in the tree ((p0+p1)+(p2+p3))+((p4+p5)+(p6+p7)),
  divided by c; then per output pixel s = 0, s += A over the in-image taps
  in ky, kx order, s / (kh*kw).
- pools: taps in ky, kx order; max: the first in-image tap, then
  o = x > o ? x : o; average: ((0 + x0) + x1) + ... divided by the count.
- float conv, generic path: per output (pixel, filter) s = 0, then
  s += x * w over (ky, kx, c) in order with zero-padded taps (the separate
  multiply and add of the portable path); every SIMD path equals the ref
  path (fused multiply-adds in that order) bit for bit.
Inputs include -0, zeros, denormals, NaN where the rule decides them."""
import numpy as np
import pytest

from edgebnn import _engine as E
from isa_switch import isa

ISAS = E.isa_available()


def same_or_valid(size, k, s, padding):
    if padding == "valid":
        return (size - k) // s + 1, 0
    out = -(-size // s)
    return out, max((out - 1) * s + k - size, 0) // 2


def awkward(rng, shape, specials=True):
    x = rng.standard_normal(shape).astype(np.float32)
    if specials:
        r = rng.random(shape)
        x[r < 0.05] = 0.0
        x[(r >= 0.05) & (r < 0.1)] = -0.0
        x[(r >= 0.1) & (r < 0.13)] = np.float32(3e-40) * np.sign(x[(r >= 0.1) & (r < 0.13)])
    return x


def windows(h, w, kh, kw, sh, sw, padding):
    """(oy, ox, in-image rows, in-image cols) of every output pixel"""
    oh, pt = same_or_valid(h, kh, sh, padding)
    ow, pl = same_or_valid(w, kw, sw, padding)
    for oy in range(oh):
        ys = [oy * sh - pt + ky for ky in range(kh) if 0 <= oy * sh - pt + ky < h]
        for ox in range(ow):
            xs = [ox * sw - pl + kx for kx in range(kw) if 0 <= ox * sw - pl + kx < w]
            yield oy, ox, ys, xs


def out_size(h, w, kh, kw, sh, sw, padding):
    return same_or_valid(h, kh, sh, padding)[0], same_or_valid(w, kw, sw, padding)[0]


# ---------------------------------------------------------------- K map ---
def mean_abs32(x):
    """mean |x| over the last axis, in the kernel's float32 order"""
    c = x.shape[-1]
    a = np.abs(x)
    part = np.zeros(x.shape[:-1] + (8,), np.float32)
    for i in range(c):
        part[..., i % 8] = part[..., i % 8] + a[..., i]
    p = part
    s = ((p[..., 0] + p[..., 1]) + (p[..., 2] + p[..., 3])) + \
        ((p[..., 4] + p[..., 5]) + (p[..., 6] + p[..., 7]))
    return s / np.float32(c)


def kmap32(x, kh, kw, sh, sw, padding):
    n, h, w, _ = x.shape
    a = mean_abs32(x)
    k = np.zeros((n,) + out_size(h, w, kh, kw, sh, sw, padding), np.float32)
    for oy, ox, ys, xs in windows(h, w, kh, kw, sh, sw, padding):
        s = np.zeros(n, np.float32)
        for y in ys:
            for xx in xs:
                s = s + a[:, y, xx]
        k[:, oy, ox] = s / np.float32(kh * kw)
    return k


KMAP_CASES = [  # (n, h, w, c, kernel, strides, padding)
    (1, 14, 14, 32, (5, 5), (1, 1), "same"),        # LeNet conv2
    (2, 9, 7, 3, (3, 3), (2, 2), "same"),
    (1, 6, 11, 65, (3, 5), (1, 2), "valid"),
    (3, 5, 5, 17, (5, 5), (1, 1), "same"),          # every window clipped
    (1, 1, 1, 8, (3, 3), (1, 1), "same"),
    (1, 4, 40, 1, (2, 7), (3, 1), "same"),
    (1, 3, 2, 9, (70, 1), (1, 1), "same"),          # taller than the ring: direct path
    (1, 2, 300, 4, (1, 3), (1, 1), "same"),         # runs longer than one block
]


@pytest.mark.parametrize("case", KMAP_CASES, ids=str)
def test_kmap_bit_exact(case):
    n, h, w, c, (kh, kw), (sh, sw), padding = case
    x = awkward(np.random.default_rng(h * 31 + c), (n, h, w, c))
    want = kmap32(x, kh, kw, sh, sw, padding)
    for t in (1, 2, 3, 4):
        got = E.kmap(x, (kh, kw), (sh, sw), padding, num_threads=t)
        assert np.array_equal(got.view(np.uint32), want.view(np.uint32)), t


# ---------------------------------------------------------------- pools ---
def pool32(x, kh, kw, sh, sw, padding, op):
    n, h, w, c = x.shape
    out = np.zeros((n,) + out_size(h, w, kh, kw, sh, sw, padding) + (c,), np.float32)
    for oy, ox, ys, xs in windows(h, w, kh, kw, sh, sw, padding):
        taps = [x[:, y, xx] for y in ys for xx in xs]
        if op == "max":
            m = taps[0].copy()
            for t in taps[1:]:
                m = np.where(t > m, t, m)
        else:
            m = np.zeros((n, c), np.float32)
            for t in taps:
                m = m + t
            m = m / np.float32(len(taps))
        out[:, oy, ox] = m
    return out


POOL_CASES = [  # (shape, pool, strides, padding)
    ((1, 28, 28, 32), (2, 2), (2, 2), "valid"),       # LeNet pool1
    ((2, 7, 9, 3), (3, 3), (2, 2), "same"),           # 9 taps: groups 4 + 4 + 1
    ((1, 8, 8, 17), (5, 5), (1, 1), "same"),
    ((3, 5, 6, 1), (2, 3), (1, 2), "same"),
    ((1, 6, 6, 65), (1, 1), (1, 1), "valid"),
    ((1, 4, 5, 16), (3, 2), (3, 1), "valid"),
]


@pytest.mark.parametrize("shape,pool,strides,padding", POOL_CASES, ids=str)
def test_pools_bit_exact(shape, pool, strides, padding):
    rng = np.random.default_rng(shape[-1] * 7 + pool[0])
    x = awkward(rng, shape)
    x[rng.random(shape) < 0.03] = np.nan           # NaN never wins a max, taints a mean
    for name, fn in (("max", E.maxpool), ("avg", E.avgpool)):
        want = pool32(x, *pool, *strides, padding, name)
        for t in (1, 2, 3, 4):
            got = fn(x, pool, strides, padding, num_threads=t)
            assert np.array_equal(got.view(np.uint32), want.view(np.uint32)), (name, t)


# ----------------------------------------------------------- float conv ---
def conv_generic32(x, w, sh, sw, padding):
    """the generic path's order: s += x * w (separate rounding) over
    (ky, kx, c), zero taps included (they add +-0, which changes nothing)"""
    n, h, wd, c = x.shape
    o, kh, kw, _ = w.shape
    oh, pt = same_or_valid(h, kh, sh, padding)
    ow, pl = same_or_valid(wd, kw, sw, padding)
    xp = np.zeros((n, h + kh + sh * oh, wd + kw + sw * ow, c), np.float32)
    xp[:, pt:pt + h, pl:pl + wd] = x
    s = np.zeros((n, oh, ow, o), np.float32)
    for ky in range(kh):
        for kx in range(kw):
            patch = xp[:, ky:ky + sh * (oh - 1) + 1:sh, kx:kx + sw * (ow - 1) + 1:sw]
            for ci in range(c):
                s = s + patch[..., ci:ci + 1] * w[:, ky, kx, ci]
    return s


STEM_CASES = [  # (n, h, w, c, o, kernel, strides, padding)
    (1, 28, 28, 1, 32, (5, 5), (1, 1), "same_zero"),    # LeNet conv1
    (1, 32, 32, 3, 16, (3, 3), (1, 1), "same_zero"),    # ResNet stem
    (1, 23, 25, 3, 64, (7, 7), (2, 2), "same_zero"),    # Bi-Real-like stem
    (2, 9, 13, 2, 48, (3, 3), (1, 1), "same_zero"),     # 3 vectors of filters
    (1, 5, 50, 3, 80, (3, 3), (1, 1), "same_zero"),     # 4 + 1 vectors, runs of 48 + 2
    (1, 7, 49, 1, 130, (1, 5), (1, 1), "valid"),
    (3, 4, 1, 5, 8, (3, 3), (1, 1), "same_zero"),       # one-pixel rows
    (1, 6, 6, 16, 33, (1, 1), (2, 2), "same_zero"),     # 1x1 shortcut
    # the unrolled 5x5 x 1-channel tiles (32-filter blocks): rows of 19
    # pixels (tiles 12 + 7), 20 filters padded to 32, stride 2 along rows
    (2, 11, 19, 1, 20, (5, 5), (1, 1), "same_zero"),
    (1, 9, 30, 1, 32, (5, 5), (1, 2), "same_zero"),
    (1, 8, 17, 1, 96, (5, 5), (1, 1), "valid"),
    # the unrolled 3x3 x 3-channel tiles (16-filter blocks): rows of 13
    (2, 7, 13, 3, 10, (3, 3), (1, 1), "same_zero"),
]


@pytest.mark.parametrize("case", STEM_CASES, ids=str)
def test_fconv2d_paths_bit_exact(case):
    n, h, w, c, o, kernel, strides, padding = case
    rng = np.random.default_rng(h * 100 + o)
    x = awkward(rng, (n, h, w, c))
    wf = rng.standard_normal((o, *kernel, c)).astype(np.float32)
    with isa("ref"):
        ref = E.fconv2d(x, wf, kernel, strides, padding)
    for name in ISAS:
        with isa(name):
            one = E.fconv2d(x, wf, kernel, strides, padding)
            if name == "generic":
                want = conv_generic32(x, wf, *strides, padding)
                assert np.array_equal(one.view(np.uint32), want.view(np.uint32))
            else:                                   # fused multiply-adds, same order
                assert np.array_equal(one.view(np.uint32), ref.view(np.uint32)), name
            for t in (2, 3, 4):
                more = E.fconv2d(x, wf, kernel, strides, padding, num_threads=t)
                assert np.array_equal(one.view(np.uint32), more.view(np.uint32)), (name, t)
