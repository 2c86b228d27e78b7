"""Binary convolutions on narrow inputs (in_c <= 64), the shapes of the
fast narrow-layer paths (dense tap packing, fixed-run gathers, the fused
per-ISA output stage): every ISA and thread count against the numpy model,
and every ISA against the ref ISA bit for bit (float outputs compared as
raw bits, so -0.0 vs +0.0 would show)."""

import numpy as np
import pytest

from edgebnn import _engine as E
from isa_switch import isa
from test_binary_kernels import ISAS, rand_pm, ref_conv, ref_stage, sign

CHANNELS = [1, 8, 16, 21, 32, 33, 63, 64]
CASES = [(c, k, s, p) for c in CHANNELS for k in (3, 5) for s in (1, 2)
         for p in ("valid", "same_one", "same_zero")]


def case_id(case):
    c, k, s, p = case
    return f"c{c}-k{k}-s{s}-{p}"


def inputs(case, o=19):
    c, k, s, p = case
    rng = np.random.default_rng(c * 1000 + k * 100 + s * 10 + len(p))
    n, h, w = 2, 9, 11
    x = rand_pm(rng, (n, h, w, c))
    wf = rand_pm(rng, (o, k, k, c))
    return rng, x, wf, E.bitpack(x), E.bitpack(wf)


def stage_args(rng, shape, o):
    """every output variant: int32, float with all / some / no terms, bits
    by integer threshold with flip, bits by float sign"""
    oh_ow = shape[:3]
    mul = rng.standard_normal(o).astype(np.float32)
    bias = rng.standard_normal(o).astype(np.float32)
    ps = rng.random(oh_ow).astype(np.float32)
    ps[0, 0, :] = -ps[0, 0, :]         # negative scales: dot 0 gives -0.0
    res = rng.standard_normal(oh_ow + (o,)).astype(np.float32)
    thr = rng.integers(-12, 12, o).astype(np.int32)
    flip = (rng.random(o) < 0.4).astype(np.uint8)
    half = (rng.integers(-4, 4, o) + 0.5).astype(np.float32)
    return {
        "int32": dict(out="int32"),
        "float all": dict(out="float", mul=mul, bias=bias, pixel_scale=ps,
                          residual=res, clamp=(-2.0, 1.5)),
        "float res": dict(out="float", residual=res),
        "float scale only": dict(out="float", pixel_scale=ps),
        "float mul bias": dict(out="float", mul=mul, bias=bias),
        "bits thr flip": dict(out="bits", thresholds=thr, flip=flip),
        "bits thr": dict(out="bits", thresholds=thr),
        "bits float": dict(out="bits", mul=np.sign(mul).astype(np.float32), bias=half),
        "bits float res": dict(out="bits", bias=half, residual=res * 0 + 0.25),
    }


def check_every_isa(xp, c, wp, k, s, p, args, want, kind, threads=(1, 2, 3)):
    """E.bconv2d with output `args` on every ISA and thread count: equal to
    the model `want` (float within rounding, the rest exactly) and, byte for
    byte, to the ref ISA's output. -> the number of runs checked."""
    ref_bytes, runs = None, 0
    for name in ISAS:
        with isa(name):
            for nt in threads:
                got = E.bconv2d(xp, c, wp, k, strides=s, padding=p, num_threads=nt, **args)
                msg = f"{kind} isa={name} threads={nt}"
                if args["out"] == "float":
                    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5, err_msg=msg)
                else:
                    np.testing.assert_array_equal(got, want, err_msg=msg)
                ref_bytes = got.tobytes() if ref_bytes is None else ref_bytes   # ISAS[0] == "ref"
                assert got.tobytes() == ref_bytes, msg
                runs += 1
    return runs


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_narrow_bconv_every_output_isa_and_thread(case):
    c, k, s, p = case
    o = 19
    rng, x, wf, xp, wp = inputs(case, o)
    dot = ref_conv(sign(x), sign(wf), (s, s), p)
    checked = 0
    for kind, args in stage_args(rng, dot.shape, o).items():
        stage = {a: v for a, v in args.items() if a != "out"}
        want = ref_stage(dot, args["out"], **stage)
        checked += check_every_isa(xp, c, wp, k, s, p, args, want, kind)
    assert ISAS[0] == "ref" and checked == 9 * 3 * len(ISAS)


