"""Float-side kernels (weights-only binary conv/dense, float conv/dense, K map,
float pools) against plain float64 numpy references of their definitions,
across every ISA path, thread counts and awkward shapes.

Exactness: fconv2d's SIMD paths (FMA chains in the same order) must equal
the "ref" path bit for bit; every other SIMD path sums in a different order
(vector lanes, total - 2*neg for weights-only), so it is compared with "ref"
within float32 rounding. Any one path gives identical results for every
thread count (work is split over whole pixels / whole filters)."""
import zlib

import numpy as np
import pytest

from edgebnn import _engine as E
from isa_switch import isa

EPS = np.finfo(np.float32).eps
ISAS = E.isa_available()


# ----------------------------------------------------------- references ---
def pack_signs(w):
    """bit = 1 where w < 0, packed LSB-first along the last axis."""
    c = w.shape[-1]
    words = (c + 63) // 64
    bits = np.zeros(w.shape[:-1] + (words * 64,), np.uint64)
    bits[..., :c] = w < 0
    bits = bits.reshape(w.shape[:-1] + (words, 64))
    return (bits << np.arange(64, dtype=np.uint64)).sum(axis=-1, dtype=np.uint64)


def unpack_bits(words, c):
    bits = (words[..., None] >> np.arange(64, dtype=np.uint64)) & np.uint64(1)
    return bits.reshape(words.shape[:-1] + (-1,))[..., :c].astype(bool)


