"""The block-of-pixels output stage on the float conv (one call per run of
output pixels; fixed-width paths for 16 / 32 / 64 filters, the general one
otherwise) and the fixed-width integer-threshold bits of binary convs:
raw bytes against a numpy float32 model of the stage's formula applied to
each ISA's own accumulators, and every SIMD ISA against the ref ISA."""
import numpy as np
import pytest

from edgebnn import _engine as E
from isa_switch import isa
from test_binary_kernels import ISAS, rand_pm, ref_conv, ref_pack, ref_stage, sign

FILTERS = [16, 32, 64, 15, 33, 48, 80, 130]


def np_stage(acc, out, mul=None, bias=None, pixel_scale=None, residual=None, clamp=None):
    """the plain formula, one float32 operation at a time"""
    v = acc
    if pixel_scale is not None:
        v = v * pixel_scale[..., None]
    if mul is not None:
        v = v * mul
    if bias is not None:
        v = v + bias
    if residual is not None:
        v = v + residual
    if out == "bits":
        return ref_pack(np.where(v < 0, -1.0, 1.0))
    if clamp is not None:
        lo, hi = np.float32(clamp[0]), np.float32(clamp[1])
        v = np.where(v < lo, lo, v)
        v = np.where(v > hi, hi, v)
    return v.astype(np.float32)


def float_variants(rng, shape, o):
    mul = rng.standard_normal(o).astype(np.float32)
    mul[0] = -0.0
    bias = rng.standard_normal(o).astype(np.float32)
    bias[1] = -0.0
    nan_bias = bias.copy()
    nan_bias[2], nan_bias[3 % o], nan_bias[-1] = np.nan, np.inf, -np.inf
    ps = rng.random(shape).astype(np.float32)
    ps[0, 0, :] = -ps[0, 0, :]                      # -0.0 from zero sums
    ps[0, 1, :2] = 0.0
    res = rng.standard_normal(shape + (o,)).astype(np.float32)
    res[0, 0, :, 4 % o] = -0.0
    return {
        "float none": dict(out="float"),
        "float all": dict(out="float", mul=mul, bias=bias, pixel_scale=ps, residual=res,
                          clamp=(-0.75, 1.25)),
        "float mul bias relu": dict(out="float", mul=mul, bias=bias, clamp=(0.0, np.inf)),
        "float nan bias clamp": dict(out="float", bias=nan_bias, clamp=(-1.0, 1.0)),
        "float scale res": dict(out="float", pixel_scale=ps, residual=res),
        "float upper only": dict(out="float", bias=nan_bias, clamp=(-np.inf, 0.5)),
        "float lower only nan": dict(out="float", bias=nan_bias, clamp=(-0.0, np.inf)),
        "bits": dict(out="bits", mul=mul, bias=bias),
        "bits nan bias": dict(out="bits", bias=nan_bias),
        "bits all": dict(out="bits", mul=mul, bias=bias, pixel_scale=ps, residual=res),
    }


@pytest.mark.parametrize("o", FILTERS)
@pytest.mark.parametrize("geom", [(28, 28, 1, 5, "same_zero"), (9, 50, 3, 3, "same_zero"),
                                  (7, 7, 2, 3, "valid")], ids=str)
def test_fconv2d_output_stage_bit_exact(o, geom):
    h, w, c, k, padding = geom
    rng = np.random.default_rng(o * 7 + h)
    x = rng.standard_normal((2, h, w, c)).astype(np.float32)
    x[rng.random(x.shape) < 0.2] = 0.0              # all-zero windows: signed zero sums
    wf = rng.standard_normal((o, k, k, c)).astype(np.float32)
    wf[o // 2] = -0.0                                # a filter whose sums are all -0 / +0
    with isa("ref"):
        shape = E.fconv2d(x, wf, (k, k), 1, padding).shape[:3]
    variants = float_variants(rng, shape, o)
    for kind, args in variants.items():
        ref_bytes = None
        for name in ["ref"] + [n for n in ISAS if n != "ref"]:
            with isa(name):
                acc = E.fconv2d(x, wf, (k, k), 1, padding)
                stage = {a: v for a, v in args.items() if a != "out"}
                with np.errstate(invalid="ignore", over="ignore"):
                    want = np_stage(acc, args["out"], **stage)
                for nt in (1, 2, 3):
                    got = E.fconv2d(x, wf, (k, k), 1, padding, num_threads=nt, **args)
                    msg = f"{kind} isa={name} threads={nt}"
                    assert got.dtype == want.dtype and got.tobytes() == want.tobytes(), msg
                    if name == "ref":
                        ref_bytes = got.tobytes()
                    elif name != "generic":      # the generic conv sums without FMA
                        assert got.tobytes() == ref_bytes, msg


@pytest.mark.parametrize("o", [16, 32, 64, 17, 48, 96, 128])
@pytest.mark.parametrize("flips", ["none", "mixed", "all"])
def test_bconv_threshold_bits_fixed_widths(o, flips):
    """thresholds at the dot's extremes and beyond (INT32 min/max), flips
    none / mixed / all: every ISA equals the numpy rule and the ref ISA"""
    rng = np.random.default_rng(o + len(flips))
    c = 32
    x = rand_pm(rng, (2, 5, 37, c))
    wf = rand_pm(rng, (o, 3, 3, c))
    xp, wp = E.bitpack(x), E.bitpack(wf)
    for p in ("same_one", "same_zero", "valid"):
        dot = ref_conv(sign(x), sign(wf), (1, 1), p)
        thr = rng.integers(-20, 20, o).astype(np.int32)
        thr[0], thr[1 % o], thr[2 % o] = np.iinfo(np.int32).min, np.iinfo(np.int32).max, 288
        thr[3 % o] = -288
        flip = {"none": None, "mixed": (rng.random(o) < 0.5).astype(np.uint8),
                "all": np.ones(o, np.uint8)}[flips]
        want = ref_stage(dot, "bits", thresholds=thr, flip=flip)
        ref_bytes = None
        for name in ["ref"] + [n for n in ISAS if n != "ref"]:
            with isa(name):
                for nt in (1, 2):
                    got = E.bconv2d(xp, c, wp, 3, padding=p, out="bits", thresholds=thr,
                                    flip=flip, num_threads=nt)
                    msg = f"{p} isa={name} threads={nt}"
                    np.testing.assert_array_equal(got, want, err_msg=msg)
                    ref_bytes = got.tobytes() if ref_bytes is None else ref_bytes
                    assert got.tobytes() == ref_bytes, msg
