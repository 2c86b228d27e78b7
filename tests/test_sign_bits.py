"""sign_out: a float output stage that also packs its signs (y < 0, or a
per-channel float threshold with flips) for the next binary layer, in every
kernel with a float output; the exact batchnorm -> threshold rule
(edgebnn.plan.bn_sign_rule); and plans that use both instead of bitpack /
batchnorm steps. Every ISA is compared with the ref ISA bit for bit, and the
bits with a numpy rule applied to the float output itself."""
import numpy as np
import pytest

import model_zoo
from edgebnn import _engine as E
from edgebnn.model import Model
import edgebnn.plan
from edgebnn.plan import NUMPY_KEEPS_DENORMALS, bn_sign_rule, build

# numpy's float32 loops flush denormals on armv7 (32-bit Raspberry Pi OS):
# there no thresholds are derived, and numpy is no IEEE reference for them
ieee_numpy = pytest.mark.skipif(not NUMPY_KEEPS_DENORMALS,
                                reason="numpy flushes float32 denormals here")
from isa_switch import isa
from test_binary_kernels import ISAS, rand_pm, ref_pack

FILTERS = [16, 32, 64, 15, 48, 80, 130]


def np_signs(y, thr=None, flip=None):
    """the rule of edgebnn.h on float32 outputs y [..., O]"""
    if thr is None:
        neg = y < 0
    else:
        with np.errstate(invalid="ignore"):
            neg = np.where(flip.astype(bool) if flip is not None else False, y > thr, y < thr)
    return ref_pack(np.where(neg, -1.0, 1.0))


def sign_modes(rng, o, y):
    """thresholds that hit output values exactly, +-0, +-inf and NaN"""
    flat = y.reshape(-1, o)
    thr = flat[rng.integers(0, flat.shape[0], o), np.arange(o)].astype(np.float32)
    thr[0] = -0.0
    thr[1 % o], thr[2 % o], thr[3 % o] = np.inf, -np.inf, np.nan
    mixed = (rng.random(o) < 0.5).astype(np.uint8)
    mixed[1 % o] = 1
    return {"zero": {}, "thr": dict(sign_thresholds=thr),
            "thr mixed flips": dict(sign_thresholds=thr, sign_flip=mixed),
            "thr all flip": dict(sign_thresholds=thr, sign_flip=np.ones(o, np.uint8))}


def stage_variants(rng, shape, o):
    mul = rng.standard_normal(o).astype(np.float32)
    bias = rng.standard_normal(o).astype(np.float32)
    bias[1 % o] = -0.0
    nan_bias = bias.copy()
    nan_bias[2 % o], nan_bias[-1] = np.nan, -np.inf
    ps = rng.random(shape).astype(np.float32)
    res = rng.standard_normal(shape + (o,)).astype(np.float32)
    res[..., 4 % o] = -0.0
    return {"plain": {}, "mul bias res": dict(mul=mul, bias=bias, residual=res),
            "all": dict(mul=mul, bias=bias, pixel_scale=ps, residual=res),
            "nan bias clamp": dict(bias=nan_bias, residual=res, clamp=(-0.5, 1.0))}


