"""Binary kernels against a numpy model of the float semantics.

The reference never touches bits: it binarizes with sign (+1 for x >= 0),
convolves the +-1 values with ordinary zero / +1 padding, and applies the
output stage in float32 in the kernels' order. Every ISA path must equal
the "ref" path bit for bit, and every thread count must give the same bytes.
"""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from edgebnn import _engine as E
from isa_switch import isa

ISAS = E.isa_available()
FAST_ISAS = [i for i in ISAS if i != "ref"]
ALL_KNOWN = ("ref", "generic", "avx2", "avx512", "neon")


def run_isa(name, fn, *args, **kw):
    if name not in ISAS:
        pytest.skip(f"ISA {name} not available on this machine/build ({ISAS})")
    with isa(name):
        return fn(*args, **kw)


# ------------------------------------------------------------ reference ---
def sign(x):
    return np.where(x < 0, -1, 1).astype(np.int64)


def ref_pack(x):
    """bit = 1 where x < 0, LSB first, padded to 64-bit words."""
    c = x.shape[-1]
    words = (c + 63) // 64
    bits = np.zeros(x.shape[:-1] + (words * 64,), np.uint8)
    bits[..., :c] = x < 0
    return np.packbits(bits, axis=-1, bitorder="little").view("<u8").astype(np.uint64)