def same_pads(size, k, s):
    out = -(-size // s)
    total = max((out - 1) * s + k - size, 0)
    return out, total // 2, total - total // 2


def pad_input(x, kh, kw, sh, sw, padding):
    """Zero-pad x as TF does; return padded x (float64), out_h, out_w."""
    n, h, w, c = x.shape
    if padding == "valid":
        return x.astype(np.float64), (h - kh) // sh + 1, (w - kw) // sw + 1
    oh, pt, pb = same_pads(h, kh, sh)
    ow, pl, pr = same_pads(w, kw, sw)
    return np.pad(x.astype(np.float64), ((0, 0), (pt, pb), (pl, pr), (0, 0))), oh, ow


def conv_ref(x, w, strides, padding):
    """float64 conv; also the conv of |x| with |w| (the rounding scale)."""
    o, kh, kw, c = w.shape
    sh, sw = strides
    xp, oh, ow = pad_input(x, kh, kw, sh, sw, padding)
    acc = np.zeros((x.shape[0], oh, ow, o))
    mag = np.zeros_like(acc)
    for ky in range(kh):
        for kx in range(kw):
            patch = xp[:, ky:ky + sh * (oh - 1) + 1:sh, kx:kx + sw * (ow - 1) + 1:sw, :]
            acc += np.einsum("nhwc,oc->nhwo", patch, w[:, ky, kx, :].astype(np.float64))
            mag += np.einsum("nhwc,oc->nhwo", np.abs(patch), np.abs(w[:, ky, kx, :]).astype(np.float64))
    return acc, mag


def stage_ref(acc, mag, k, mul=None, bias=None, pixel_scale=None, residual=None, clamp=None):
    """float64 output stage and a float32 rounding tolerance per value."""
    o = acc.shape[-1]
    m = np.ones(o) if mul is None else mul.astype(np.float64)
    ps = np.ones(acc.shape[:-1]) if pixel_scale is None else pixel_scale.reshape(acc.shape[:-1])
    v = acc * ps[..., None] * m
    tol = 2 * EPS * (np.sqrt(k) + 4) * mag * np.abs(ps[..., None] * m)
    if bias is not None:
        v = v + bias
    if residual is not None:
        v = v + residual.reshape(v.shape)
    tol = tol + 4 * EPS * np.abs(v) + 1e-30
    if clamp is not None:
        v = np.clip(v, *clamp)
    return v, tol


def check_float(got, v, tol):
    assert got.dtype == np.float32 and got.shape == v.shape
    err = np.abs(got.astype(np.float64) - v)
    assert np.all(err <= tol), f"max err {err.max()} vs tol {tol[err > tol].min()}"


def check_bits(got, v, tol):
    o = v.shape[-1]
    assert got.dtype == np.uint64 and got.shape == v.shape[:-1] + ((o + 63) // 64,)
    neg = unpack_bits(got, o)
    sure = np.abs(v) > tol                   # sign not decided by rounding
    assert np.array_equal(neg[sure], (v < 0)[sure])
    if o % 64:                               # unused high bits are zero
        assert not np.any(got[..., -1] >> np.uint64(o % 64))


def rand(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


# (n, h, w, c, o, kernel, strides, padding)
CONV_CASES = [
    (1, 1, 1, 64, 8, (1, 1), (1, 1), "same_zero"),
    (1, 1, 1, 3, 5, (3, 3), (1, 1), "same_zero"),
    (3, 5, 7, 3, 5, (3, 3), (2, 2), "same_zero"),
    (1, 6, 6, 63, 17, (3, 3), (1, 1), "valid"),
    (2, 7, 5, 64, 64, (3, 3), (1, 1), "same_zero"),
    (1, 4, 4, 65, 9, (2, 2), (2, 2), "same_zero"),
    (1, 3, 3, 200, 33, (3, 3), (1, 1), "same_zero"),
    (1, 9, 9, 1, 8, (5, 5), (1, 1), "same_zero"),
    (2, 8, 8, 3, 16, (3, 3), (2, 2), "valid"),
    (1, 6, 5, 130, 70, (1, 3), (2, 1), "same_zero"),
    (3, 6, 6, 16, 129, (3, 3), (1, 1), "same_zero"),
    (2, 6, 5, 5, 70, (3, 3), (1, 1), "same_zero"),       # few channels, 2 filter words
    (1, 5, 5, 15, 130, (2, 3), (2, 1), "same_zero"),
]


def case_id(c):
    return "n{}_{}x{}x{}_o{}_k{}x{}_s{}x{}_{}".format(*c[:5], *c[5], *c[6], c[7])


def stage_args(rng, kind, pixels, o, alpha):
    if kind == "plain":
        return {}
    mul = (np.abs(rand(rng, o)) + 0.1) if alpha == "xnor" else np.full(o, 0.37, np.float32)
    args = dict(mul=mul.astype(np.float32), bias=rand(rng, o))
    if kind == "full":
        args.update(pixel_scale=np.abs(rand(rng, pixels)) + 0.5,
                    residual=rand(rng, pixels, o), clamp=(-1.5, 2.0))
    return args


# ------------------------------------------------------ weights-only conv ---
@pytest.mark.parametrize("case", CONV_CASES, ids=case_id)
@pytest.mark.parametrize("stage", ["plain", "xnor", "scalar_full"])
def test_wconv2d_matches_reference(case, stage):
    n, h, w, c, o, kernel, strides, padding = case
    rng = np.random.default_rng(zlib.crc32(repr((case, stage)).encode()))
    x = rand(rng, n, h, w, c)
    wf = rand(rng, o, *kernel, c)
    signs = np.where(wf < 0, -1.0, 1.0)
    acc, mag = conv_ref(x, signs, strides, padding)
    pixels = int(np.prod(acc.shape[:3]))
    args = stage_args(rng, "full" if stage == "scalar_full" else stage, pixels, o,
                      "scalar" if stage == "scalar_full" else "xnor")
    v, tol = stage_ref(acc, mag, np.prod(kernel) * c, **args)
    wp = pack_signs(wf)
    for name in ISAS:
        with isa(name):
            got = E.wconv2d(x, c, wp, kernel, strides, padding, **args)
            check_float(got, v, tol)
            bits = E.wconv2d(x, c, wp, kernel, strides, padding, out="bits", **args)
            check_bits(bits, v, tol)  # clamp keeps the sign (lo < 0 < hi)


@pytest.mark.parametrize("case", CONV_CASES[2:7], ids=case_id)
def test_wconv2d_isas_agree_with_ref_and_threads_identical(case):
    n, h, w, c, o, kernel, strides, padding = case
    rng = np.random.default_rng(7)
    x = rand(rng, n, h, w, c)
    wp = pack_signs(rand(rng, o, *kernel, c))
    with isa("ref"):
        ref = E.wconv2d(x, c, wp, kernel, strides, padding).astype(np.float64)
    mag, _ = conv_ref(np.abs(x), np.ones((o, *kernel, c), np.float32), strides, padding)
    tol = 2 * EPS * (np.sqrt(np.prod(kernel) * c) + 4) * mag
    for name in ISAS:
        with isa(name):
            one = E.wconv2d(x, c, wp, kernel, strides, padding, num_threads=1)
            assert np.all(np.abs(one - ref) <= tol), name
            for t in (2, 3, 4):
                assert np.array_equal(one, E.wconv2d(x, c, wp, kernel, strides, padding,
                                                     num_threads=t)), (name, t)


@pytest.mark.parametrize("c", [65, 3])
def test_wconv2d_ignores_unused_high_weight_bits(c):
    """Bits past in_channels in the last word are padding: every path ignores
    them (the SIMD paths load zeros there, the scalar ones stop at c)."""
    rng = np.random.default_rng(2)
    x, wf = rand(rng, 1, 5, 5, c), rand(rng, 6, 3, 3, c)
    wp = pack_signs(wf)
    dirty = wp.copy()
    dirty[..., -1] |= ~np.uint64(0) << np.uint64(c % 64)
    for name in ISAS:
        with isa(name):
            assert np.array_equal(E.wconv2d(x, c, wp, 3), E.wconv2d(x, c, dirty, 3)), name


def random_geometries(count, seed):
    """Seeded random conv geometries, awkward sizes on purpose."""
    rng = np.random.default_rng(seed)
    for _ in range(count):
        kh, kw = rng.integers(1, 6, 2)
        sh, sw = rng.integers(1, 4, 2)
        padding = ["same_zero", "valid"][rng.integers(2)]
        h = int(rng.integers(kh if padding == "valid" else 1, 12))
        w = int(rng.integers(kw if padding == "valid" else 1, 12))
        c = int(rng.choice([1, 2, 3, 5, 15, 16, 17, 31, 33, 63, 64, 65, 127, 129]))
        o = int(rng.integers(1, 40))
        yield (int(rng.integers(1, 4)), h, w, c, o, (int(kh), int(kw)), (int(sh), int(sw)), padding)


@pytest.mark.parametrize("case", list(random_geometries(12, 2024)), ids=case_id)
def test_random_geometries_all_ops(case):
    n, h, w, c, o, kernel, strides, padding = case
    rng = np.random.default_rng(zlib.crc32(repr(case).encode()))
    x, wf = rand(rng, n, h, w, c), rand(rng, o, *kernel, c)
    signs = np.where(wf < 0, -1.0, 1.0)
    k = np.prod(kernel) * c
    wv, wtol = stage_ref(*conv_ref(x, signs, strides, padding), k)
    fv, ftol = stage_ref(*conv_ref(x, wf, strides, padding), k)
    want_k = kmap_ref(x, *kernel, *strides, padding)
    for name in ISAS:
        with isa(name):
            for t in (1, 3):
                check_float(E.wconv2d(x, c, pack_signs(wf), kernel, strides, padding,
                                      num_threads=t), wv, wtol)
                check_float(E.fconv2d(x, wf, kernel, strides, padding, num_threads=t), fv, ftol)
    np.testing.assert_allclose(E.kmap(x, kernel, strides, "valid" if padding == "valid" else "same"),
                               want_k, rtol=1e-5)
    pool_pad = "valid" if padding == "valid" else "same"
    assert np.array_equal(E.maxpool(x, kernel, strides, pool_pad),
                          pool_ref(x, *kernel, *strides, pool_pad, np.max))


@pytest.mark.parametrize("name", E.ISA_NAMES)
def test_each_isa_against_ref(name):
    """Every path against the scalar reference path on one awkward layer of
    each op; paths this machine/build cannot run are reported as skipped."""
    if name not in ISAS:
        pytest.skip(f"ISA {name} not available on this machine/build ({ISAS}); "
                    "the NEON paths need an ARM build (e.g. under qemu)")
    rng = np.random.default_rng(9)
    x, wf = rand(rng, 2, 7, 6, 65), rand(rng, 70, 3, 3, 65)
    x3, wf3 = rand(rng, 2, 7, 6, 3), rand(rng, 70, 3, 3, 3)
    xd, wd = rand(rng, 3, 200), rand(rng, 130, 200)
    calls = {
        "wconv": lambda: E.wconv2d(x, 65, pack_signs(wf), 3, 2),
        "wconv_few": lambda: E.wconv2d(x3, 3, pack_signs(wf3), 3),
        "fconv": lambda: E.fconv2d(x, wf, 3, 2),
        "wdense": lambda: E.wdense(xd, pack_signs(wd)),
        "fdense": lambda: E.fdense(xd, wd),
    }
    for what, call in calls.items():
        with isa("ref"):
            want = call()
        with isa(name):
            got = call()
        if what == "fconv" and name in ("avx2", "avx512", "ref"):
            assert np.array_equal(got, want), what        # same FMA chains
        else:                                             # other summation order
            np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-5 * np.abs(want).max(),
                                       err_msg=f"{name} {what}")


# ------------------------------------------------------ weights-only dense ---
DENSE_CASES = [(1, 1, 1), (3, 63, 65), (1, 200, 130), (4, 64, 64), (3, 3, 300), (2, 1000, 10)]


@pytest.mark.parametrize("b,c,o", DENSE_CASES)
def test_wdense_matches_reference(b, c, o):
    rng = np.random.default_rng(b * 1000 + c + o)
    x = rand(rng, b, c)
    wf = rand(rng, o, c)
    s = np.where(wf < 0, -1.0, 1.0)
    acc, mag = x.astype(np.float64) @ s.T, np.abs(x.astype(np.float64)) @ np.abs(s).T
    args = stage_args(rng, "full", b, o, "xnor")
    v, tol = stage_ref(acc, mag, c, **args)
    wp = pack_signs(wf)
    for name in ISAS:
        with isa(name):
            check_float(E.wdense(x, wp, **args), v, tol)
            check_bits(E.wdense(x, wp, out="bits", mul=args["mul"], bias=args["bias"]),
                       *stage_ref(acc, mag, c, mul=args["mul"], bias=args["bias"]))
            one = E.wdense(x, wp, **args)
            for t in (2, 3, 4):
                assert np.array_equal(one, E.wdense(x, wp, num_threads=t, **args)), (name, t)


# ------------------------------------------------------------ float conv ---
@pytest.mark.parametrize("case", CONV_CASES, ids=case_id)
def test_fconv2d_matches_reference(case):
    n, h, w, c, o, kernel, strides, padding = case
    rng = np.random.default_rng(zlib.crc32(repr(case).encode()))
    x = rand(rng, n, h, w, c)
    wf = rand(rng, o, *kernel, c)
    acc, mag = conv_ref(x, wf, strides, padding)
    pixels = int(np.prod(acc.shape[:3]))
    args = stage_args(rng, "full", pixels, o, "xnor")
    v, tol = stage_ref(acc, mag, np.prod(kernel) * c, **args)
    vb, tolb = stage_ref(acc, mag, np.prod(kernel) * c, bias=args["bias"])
    with isa("ref"):
        ref = E.fconv2d(x, wf, kernel, strides, padding, **args)
    check_float(ref, v, tol)
    for name in ISAS:
        with isa(name):
            got = E.fconv2d(x, wf, kernel, strides, padding, **args)
            check_float(got, v, tol)
            if name in ("avx2", "avx512"):   # same FMA chain per element as ref
                assert np.array_equal(got, ref), name
            check_bits(E.fconv2d(x, wf, kernel, strides, padding, out="bits",
                                 bias=args["bias"]), vb, tolb)
            for t in (2, 3, 4):
                assert np.array_equal(got, E.fconv2d(x, wf, kernel, strides, padding,
                                                     num_threads=t, **args)), (name, t)


@pytest.mark.parametrize("b,c,o", DENSE_CASES)
def test_fdense_matches_reference(b, c, o):
    rng = np.random.default_rng(b + c * 7 + o)
    x, wf = rand(rng, b, c), rand(rng, o, c)
    acc = x.astype(np.float64) @ wf.T.astype(np.float64)
    mag = np.abs(x.astype(np.float64)) @ np.abs(wf.T.astype(np.float64))
    args = stage_args(rng, "full", b, o, "xnor")
    v, tol = stage_ref(acc, mag, c, **args)
    for name in ISAS:
        with isa(name):
            one = E.fdense(x, wf, **args)
            check_float(one, v, tol)
            check_bits(E.fdense(x, wf, out="bits"), *stage_ref(acc, mag, c))
            for t in (2, 3, 4):
                assert np.array_equal(one, E.fdense(x, wf, num_threads=t, **args)), (name, t)


def test_fconv2d_and_pools_match_tensorflow():
    tf = pytest.importorskip("tensorflow")
    rng = np.random.default_rng(3)
    x = rand(rng, 2, 9, 8, 3)
    wf = rand(rng, 6, 3, 3, 3)
    for s in (1, 2):
        for pad, tfpad in (("same_zero", "SAME"), ("valid", "VALID")):
            want = tf.nn.conv2d(x, np.transpose(wf, (1, 2, 3, 0)), s, tfpad).numpy()
            np.testing.assert_allclose(E.fconv2d(x, wf, strides=s, padding=pad), want,
                                       rtol=1e-5, atol=1e-5)
    for pool, s in ((2, 2), (3, 2), (3, 1)):
        for pad in ("same", "valid"):
            np.testing.assert_allclose(E.maxpool(x, pool, s, pad),
                                       tf.nn.max_pool2d(x, pool, s, pad.upper()).numpy())
            np.testing.assert_allclose(E.avgpool(x, pool, s, pad),
                                       tf.nn.avg_pool2d(x, pool, s, pad.upper()).numpy(),
                                       rtol=1e-6, atol=1e-6)


# ---------------------------------------------------------------- K map ---
def kmap_ref(x, kh, kw, sh, sw, padding):
    a = np.abs(x.astype(np.float64)).mean(axis=-1)[..., None]
    ap, oh, ow = pad_input(a, kh, kw, sh, sw, padding)
    k = np.zeros((x.shape[0], oh, ow))
    for oy in range(oh):
        for ox in range(ow):
            k[:, oy, ox] = ap[:, oy * sh:oy * sh + kh, ox * sw:ox * sw + kw, 0].sum(axis=(1, 2))
    return k / (kh * kw)


@pytest.mark.parametrize("case", CONV_CASES, ids=case_id)
def test_kmap_matches_direct_formula(case):
    n, h, w, c, _, (kh, kw), (sh, sw), padding = case
    x = rand(np.random.default_rng(c), n, h, w, c)
    want = kmap_ref(x, kh, kw, sh, sw, padding)
    for t in (1, 3):
        got = E.kmap(x, (kh, kw), (sh, sw), "valid" if padding == "valid" else "same_one",
                     num_threads=t)
        np.testing.assert_allclose(got, want, rtol=4 * EPS * (np.sqrt(c) + kh * kw))
        assert got.shape == want.shape and got.dtype == np.float32


def test_kmap_as_pixel_scale_of_a_conv():
    """The K map is exactly the per-pixel scale a conv's output stage takes."""
    rng = np.random.default_rng(11)
    x, wf = rand(rng, 2, 6, 6, 65), rand(rng, 7, 3, 3, 65)
    k = E.kmap(x, 3, 1, "same_zero")
    plain = E.wconv2d(x, 65, pack_signs(wf), 3)
    scaled = E.wconv2d(x, 65, pack_signs(wf), 3, pixel_scale=k)
    assert np.array_equal(scaled, plain * k[..., None])


# ---------------------------------------------------------------- pools ---
def pool_ref(x, kh, kw, sh, sw, padding, op):
    n, h, w, c = x.shape
    if padding == "valid":
        oh, ow, pt, pl = (h - kh) // sh + 1, (w - kw) // sw + 1, 0, 0
    else:
        (oh, pt, _), (ow, pl, _) = same_pads(h, kh, sh), same_pads(w, kw, sw)
    out = np.zeros((n, oh, ow, c))
    for oy in range(oh):
        for ox in range(ow):
            y0, x0 = oy * sh - pt, ox * sw - pl
            win = x[:, max(y0, 0):y0 + kh, max(x0, 0):x0 + kw, :].astype(np.float64)
            out[:, oy, ox] = op(win, axis=(1, 2))
    return out


POOL_CASES = [((1, 1, 1, 3), 2, 2, "same"), ((3, 7, 5, 65), 3, 2, "same"),
              ((1, 8, 8, 64), 2, 2, "valid"), ((2, 9, 6, 1), (3, 2), (1, 2), "same"),
              ((1, 5, 5, 200), 3, 1, "valid"), ((2, 4, 6, 63), 5, 3, "same")]


@pytest.mark.parametrize("shape,pool,strides,padding", POOL_CASES)
def test_pools_match_tf_semantics(shape, pool, strides, padding):
    x = rand(np.random.default_rng(shape[-1]), *shape)
    (kh, kw), (sh, sw) = [(v, v) if isinstance(v, int) else v for v in (pool, strides)]
    want_max = pool_ref(x, kh, kw, sh, sw, padding, np.max)
    want_avg = pool_ref(x, kh, kw, sh, sw, padding, np.mean)
    for t in (1, 2, 4):
        assert np.array_equal(E.maxpool(x, pool, strides, padding, num_threads=t), want_max)
        np.testing.assert_allclose(E.avgpool(x, pool, strides, padding, num_threads=t),
                                   want_avg, rtol=1e-6, atol=1e-6)


def special_values(rng, shape):
    """random floats with NaN, +-inf, -0.0 and +0.0 sprinkled in: the max
    rule (x > m ? x : m) and the sum order must agree on these too"""
    x = rand(rng, *shape)
    special = np.array([np.nan, np.inf, -np.inf, -0.0, 0.0], np.float32)
    pick = rng.random(shape) < 0.1
    x[pick] = rng.choice(special, int(pick.sum()))
    return x


# channels 1, 3, 16, 32, 63, 64, 65, 200 reach every vector count and tail
POOL_ISA_CASES = [((1, 28, 28, 32), 2, 2, "valid"), ((3, 7, 5, 65), 3, 2, "same"),
                  ((2, 9, 6, 1), (3, 2), (1, 2), "same"), ((1, 5, 5, 200), 3, 1, "valid"),
                  ((2, 4, 6, 63), 5, 3, "same"), ((1, 1, 1, 3), 2, 2, "same"),
                  ((1, 6, 7, 16), 2, 1, "same"), ((2, 3, 5, 64), (1, 3), (2, 1), "same")]


@pytest.mark.parametrize("name", [i for i in ISAS if i != "ref"])
@pytest.mark.parametrize("shape,pool,strides,padding", POOL_ISA_CASES)
def test_pools_each_isa_bit_identical_to_ref(name, shape, pool, strides, padding):
    x = special_values(np.random.default_rng(sum(shape)), shape)
    with isa("ref"):
        want = [E.maxpool(x, pool, strides, padding), E.avgpool(x, pool, strides, padding)]
    with isa(name):
        for t in (1, 2, 3):
            mx = E.maxpool(x, pool, strides, padding, num_threads=t)
            avg = E.avgpool(x, pool, strides, padding, num_threads=t)
            # max only selects inputs: every bit, NaN payloads included
            assert mx.tobytes() == want[0].tobytes(), (name, t)
            # sums: every bit of every number; a NaN made inside a sum
            # (inf + -inf) may come out with either sign, as the hardware
            # picks between two NaN operands by their order in an add,
            # which C leaves to the compiler
            nan = np.isnan(want[1])
            assert np.array_equal(np.isnan(avg), nan), (name, t)
            assert avg[~nan].tobytes() == want[1][~nan].tobytes(), (name, t)


@pytest.mark.parametrize("shape", [(1, 1, 1, 1), (3, 5, 7, 65), (1, 8, 8, 200), (2, 3, 3, 64)])
def test_global_avgpool(shape):
    x = rand(np.random.default_rng(1), *shape)
    want = x.astype(np.float64).mean(axis=(1, 2))
    one = E.global_avgpool(x)
    np.testing.assert_allclose(one, want, rtol=1e-6, atol=1e-6)
    for t in (2, 3, 4):
        assert np.array_equal(one, E.global_avgpool(x, num_threads=t))


def test_numpy_integer_and_pair_arguments():
    rng = np.random.default_rng(5)
    x, wf = rand(rng, 1, 7, 7, 5), rand(rng, 3, 3, 3, 5)
    ref = E.fconv2d(x, wf, 3, 2)
    assert np.array_equal(E.fconv2d(x, wf, (3, 3), (np.int64(2), 2)), ref)
    assert np.array_equal(E.wconv2d(x, 5, pack_signs(wf), np.int32(3), np.int64(2)),
                          E.wconv2d(x, 5, pack_signs(wf), 3, 2))


# ------------------------------------------------------------ bad input ---
def test_bad_inputs_raise_value_error():
    rng = np.random.default_rng(0)
    x = rand(rng, 1, 5, 5, 8)
    wp = pack_signs(rand(rng, 4, 3, 3, 8))
    wf = rand(rng, 4, 3, 3, 8)
    bad = [
        lambda: E.wconv2d(x.astype(np.float64), 8, wp, 3),            # dtype
        lambda: E.wconv2d(x[:, :, ::2], 8, wp, 3),                    # not contiguous
        lambda: E.wconv2d(np.zeros((0, 5, 5, 8), np.float32), 8, wp, 3),  # zero-size
        lambda: E.wconv2d(x, 9, wp, 3),                               # channels mismatch
        lambda: E.wconv2d(x, 8, pack_signs(rand(rng, 4, 3, 3, 70)), 3),  # words mismatch
        lambda: E.wconv2d(x, 8, wp, 5),                               # kernel mismatch
        lambda: E.wconv2d(x, 8, wp, 3, padding="same_one"),           # +1 pad: binary only
        lambda: E.wconv2d(x, 8, wp, 3, out="int32"),
        lambda: E.wconv2d(x, 8, wp, 3, strides=0),
        lambda: E.wconv2d(x, 8, wp, 3, strides="ab"),
        lambda: E.fconv2d(x, wf, strides=(1, 2, 3)),
        lambda: E.wconv2d(x, 8, wp, 3, mul=np.ones(5, np.float32)),
        lambda: E.wconv2d(x, 8, wp, 3, residual=np.ones((3, 4), np.float32)),
        lambda: E.wconv2d(x, 8, wp, 3, pixel_scale=np.ones(7, np.float32)),
        lambda: E.wconv2d(x, 8, wp, 3, clamp=(1.0, -1.0)),
        lambda: E.wconv2d(x, 8, wp, 3, num_threads=0),
        lambda: E.wconv2d(rand(rng, 1, 2, 2, 8), 8, wp, 3, padding="valid"),  # kernel > input
        lambda: E.fconv2d(x, rand(rng, 4, 3, 3, 7)),
        lambda: E.fconv2d(x, wf, padding="SAME"),
        lambda: E.fconv2d(x, wf.astype(np.float16)),
        lambda: E.fconv2d(x[0], wf),
        lambda: E.fdense(rand(rng, 2, 8), rand(rng, 3, 9)),
        lambda: E.fdense(rand(rng, 2, 8), rand(rng, 3, 8), out="bytes"),
        lambda: E.wdense(rand(rng, 2, 8), pack_signs(rand(rng, 3, 65))),
        lambda: E.wdense(rand(rng, 2, 8), pack_signs(rand(rng, 3, 8)).astype(np.int64)),
        lambda: E.kmap(x, 3, 1, "sideways"),
        lambda: E.kmap(x, 6, 1, "valid"),
        lambda: E.maxpool(x, 2, 2, "same_zero"),
        lambda: E.maxpool(x, (2, 2, 2), 2),
        lambda: E.avgpool(x, 0),
        lambda: E.avgpool([[1.0]], 2),
        lambda: E.global_avgpool(x.astype(np.float64)),
        lambda: E.kmap(x, (1 << 21, 1)),                              # absurd window
        lambda: E.maxpool(x, 2, (1 << 30, 1)),                        # absurd stride
    ]
    for i, call in enumerate(bad):
        with pytest.raises(ValueError):
            call()
            pytest.fail(f"bad input #{i} was accepted")