def check_all_isas(call, o, rng, threads=(1, 3)):
    """call(**stage kwargs) -> float output or a tuple: for every stage
    variant and sign mode, without and with a batch norm (norm), the float
    output equals the call without them, the batch norm the numpy formula
    on it, the bits the numpy rule on what they pack, and every ISA the ref
    ISA wherever its floats equal ref's"""
    with isa("ref"):
        shape = call().shape[:-1]
    norm = tuple(rng.standard_normal(o).astype(np.float32) for _ in range(3))
    norm[1][0] = -norm[1][0]
    norm[1][1 % o] = 0.0
    for vname, stage in stage_variants(rng, shape, o).items():
        with isa("ref"), np.errstate(invalid="ignore", over="ignore"):
            modes = sign_modes(rng, o, call(**stage))
        for (mname, sign), nrm in [(m, n) for m in modes.items() for n in (None, norm)]:
            ref = None
            for name in ["ref"] + [n for n in ISAS if n != "ref"]:
                with isa(name), np.errstate(invalid="ignore", over="ignore"):
                    plain = call(**stage)
                    for nt in threads:
                        got = call(sign_bits=True, num_threads=nt, norm=nrm, **stage, **sign)
                        y, bits = got[0], got[-1]
                        msg = f"{vname} / {mname} / norm {nrm is not None} isa={name} threads={nt}"
                        assert y.tobytes() == plain.tobytes(), msg
                        signed = y
                        if nrm is not None:
                            signed = (y - nrm[0]) * nrm[1] + nrm[2]
                            assert got[1].tobytes() == signed.tobytes(), msg
                        np.testing.assert_array_equal(
                            bits, np_signs(signed, sign.get("sign_thresholds"),
                                           sign.get("sign_flip")), err_msg=msg)
                        ref = (y.tobytes(), bits.tobytes()) if ref is None else ref
                        # (float convs may sum in another order on another ISA)
                        if y.tobytes() == ref[0]:
                            assert bits.tobytes() == ref[1], msg


@pytest.mark.parametrize("o", FILTERS)
@pytest.mark.parametrize("padding", ["same_one", "same_zero"])
def test_bconv2d_sign_bits(o, padding):
    rng = np.random.default_rng(o * 3 + len(padding))
    c = 40
    x, w = rand_pm(rng, (3, 7, 9, c)), rand_pm(rng, (o, 3, 3, c))
    xp, wp = E.bitpack(x), E.bitpack(w)

    def call(**kw):
        return E.bconv2d(xp, c, wp, 3, padding=padding, out="float", **kw)
    check_all_isas(call, o, rng)


@pytest.mark.parametrize("o", [16, 64, 33])
def test_bconv2d_sign_bits_same_across_isas(o):
    """binary dots are exact: floats and bits equal on every ISA"""
    rng = np.random.default_rng(o)
    c = 70
    x, w = rand_pm(rng, (2, 6, 6, c)), rand_pm(rng, (o, 3, 3, c))
    xp, wp = E.bitpack(x), E.bitpack(w)
    res = rng.standard_normal((2, 3, 3, o)).astype(np.float32)
    mul, bias = rng.standard_normal(o).astype(np.float32), rng.standard_normal(o).astype(np.float32)
    thr = rng.standard_normal(o).astype(np.float32)
    flip = (rng.random(o) < 0.5).astype(np.uint8)
    for sign in ({}, dict(sign_thresholds=thr, sign_flip=flip)):
        got = {}
        for name in ISAS:
            with isa(name):
                y, bits = E.bconv2d(xp, c, wp, 3, 2, "same_zero", out="float", mul=mul, bias=bias,
                                    residual=res, sign_bits=True, **sign)
                got[name] = (y.tobytes(), bits.tobytes())
        assert len(set(got.values())) == 1, sorted(got)


@pytest.mark.parametrize("o", [16, 64, 15, 130])
def test_bdense_sign_bits(o):
    rng = np.random.default_rng(o + 11)
    c = 100
    x, w = rand_pm(rng, (5, c)), rand_pm(rng, (o, c))
    xp, wp = E.bitpack(x), E.bitpack(w)

    def call(**kw):
        return E.bdense(xp, c, wp, out="float", **kw)
    check_all_isas(call, o, rng)