def tf_same(size, k, s):
    out = -(-size // s)
    total = max((out - 1) * s + k - size, 0)
    return out, total // 2, total - total // 2


def ref_conv(xs, ws, strides, padding):
    """+-1 ints xs [N,H,W,C], ws [O,KH,KW,C] -> exact dot [N,OH,OW,O]."""
    n, h, w, c = xs.shape
    o, kh, kw, _ = ws.shape
    sh, sw = strides
    if padding == "valid":
        oh, ow = (h - kh) // sh + 1, (w - kw) // sw + 1
        xp = xs
    else:
        oh, pt, pb = tf_same(h, kh, sh)
        ow, pl, pr = tf_same(w, kw, sw)
        fill = 0 if padding == "same_zero" else 1
        xp = np.pad(xs, ((0, 0), (pt, pb), (pl, pr), (0, 0)), constant_values=fill)
    win = np.lib.stride_tricks.sliding_window_view(xp, (kh, kw), axis=(1, 2))
    win = win[:, ::sh, ::sw][:, :oh, :ow]            # [N,OH,OW,C,KH,KW]
    return np.einsum("nyxcij,oijc->nyxo", win, ws, optimize=True)


def ref_stage(dot, out, mul=None, bias=None, pixel_scale=None, residual=None,
              clamp=None, thresholds=None, flip=None):
    o = dot.shape[-1]
    if out == "int32":
        return dot.astype(np.int32)
    if out == "bits" and thresholds is not None:
        f = np.zeros(o, bool) if flip is None else flip.astype(bool)
        neg = np.where(f, dot > thresholds, dot < thresholds)
        return ref_pack(np.where(neg, -1.0, 1.0))
    v = dot.astype(np.float32)
    if pixel_scale is not None:
        v = v * pixel_scale.reshape(dot.shape[:-1] + (1,))
    if mul is not None:
        v = v * mul
    if bias is not None:
        v = v + bias
    if residual is not None:
        v = v + residual.reshape(v.shape)
    if out == "bits":
        return ref_pack(np.where(v < 0, -1.0, 1.0))
    if clamp is not None:
        v = np.minimum(np.maximum(v, np.float32(clamp[0])), np.float32(clamp[1]))
    return v.astype(np.float32)


def rand_pm(rng, shape):
    """random values with plenty of exact zeros (sign(0) = +1 must hold)"""
    x = rng.standard_normal(shape).astype(np.float32)
    x[rng.random(shape) < 0.1] = 0.0
    return x


# ------------------------------------------------------------- bitpack ---
@pytest.mark.parametrize("c", [1, 3, 16, 32, 63, 64, 65, 127, 128, 200])
@pytest.mark.parametrize("name", ALL_KNOWN)
def test_bitpack_f32_matches_reference(name, c):
    rng = np.random.default_rng(c)
    x = rand_pm(rng, (3, 5, c))
    x.flat[::7] = -0.0
    x.flat[::11] = np.nan
    want = ref_pack(x)
    got = run_isa(name, E.bitpack, x)
    assert got.shape == (3, 5, (c + 63) // 64) and got.dtype == np.uint64
    np.testing.assert_array_equal(got, want)
    for nt in (2, 3, 4):
        np.testing.assert_array_equal(run_isa(name, E.bitpack, x, num_threads=nt), want)


@pytest.mark.parametrize("c", [1, 65, 200])
def test_bitpack_8bit(c):
    rng = np.random.default_rng(7)
    u = rng.integers(0, 256, (4, c), dtype=np.uint8)
    i = rng.integers(-128, 128, (4, c), dtype=np.int8)
    np.testing.assert_array_equal(E.bitpack(u, zero_point=128), ref_pack(u.astype(int) - 128))
    np.testing.assert_array_equal(E.bitpack(i), ref_pack(i))
    np.testing.assert_array_equal(E.bitpack(i, zero_point=-5, num_threads=3),
                                  ref_pack(i.astype(int) + 5))


# ---------------------------------------------------------------- conv ---
# (n, h, w, c, o, kernel, strides, padding): the awkward cases
CONV_CASES = [
    (1, 5, 5, 1, 1, (3, 3), (1, 1), "same_zero"),
    (3, 7, 5, 3, 8, (3, 3), (1, 1), "same_zero"),
    (1, 6, 6, 63, 65, (3, 3), (2, 2), "same_zero"),
    (2, 5, 7, 64, 64, (3, 3), (1, 1), "same_one"),
    (1, 9, 9, 65, 33, (3, 3), (2, 2), "same_one"),
    (1, 4, 4, 200, 17, (3, 3), (1, 1), "valid"),
    (1, 1, 1, 200, 130, (3, 3), (1, 1), "same_zero"),
    (3, 1, 1, 65, 70, (1, 1), (1, 1), "valid"),
    (2, 5, 5, 64, 40, (1, 1), (1, 1), "same_one"),
    (1, 7, 7, 130, 9, (1, 1), (2, 2), "same_zero"),
    (1, 8, 6, 3, 5, (5, 5), (1, 1), "same_zero"),
    (1, 9, 8, 5, 11, (3, 1), (2, 1), "same_zero"),
    (1, 10, 10, 600, 3, (3, 3), (1, 1), "same_zero"),
    (1, 14, 14, 256, 49, (3, 3), (1, 1), "same_zero"),
    (1, 4, 4, 1000, 37, (3, 3), (1, 1), "same_zero"),   # K > 128 words: K chunks
    (1, 33, 33, 3, 5, (3, 3), (1, 1), "same_zero"),     # > 1024 pixels: 2 blocks
]


def conv_inputs(case, seed=0):
    n, h, w, c, o, k, s, p = case
    rng = np.random.default_rng(seed)
    x = rand_pm(rng, (n, h, w, c))
    wf = rand_pm(rng, (o,) + k + (c,))
    return x, wf, E.bitpack(x), E.bitpack(wf)


@pytest.mark.parametrize("case", CONV_CASES, ids=lambda c: "x".join(map(str, c[:5])) + f"-k{c[5][0]}{c[5][1]}-s{c[6][0]}-{c[7]}")
def test_bconv_int32_all_isas_and_threads(case):
    n, h, w, c, o, k, s, p = case
    x, wf, xp, wp = conv_inputs(case)
    want = ref_conv(sign(x), sign(wf), s, p)
    results = {}
    for name in ISAS:
        with isa(name):
            for nt in (1, 2, 3, 4):
                got = E.bconv2d(xp, c, wp, k, strides=s, padding=p, num_threads=nt)
                np.testing.assert_array_equal(got, want, err_msg=f"{name} threads={nt}")
                results[(name, nt)] = got
    assert len(results) == 4 * len(ISAS)


@pytest.mark.parametrize("name", ALL_KNOWN)
def test_bconv_float_stage(name):
    case = (2, 6, 5, 70, 67, (3, 3), (1, 1), "same_zero")
    n, h, w, c, o, k, s, p = case
    x, wf, xp, wp = conv_inputs(case, seed=3)
    rng = np.random.default_rng(5)
    dot = ref_conv(sign(x), sign(wf), s, p)
    args = dict(mul=rng.standard_normal(o).astype(np.float32),
                bias=rng.standard_normal(o).astype(np.float32),
                pixel_scale=rng.random((n, h, w)).astype(np.float32),
                residual=rng.standard_normal((n, h, w, o)).astype(np.float32),
                clamp=(-3.0, 2.5))
    want = ref_stage(dot, "float", **args)
    for nt in (1, 2, 4):
        got = run_isa(name, E.bconv2d, xp, c, wp, k, padding=p, out="float",
                      num_threads=nt, **args)
        assert got.dtype == np.float32 and got.shape == (n, h, w, o)
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
    # partial stages: no mul, no clamp
    got = run_isa(name, E.bconv2d, xp, c, wp, k, padding=p, out="float",
                  bias=args["bias"])
    np.testing.assert_allclose(got, ref_stage(dot, "float", bias=args["bias"]), rtol=1e-6)


@pytest.mark.parametrize("o", [1, 63, 64, 65, 130])
@pytest.mark.parametrize("name", ALL_KNOWN)
def test_bconv_bits_thresholds_with_flip(name, o):
    case = (1, 3, 3, 65, o, (3, 3), (1, 1), "same_zero")   # 9 pixels: filter split at 2+ threads
    n, h, w, c, _, k, s, p = case
    x, wf, xp, wp = conv_inputs(case, seed=o)
    rng = np.random.default_rng(o)
    dot = ref_conv(sign(x), sign(wf), s, p)
    thr = rng.integers(-40, 40, o).astype(np.int32)
    flip = (rng.random(o) < 0.4).astype(np.uint8)    # negative folded scale
    want = ref_stage(dot, "bits", thresholds=thr, flip=flip)
    for nt in (1, 2, 3, 4):
        got = run_isa(name, E.bconv2d, xp, c, wp, k, padding=p, out="bits",
                      thresholds=thr, flip=flip, num_threads=nt)
        assert got.shape == (n, h, w, (o + 63) // 64)
        np.testing.assert_array_equal(got, want, err_msg=f"threads={nt}")
    # float compare (no thresholds); bias off the integers so v is never 0
    bias = (rng.integers(-5, 5, o) + 0.5).astype(np.float32)
    mul = np.where(rng.random(o) < 0.5, -1.0, 2.0).astype(np.float32)
    want = ref_stage(dot, "bits", mul=mul, bias=bias)
    got = run_isa(name, E.bconv2d, xp, c, wp, k, padding=p, out="bits", mul=mul, bias=bias)
    np.testing.assert_array_equal(got, want)


def test_bits_output_feeds_next_layer():
    """bits out of one conv are valid packed input (padding bits zero)."""
    case = (1, 6, 6, 20, 70, (3, 3), (1, 1), "same_one")
    x, wf, xp, wp = conv_inputs(case)
    bits = E.bconv2d(xp, 20, wp, 3, out="bits", thresholds=np.zeros(70, np.int32))
    w2 = E.bitpack(rand_pm(np.random.default_rng(1), (5, 3, 3, 70)))
    E.bconv2d(bits, 70, w2, 3)   # would raise on nonzero padding bits


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(1, 3), h=st.integers(1, 9), w=st.integers(1, 9),
       c=st.sampled_from([1, 2, 3, 31, 63, 64, 65, 100, 128, 129, 200]),
       o=st.integers(1, 80), kh=st.integers(1, 4), kw=st.integers(1, 4),
       sh=st.integers(1, 3), sw=st.integers(1, 3),
       p=st.sampled_from(["valid", "same_one", "same_zero"]),
       nt=st.integers(1, 4), seed=st.integers(0, 2**31))
def test_bconv_property(n, h, w, c, o, kh, kw, sh, sw, p, nt, seed):
    if p == "valid" and (kh > h or kw > w):
        return
    case = (n, h, w, c, o, (kh, kw), (sh, sw), p)
    x, wf, xp, wp = conv_inputs(case, seed)
    want = ref_conv(sign(x), sign(wf), (sh, sw), p)
    for name in FAST_ISAS:
        with isa(name):
            got = E.bconv2d(xp, c, wp, (kh, kw), strides=(sh, sw), padding=p, num_threads=nt)
        np.testing.assert_array_equal(got, want, err_msg=name)


# --------------------------------------------------------------- dense ---
@pytest.mark.parametrize("batch,c,o", [(1, 1, 1), (1, 200, 300), (3, 65, 64),
                                       (2, 63, 129), (50, 130, 70), (130, 64, 9),
                                       (1, 9000, 20), (6, 9000, 40),
                                       # the LeNet dense (8-filter groups, masked
                                       # K tail) and a K of whole 512-bit steps
                                       (1, 3136, 1024), (2, 1024, 37)])
def test_bdense_all_isas_threads_and_stages(batch, c, o):
    rng = np.random.default_rng(batch * 1000 + c)
    x, wf = rand_pm(rng, (batch, c)), rand_pm(rng, (o, c))
    xp, wp = E.bitpack(x), E.bitpack(wf)
    dot = sign(x) @ sign(wf).T
    mul = rng.standard_normal(o).astype(np.float32)
    bias = rng.standard_normal(o).astype(np.float32)
    thr = rng.integers(-10, 10, o).astype(np.int32)
    flip = (rng.random(o) < 0.5).astype(np.uint8)
    for name in ISAS:
        with isa(name):
            for nt in (1, 2, 3, 4):
                np.testing.assert_array_equal(
                    E.bdense(xp, c, wp, num_threads=nt), dot, err_msg=f"{name} {nt}")
                np.testing.assert_allclose(
                    E.bdense(xp, c, wp, out="float", mul=mul, bias=bias, clamp=(-1, 1),
                             num_threads=nt),
                    ref_stage(dot, "float", mul=mul, bias=bias, clamp=(-1, 1)), rtol=1e-6)
                np.testing.assert_array_equal(
                    E.bdense(xp, c, wp, out="bits", thresholds=thr, flip=flip, num_threads=nt),
                    ref_stage(dot, "bits", thresholds=thr, flip=flip))


# ------------------------------------------------------------- maxpool ---
def ref_maxpool_pm(xs, pool, strides, padding):
    n, h, w, c = xs.shape
    (kh, kw), (sh, sw) = pool, strides
    if padding == "valid":
        oh, ow, pt, pl = (h - kh) // sh + 1, (w - kw) // sw + 1, 0, 0
        xp = xs
    else:
        oh, pt, pb = tf_same(h, kh, sh)
        ow, pl, pr = tf_same(w, kw, sw)
        xp = np.pad(xs, ((0, 0), (pt, pb), (pl, pr), (0, 0)), constant_values=-2)  # ignored
    win = np.lib.stride_tricks.sliding_window_view(xp, (kh, kw), axis=(1, 2))
    return win[:, ::sh, ::sw][:, :oh, :ow].max(axis=(-1, -2))


@pytest.mark.parametrize("shape,pool,strides,padding", [
    ((1, 4, 4, 1), (2, 2), (2, 2), "valid"),
    ((3, 5, 7, 65), (2, 2), (2, 2), "same"),
    ((1, 5, 5, 200), (3, 3), (2, 2), "same"),
    ((2, 6, 6, 64), (3, 3), (1, 1), "same"),
    ((1, 1, 1, 63), (2, 2), (2, 2), "same"),
    ((1, 7, 7, 3), (3, 2), (1, 2), "valid"),
])
def test_maxpool_bits(shape, pool, strides, padding):
    rng = np.random.default_rng(len(shape) + shape[-1])
    x = rand_pm(rng, shape)
    xs = sign(x)
    want = ref_pack(np.where(ref_maxpool_pm(xs, pool, strides, padding) < 0, -1.0, 1.0))
    for nt in (1, 2, 3, 4):
        got = E.maxpool_bits(E.bitpack(x), shape[-1], pool, strides, padding, num_threads=nt)
        np.testing.assert_array_equal(got, want)


# ------------------------------------------------------------ bad input ---
def small_conv():
    rng = np.random.default_rng(0)
    return E.bitpack(rand_pm(rng, (1, 4, 4, 70))), E.bitpack(rand_pm(rng, (5, 3, 3, 70)))


def test_bad_input_is_value_error():
    xp, wp = small_conv()
    bad = [
        lambda: E.bconv2d(xp.astype(np.int64), 70, wp, 3),                 # dtype
        lambda: E.bconv2d(np.asfortranarray(xp), 70, wp, 3),               # layout
        lambda: E.bconv2d(xp[:, :, ::2], 70, wp, 3),                       # non-contiguous
        lambda: E.bconv2d(xp[:0], 70, wp, 3),                              # zero size
        lambda: E.bconv2d(xp, 130, wp, 3),                                 # channels vs words
        lambda: E.bconv2d(xp, 70, wp[..., :1], 3),                         # weight words
        lambda: E.bconv2d(xp, 70, wp, 5),                                  # kernel vs weights
        lambda: E.bconv2d(xp, 70, wp, 3, strides=0),
        lambda: E.bconv2d(xp, 70, wp, 3, padding="same"),
        lambda: E.bconv2d(xp, 70, wp, 3, out="int8"),
        lambda: E.bconv2d(xp, 70, wp, 3, num_threads=0),
        lambda: E.bconv2d(xp, 70, wp, 3, mul=np.ones(4, np.float32), out="float"),
        lambda: E.bconv2d(xp, 70, wp, 3, pixel_scale=np.ones(15, np.float32), out="float"),
        lambda: E.bconv2d(xp, 70, wp, 3, out="float", thresholds=np.zeros(5, np.int32)),
        lambda: E.bconv2d(xp | np.uint64(1 << 63), 70, wp, 3),            # padding bits set
        lambda: E.bconv2d(xp, 70, wp | np.uint64(1 << 63), 3),
        lambda: E.bconv2d(xp, 0, wp, 3),
        lambda: E.bconv2d(xp, 70, wp[:, :, :2].copy(), (3, 2), padding="valid", strides=(1, 1 << 21)),
        lambda: E.bconv2d(xp[:, :2, :2].copy(), 70, wp, 3, padding="valid"),  # kernel > input
        lambda: E.bconv2d(xp, 70, wp[0], 3),                               # ndim
        lambda: E.bconv2d([[1]], 70, wp, 3),                               # not an array
        lambda: E.bdense(xp[0, 0], 70, wp[:, 0, 0].copy()[:, :1], 3),
        lambda: E.bdense(xp[0, 0], 70, wp[:, 0, 0]),                       # non-contiguous
        lambda: E.bdense(xp[0, 0], 1 << 25, wp[:, 0, 0].copy()),          # huge channels
        lambda: E.bitpack(np.zeros((2, 3), np.float64)),
        lambda: E.bitpack(np.zeros((2, 0), np.float32)),
        lambda: E.bitpack(np.zeros((2, 3), np.uint8)),                     # needs zero_point
        lambda: E.bitpack(np.zeros((2, 3), np.float32), zero_point=3),
        lambda: E.bitpack(np.zeros((1, (1 << 24) + 1), np.uint8), zero_point=0),  # huge channels
        lambda: E.maxpool_bits(xp, 70, 2, padding="same_zero"),
        lambda: E.maxpool_bits(xp, 70, 5, padding="valid"),
        lambda: E.bconv2d(xp, 70, wp, "3"),
        lambda: E.bconv2d(xp, 70, wp, 3, strides=(1, 2, 3)),
        lambda: E.bconv2d(xp, 70, wp, 3, strides=1.5),
        lambda: E.bgemm_probe("sse9", 10),
        lambda: E.bgemm_probe("generic", 0),
    ]
    for i, f in enumerate(bad):
        with pytest.raises(ValueError):
            f()
            pytest.fail(f"bad input #{i} accepted")


def test_numpy_integer_arguments():
    xp, wp = small_conv()
    want = E.bconv2d(xp, 70, wp, 3, strides=2)
    got = E.bconv2d(xp, np.int64(70), wp, np.int64(3), strides=(np.int32(2), 2))
    np.testing.assert_array_equal(got, want)


def test_probes_report_work():
    for name in FAST_ISAS:
        if name == "neon":
            continue
        macs, dt = E.bgemm_probe(name, 1000)
        assert macs > 0 and dt > 0
    adds, dt = E.cycle_probe(10000)
    assert adds == 80000 and dt > 0
