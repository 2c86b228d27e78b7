"""Zero-padded binary convs through the clipped-tap path (bconv2d.c: border
pixels' GEMM rows hold only their in-image taps, against column-restricted
weight copies, pixels grouped by tap box; runs on the generic and NEON ISAs)
and the kernel-row skipping of the dense / band layouts: every output kind
against the numpy reference and the ref ISA bit for bit, on shapes that put
class runs across pixel blocks, asymmetric TF padding, strides 2, 1x1 images,
windows wider than the image, and kernels with more clipped ranges than the
path takes (those fall back to border corrections)."""
import numpy as np
import pytest

from edgebnn import _engine as E
from isa_switch import isa
from test_binary_kernels import conv_inputs, ref_conv, ref_stage, sign

ISAS = E.isa_available()

CASES = [  # n, h, w, c, out_c, kernel, strides
    (1, 14, 14, 256, 49, (3, 3), (1, 1)),     # bconv14's layer, 9 tap boxes
    (2, 33, 33, 3, 5, (3, 3), (1, 1)),        # > 1024 pixels: boxes across blocks
    (1, 8, 8, 64, 67, (3, 3), (2, 2)),        # TF pads bottom/right only
    (3, 7, 5, 65, 16, (3, 3), (2, 2)),
    (1, 6, 9, 200, 33, (2, 2), (1, 1)),       # even kernel: one clipped range per axis
    (1, 5, 4, 130, 9, (1, 3), (1, 1)),
    (1, 1, 1, 63, 7, (3, 3), (1, 1)),         # every tap but the centre clipped
    (1, 2, 3, 128, 12, (5, 5), (1, 1)),       # window wider than the image
    (1, 9, 9, 70, 20, (5, 5), (1, 1)),        # 5 column ranges: fallback path
    (1, 16, 16, 32, 32, (3, 3), (1, 1)),      # dense taps: kernel rows skipped
    (1, 4, 40, 16, 16, (3, 3), (1, 1)),       # band layout: kernel rows skipped
]


def _ids(c):
    return "x".join(map(str, c[:5])) + f"-k{c[5][0]}{c[5][1]}-s{c[6][0]}"


@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_int32_every_isa_and_thread_count(case):
    n, h, w, c, o, k, s = case
    x, wf, xp, wp = conv_inputs(case + ("same_zero",), seed=o)
    want = ref_conv(sign(x), sign(wf), s, "same_zero")
    for name in ISAS:
        with isa(name):
            for nt in (1, 2, 3, 4):
                got = E.bconv2d(xp, c, wp, k, strides=s, padding="same_zero", num_threads=nt)
                np.testing.assert_array_equal(got, want, err_msg=f"{name} threads={nt}")


@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_float_and_bits_stages_equal_ref_isa(case):
    n, h, w, c, o, k, s = case
    x, wf, xp, wp = conv_inputs(case + ("same_zero",), seed=o + 1)
    rng = np.random.default_rng(o)
    oh, ow = -(-h // s[0]), -(-w // s[1])
    stage = dict(mul=rng.standard_normal(o).astype(np.float32),
                 bias=rng.standard_normal(o).astype(np.float32),
                 pixel_scale=rng.random((n, oh, ow)).astype(np.float32),
                 residual=rng.standard_normal((n, oh, ow, o)).astype(np.float32),
                 clamp=(-2.0, 1.5))
    thr = dict(thresholds=rng.integers(-40, 40, o).astype(np.int32),
               flip=(rng.random(o) < 0.5).astype(np.uint8))
    dot = ref_conv(sign(x), sign(wf), s, "same_zero")
    runs = [("float", stage), ("bits", {k_: stage[k_] for k_ in ("mul", "bias", "residual")}),
            ("bits", thr)]
    with isa("ref"):
        wants = [E.bconv2d(xp, c, wp, k, strides=s, padding="same_zero", out=out, **kw)
                 for out, kw in runs]
    np.testing.assert_allclose(wants[0], ref_stage(dot, "float", **stage), rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(wants[2], ref_stage(dot, "bits", **thr))
    for name in ISAS:
        with isa(name):
            for nt in (1, 3):
                for (out, kw), want in zip(runs, wants):
                    got = E.bconv2d(xp, c, wp, k, strides=s, padding="same_zero", out=out,
                                    num_threads=nt, **kw)
                    np.testing.assert_array_equal(got, want,
                                                  err_msg=f"{name} {out} threads={nt}")
