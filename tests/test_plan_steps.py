"""The plan's own small steps (pyx/plan.c: add, clamp, sign, batchnorm
affine, LRN, softmax, mean |x|, uint8 preprocessing, bitpack) against plain
numpy, on awkward channel counts, 1..4 threads. Skipped without the engine."""
import numpy as np
import pytest

from edgebnn.bits import pack_signs
from edgebnn.engine_backend import load_engine

ENGINE = load_engine()
pytestmark = pytest.mark.skipif(ENGINE is None, reason="edgebnn._engine is not built "
                                "(python setup.py build_ext --inplace)")

# + 4k channels: the vector batch norm (groups of 16 / 32 and a partial one),
# 16 / 32 channels: NEON bit-packing across rows (with rows left over)
SHAPES = [(1, 1), (3, 3), (2, 63), (5, 64), (1, 65), (7, 200), (2, 3, 5, 65),
          (2, 4), (5, 16), (9, 32), (3, 36), (2, 3, 3, 48)]


def _lrn(x, r, bias, alpha, beta):
    c = x.shape[-1]
    sq = np.pad(x.astype(np.float64) ** 2, [(0, 0)] * (x.ndim - 1) + [(r, r)])
    ssum = sum(sq[..., i:i + c] for i in range(2 * r + 1))
    return x / (bias + alpha * ssum) ** beta


def _run(kind, x, threads, **kw):
    plan = ENGINE.Plan(4)
    out = plan.rows(kind, kind, x, **kw)
    plan.run(threads)
    return out


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("threads", [1, 2, 3, 4])
def test_float_steps_match_numpy(shape, threads):
    rng = np.random.default_rng(sum(shape) * 10 + threads)
    x = (rng.standard_normal(shape) * 3).astype(np.float32)
    x.flat[0] = 0.0                                   # sign(0) is +1
    y = rng.standard_normal(shape).astype(np.float32)
    c = shape[-1]
    np.testing.assert_array_equal(_run("add", x, threads, x2=y), x + y)
    np.testing.assert_array_equal(_run("clamp", x, threads, lo=-1.0, hi=1.0), np.clip(x, -1, 1))
    np.testing.assert_array_equal(_run("clamp", x, threads, lo=0.0, hi=np.inf),
                                  np.maximum(x, 0))
    np.testing.assert_array_equal(_run("sign", x, threads), np.where(x < 0, -1.0, 1.0))
    mean, scale, beta = (rng.standard_normal(c).astype(np.float32) for _ in range(3))
    np.testing.assert_array_equal(_run("affine", x, threads, a=mean, b=scale, d=beta),
                                  (x - mean) * scale + beta)
    for r in (0, 1, 2, 5):
        np.testing.assert_allclose(_run("lrn", x, threads, lo=1.5, hi=0.3, beta=0.75, radius=r),
                                   _lrn(x, r, 1.5, 0.3, 0.75), rtol=2e-6, atol=1e-6)
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    np.testing.assert_allclose(_run("softmax", x, threads), e / e.sum(axis=-1, keepdims=True),
                               rtol=1e-6, atol=1e-7)
    rows = x.reshape(-1, c) if len(shape) == 2 else x.reshape(shape[0], -1)
    np.testing.assert_allclose(_run("mean_abs", np.ascontiguousarray(rows), threads),
                               np.abs(rows.astype(np.float64)).mean(axis=1), rtol=1e-6)
    np.testing.assert_array_equal(_run("bitpack", x, threads), pack_signs(x))


@pytest.mark.parametrize("invert", [False, True])
@pytest.mark.parametrize("c", [1, 3])
def test_uint8_input_matches_normalize(invert, c):
    rng = np.random.default_rng(c + 2 * invert)
    px = rng.integers(0, 256, (2, 5, 7, c), dtype=np.uint8)
    mean = rng.uniform(0, 1, c).astype(np.float32)
    std = rng.uniform(0.1, 1, c).astype(np.float32)
    scale = np.float32(1 / 255)
    want = px.astype(np.float32)
    if invert:
        want = 255.0 - want
    want = (want * scale - mean) / std
    got = _run("u8_input", px, 3, a=mean, b=std, lo=scale, radius=int(invert))
    np.testing.assert_array_equal(got, want.astype(np.float32))


def _mean_abs_sequential(rows):
    """the step's definition: |x| summed in float64 one value after the
    other (Python floats are IEEE doubles), / c, rounded to float32"""
    out = []
    for row in rows:
        s = 0.0
        for v in row.tolist():
            s += abs(v)
        out.append(s / len(row))
    return np.array(out, np.float32)


def _mean_abs_cases(rng):
    """narrow ranges (exact in any order: the AVX-512 vector sum), wide
    ranges (sums that round: one by one), zeros, subnormals, inf, NaN"""
    c = 3136
    yield "normal", (rng.standard_normal((3, c)) * 3).astype(np.float32)
    narrow = rng.uniform(0.5, 2.0, (2, 777)).astype(np.float32)
    narrow[:, ::5] *= -1
    yield "narrow", narrow
    wide = (rng.standard_normal((2, c)) * np.exp2(rng.integers(-60, 60, (2, c)))).astype(np.float32)
    yield "wide", wide
    yield "zeros", np.zeros((2, 65), np.float32) * np.float32(-1.0)
    sub = (rng.standard_normal((2, 200)) * np.float32(1e-39)).astype(np.float32)
    yield "subnormal", sub
    mixed = rng.standard_normal((2, 300)).astype(np.float32)
    mixed[0, 7], mixed[1, 299] = np.inf, np.nan
    yield "inf-nan", mixed
    yield "one", np.array([[-2.5]], np.float32)
    # either side of the exact-sum test (total 1000 against 2^(emin+30)):
    # smallest 2^-21 (limit 512: one by one), 2^-20 (limit 1024: vector)
    edge = np.full((2, 1000), 1.0, np.float32)
    edge[0, 3], edge[1, 3] = np.float32(2.0 ** -21), np.float32(2.0 ** -20)
    yield "edge", edge


@pytest.mark.parametrize("isa_name", ENGINE.isa_available() if ENGINE else [])
def test_mean_abs_bit_exact_sequential_double(isa_name):
    from isa_switch import isa
    rng = np.random.default_rng(17)
    with isa(isa_name):
        for name, rows in _mean_abs_cases(rng):
            want = _mean_abs_sequential(rows)
            for threads in (1, 2):
                got = _run("mean_abs", np.ascontiguousarray(rows), threads)
                assert np.array_equal(np.isnan(got), np.isnan(want)), name
                ok = ~np.isnan(want)
                assert got[ok].tobytes() == want[ok].tobytes(), (name, threads)