@pytest.mark.parametrize("o", [16, 32, 48, 15, 80])
def test_fconv2d_and_wconv2d_sign_bits(o):
    rng = np.random.default_rng(o + 5)
    x = rng.standard_normal((2, 6, 7, 3)).astype(np.float32)
    x[rng.random(x.shape) < 0.2] = 0.0
    wf = rng.standard_normal((o, 3, 3, 3)).astype(np.float32)
    wp = E.bitpack(wf)

    def fcall(**kw):
        return E.fconv2d(x, wf, (3, 3), 1, "same_zero", **kw)

    def wcall(**kw):
        return E.wconv2d(x, 3, wp, (3, 3), 1, "same_zero", **kw)
    check_all_isas(fcall, o, rng)
    check_all_isas(wcall, o, rng)


@pytest.mark.parametrize("o", [16, 70, 300])
@pytest.mark.parametrize("batch", [1, 3])
def test_dense_sign_bits_threads(o, batch):
    """batch 1 on several threads: the dense kernels split rows, never the
    filters of one sign word"""
    rng = np.random.default_rng(o + batch)
    x = rng.standard_normal((batch, 50)).astype(np.float32)
    wf = rng.standard_normal((o, 50)).astype(np.float32)
    wp = E.bitpack(wf)
    check_all_isas(lambda **kw: E.fdense(x, wf, **kw), o, rng, threads=(1, 2, 4))
    check_all_isas(lambda **kw: E.wdense(x, wp, **kw), o, rng, threads=(1, 2, 4))


def test_sign_bits_argument_checks():
    rng = np.random.default_rng(0)
    x = E.bitpack(rand_pm(rng, (1, 4, 4, 8)))
    w = E.bitpack(rand_pm(rng, (16, 3, 3, 8)))
    thr = np.zeros(16, np.float32)
    with pytest.raises(ValueError, match="sign_bits needs out='float'"):
        E.bconv2d(x, 8, w, 3, out="bits", sign_bits=True)
    with pytest.raises(ValueError, match="sign_bits needs out='float'"):
        E.bconv2d(x, 8, w, 3, out="int32", sign_bits=True)
    with pytest.raises(ValueError, match="need sign_bits=True"):
        E.bconv2d(x, 8, w, 3, out="float", sign_thresholds=thr)
    with pytest.raises(ValueError, match="sign_flip needs sign_thresholds"):
        E.bconv2d(x, 8, w, 3, out="float", sign_bits=True, sign_flip=np.zeros(16, np.uint8))
    with pytest.raises(ValueError, match="sign_thresholds must have shape"):
        E.bconv2d(x, 8, w, 3, out="float", sign_bits=True, sign_thresholds=thr[:15])
    with pytest.raises(ValueError, match="sign_thresholds must have dtype float32"):
        E.bconv2d(x, 8, w, 3, out="float", sign_bits=True, sign_thresholds=thr.astype(np.float64))
    with pytest.raises(ValueError, match="sign_flip must have dtype uint8"):
        E.bconv2d(x, 8, w, 3, out="float", sign_bits=True, sign_thresholds=thr,
                  sign_flip=np.zeros(16, bool))
    xf = rng.standard_normal((1, 4, 4, 8)).astype(np.float32)
    with pytest.raises(ValueError, match="norm needs out='float'"):
        E.bconv2d(x, 8, w, 3, out="bits", norm=(thr, thr, thr))
    with pytest.raises(ValueError, match="norm must be a tuple"):
        E.bconv2d(x, 8, w, 3, out="float", norm=[thr, thr, thr])
    with pytest.raises(ValueError, match=r"norm\[2\] must have shape"):
        E.bconv2d(x, 8, w, 3, out="float", norm=(thr, thr, thr[:3]))
    y, z = E.bconv2d(x, 8, w, 3, out="float", norm=(thr, thr + 1, thr))
    assert y.shape == z.shape and np.array_equal(z, y)     # (y - 0) * 1 + 0
    with pytest.raises(ValueError, match="sign_bits needs out='float'"):
        E.fconv2d(xf, rng.standard_normal((16, 3, 3, 8)).astype(np.float32), out="bits",
                  sign_bits=True)