@pytest.mark.parametrize("c", CHANNELS)
def test_narrow_bconv_batch_one_many_filters(c):
    """few pixels split filters across threads (words of 64), 5x5, stride
    2 with odd sizes"""
    case = (c, 5, 2, "same_zero")
    rng = np.random.default_rng(c)
    x = rand_pm(rng, (1, 5, 7, c))
    wf = rand_pm(rng, (130, 5, 5, c))
    dot = ref_conv(sign(x), sign(wf), (2, 2), "same_zero")
    thr = rng.integers(-30, 30, 130).astype(np.int32)
    flip = (rng.random(130) < 0.5).astype(np.uint8)
    want = ref_stage(dot, "bits", thresholds=thr, flip=flip)
    for name in ISAS:
        with isa(name):
            for nt in (1, 2, 3):
                got = E.bconv2d(E.bitpack(x), c, E.bitpack(wf), 5, strides=2,
                                padding=case[3], out="bits", thresholds=thr,
                                flip=flip, num_threads=nt)
                np.testing.assert_array_equal(got, want, err_msg=f"{name} {nt}")


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_narrow_bconv_wide_rows(case):
    """output rows of 32+ pixels take the column-band (implicit GEMM) path;
    2 images of 4 rows, so thread shares start and end mid-row and mid-image"""
    c, k, s, p = case
    o = 21
    rng = np.random.default_rng(c + 7 * k + s)
    x = rand_pm(rng, (2, 4 + k, 67, c))
    wf = rand_pm(rng, (o, k, k, c))
    xp, wp = E.bitpack(x), E.bitpack(wf)
    dot = ref_conv(sign(x), sign(wf), (s, s), p)
    assert dot.shape[2] >= 32
    variants = stage_args(rng, dot.shape, o)
    for kind in ("int32", "float all", "bits thr flip"):
        args = variants[kind]
        stage = {a: v for a, v in args.items() if a != "out"}
        want = ref_stage(dot, args["out"], **stage)
        check_every_isa(xp, c, wp, k, s, p, args, want, kind)


@pytest.mark.parametrize("c", [3, 16, 70])
@pytest.mark.parametrize("k", [7, 9])
def test_zero_padding_more_border_patterns_than_cached(c, k):
    """7x7 / 9x9 same_zero have 48 / 80 border patterns, more than the
    base-vector cache holds: the per-pixel lookup path"""
    rng = np.random.default_rng(c * k)
    x = rand_pm(rng, (2, 12, 13, c))
    wf = rand_pm(rng, (20, k, k, c))
    dot = ref_conv(sign(x), sign(wf), (1, 1), "same_zero")
    mul = rng.standard_normal(20).astype(np.float32)
    want = ref_stage(dot, "float", mul=mul)
    for name in ISAS:
        with isa(name):
            for nt in (1, 3):
                args = dict(padding="same_zero", num_threads=nt)
                got = E.bconv2d(E.bitpack(x), c, E.bitpack(wf), k, **args)
                np.testing.assert_array_equal(got, dot, err_msg=f"{name} {nt}")
                got = E.bconv2d(E.bitpack(x), c, E.bitpack(wf), k, out="float", mul=mul, **args)
                np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5, err_msg=f"{name} {nt}")


@pytest.mark.parametrize("o", [16, 32, 64])
@pytest.mark.parametrize("c", [16, 32, 64])
@pytest.mark.parametrize("p", ["same_one", "same_zero"])
def test_narrow_widths_float_stage_bits_equal_ref(o, c, p):
    """16 / 32 / 64 filters take the fixed-width float and threshold
    stages: every term combination, clamp, -0.0 from negative pixel scales,
    NaN / inf in the bias, thresholds with and without flips; raw bytes must
    equal the ref ISA's"""
    rng = np.random.default_rng(o + c)
    x = rand_pm(rng, (2, 6, 35, c))
    wf = rand_pm(rng, (o, 3, 3, c))
    xp, wp = E.bitpack(x), E.bitpack(wf)
    dot = ref_conv(sign(x), sign(wf), (1, 1), p)
    variants = stage_args(rng, dot.shape, o)
    odd_bias = rng.standard_normal(o).astype(np.float32)
    odd_bias[1], odd_bias[2], odd_bias[3] = np.nan, np.inf, -np.inf
    variants["float nan bias clamp"] = dict(out="float", bias=odd_bias, clamp=(-1.0, 1.0))
    variants["float clamp only"] = dict(out="float", clamp=(-3.0, 0.0))
    for kind, args in variants.items():
        if args["out"] == "int32":
            continue
        stage = {a: v for a, v in args.items() if a != "out"}
        with np.errstate(invalid="ignore"):
            want = ref_stage(dot, args["out"], **stage)
        check_every_isa(xp, c, wp, 3, 1, p, args, want, kind, threads=(1, 2))