# ------------------------------------------------ batchnorm -> threshold ---
def bn_probe_values(rng, t):
    """values around every threshold plus a broad sample of floats"""
    near = [t]
    lo, hi = t.copy(), t.copy()
    for _ in range(3):
        with np.errstate(over="ignore"):
            lo, hi = np.nextafter(lo, np.float32(-np.inf)), np.nextafter(hi, np.float32(np.inf))
        near += [lo, hi]
    broad = rng.standard_normal(4000).astype(np.float32) * np.float32(10.0) ** rng.integers(
        -30, 30, 4000).astype(np.float32)
    special = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1e-45, -1e-45, 3.4e38, -3.4e38],
                       np.float32)
    return np.concatenate([np.stack(near).T.reshape(len(t), -1),
                           np.broadcast_to(np.concatenate([broad, special]),
                                           (len(t), broad.size + special.size))], axis=1)


@ieee_numpy
@pytest.mark.parametrize("seed", range(6))
def test_bn_sign_rule_exact(seed):
    rng = np.random.default_rng(seed)
    c = 64
    a = rng.standard_normal(c).astype(np.float32) * np.float32(10.0) ** rng.integers(-3, 4, c)
    b = rng.standard_normal(c).astype(np.float32) * np.float32(10.0) ** rng.integers(-20, 20, c)
    d = rng.standard_normal(c).astype(np.float32) * np.float32(10.0) ** rng.integers(-3, 4, c)
    b[:4] = [0.0, -0.0, 1e-45, -1e-45]
    d[:2] = [0.5, -0.0]
    a[5], d[5] = 3e38, -3e38                         # x - a overflows
    a, b, d = (v.astype(np.float32) for v in (a, b, d))
    rule = bn_sign_rule(a, b, d)
    assert rule is not None
    t, flip = rule
    x = bn_probe_values(rng, t)
    with np.errstate(over="ignore", invalid="ignore"):
        want = (x - a[:, None]) * b[:, None] + d[:, None] < 0
        got = np.where(flip[:, None].astype(bool), x > t[:, None], x < t[:, None])
    np.testing.assert_array_equal(got, want)


def test_no_thresholds_where_numpy_flushes_denormals(monkeypatch):
    one = np.ones(3, np.float32)
    assert (bn_sign_rule(one, one, one) is None) == (not NUMPY_KEEPS_DENORMALS)
    monkeypatch.setattr(edgebnn.plan, "NUMPY_KEEPS_DENORMALS", False)
    assert bn_sign_rule(one, one, one) is None


@ieee_numpy
def test_bn_sign_rule_refuses_what_no_threshold_expresses():
    one = np.ones(3, np.float32)
    # gamma 0 and beta < 0: negative for finite x - a only
    assert bn_sign_rule(one, np.array([1, 0, 1], np.float32), -one) is None
    assert bn_sign_rule(one, np.array([1, np.inf, 1], np.float32), one) is None
    assert bn_sign_rule(np.array([0, np.nan, 0], np.float32), one, one) is None


# ------------------------------------------------------------- plans ---
def bireal(rng, pre_bn, widths=(16, 32), size=8, padding="same_one", gamma_zero=False):
    """x <- x + BN(bconv(sign(pre_bn ? BN(x) : x))), stride-2 stages with an
    avgpool + float 1x1 shortcut (the peers / shipped ResNet-20 pattern)"""
    net = model_zoo.Net(rng, [size, size, 3])
    net.conv(widths[0], 3, "float")
    x = net.bn()
    c = widths[0]
    for stage, width in enumerate(widths):
        for block in range(2):
            down = stage > 0 and block == 0
            inp = x
            if pre_bn:
                g = rng.uniform(0.5, 2.0, c) * rng.choice([-1.0, 1.0], c)
                if gamma_zero:
                    g[::5] = 0.0
                params = {"gamma": g, "beta": rng.normal(0, 0.5, c), "mean": rng.normal(0, 1, c),
                          "var": rng.uniform(0.2, 2.0, c)}
                net._record(net.b.add("batchnorm", {"eps": 1e-3},
                                      {k: v.astype(np.float32) for k, v in params.items()},
                                      inputs=[x]))
            net.conv(width, 3, "binary", stride=2 if down else 1, padding=padding)
            y = net.bn(spread=3.0)
            s = inp
            if down:
                net.op("avgpool", inputs=[inp], pool=[2, 2], strides=[2, 2], padding="same")
                net.conv(width, 1, "float")
                s = net.bn()
            x = net.op("add", inputs=[y, s])
            c = width
    net.op("global_avgpool")
    net.dense(4, "float")
    return net.build()


def assert_runs_like_layers(model, x, thread_counts):
    """the compiled plan's output is bit for bit the unfused layer-by-layer
    plan's, on every ISA and thread count"""
    for name in ISAS:
        with isa(name):
            for nt in thread_counts:
                model.threads = nt
                got = model.run(x)
                want = np.asarray(model.run_layers(x)[model.plan.output]).reshape(got.shape)
                assert got.tobytes() == want.tobytes(), f"isa={name} threads={nt}"


def test_plan_norm_mode_with_k_scaling():
    """batchnorm -> binary convs with K scaling (the shipped ResNet): the
    stage writes the batchnorm for the K map and packs its signs"""
    rng = np.random.default_rng(7)
    net = model_zoo.Net(rng, [8, 8, 3])
    net.conv(16, 3, "float")
    x = net.bn()
    for width in (16, 32):
        bn = net.bn(inputs=[x])
        net.conv(width, 3, "binary_k", stride=1 if width == 16 else 2, padding="same_zero")
        y = net.bn(spread=3.0)
        if width == 16:
            x = net.op("add", inputs=[y, x])
    net.op("global_avgpool")
    net.dense(4, "float")
    model = Model(net.build(), threads=2)
    assert {m for _, _, m in model._params.signs.values()} == {"norm"}
    steps = build(model.plan, model._params, 2, 1).plan.names
    assert not [s for s in steps if "(bitpack)" in s or "(affine)" in s], steps
    assert [s for s in steps if "(kmap)" in s], steps
    xin = rng.standard_normal((3, 8, 8, 3)).astype(np.float32)
    assert_runs_like_layers(model, xin, (1, 2))


@pytest.mark.parametrize("pre_bn,widths,padding,gamma_zero",
                         [(False, (16, 32), "same_one", False), (True, (16, 64), "same_one", False),
                          (True, (24, 80), "same_zero", False), (True, (16, 32), "same_one", True),
                          (False, (40, 130), "same_zero", False)], ids=str)
def test_plan_signs_from_output_stage(pre_bn, widths, padding, gamma_zero):
    """the plan packs signs in the producers' stages (no bitpack steps; a
    batchnorm before the sign becomes thresholds where exact) and runs bit
    for bit like the unfused layer-by-layer plan, on every ISA"""
    rng = np.random.default_rng(len(widths) + widths[1] + int(pre_bn))
    graph = bireal(rng, pre_bn, widths, padding=padding, gamma_zero=gamma_zero)
    model = Model(graph, threads=3)
    params = model._params
    steps = build(model.plan, params, 2, 1).plan.names
    assert params.signs, "no sign fusion found"
    assert not [s for s in steps if "(bitpack)" in s], steps
    assert not [s for s in steps if "(affine)" in s], steps
    modes = {mode for _, _, mode in params.signs.values()}
    # gamma 0 with beta < 0 has no threshold: the stage writes the batchnorm
    thresholds = "thresholds" if NUMPY_KEEPS_DENORMALS else "norm"
    assert modes == ({"norm"} if gamma_zero else {thresholds} if pre_bn else {"sign"}), modes
    x = rng.standard_normal((3,) + tuple(graph.input.shape)).astype(np.float32)
    assert_runs_like_layers(model, x, (1, 3))
