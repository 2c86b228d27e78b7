"""Binarized Keras layers against numpy formulas of their schemes."""
import zlib

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

from export.layers import (LRN, BinaryConv2D, BinaryDense, ChannelScale,  # noqa: E402
                           ChannelZeroPad, SignActivation, ste_sign,
                           tf_same_pads)

pytestmark = pytest.mark.tf


def np_sign(v):
    return np.where(v >= 0, 1.0, -1.0)


def np_conv(x, w, stride, padding, pad_value=0.0):
    """Plain NHWC conv; 'same' pads with pad_value using TF's amounts."""
    n, h, wd, c = x.shape
    kh, kw, _, o = w.shape
    if padding == "valid":
        pads = ((0, 0), (0, 0))
    else:
        pads = (tf_same_pads(h, kh, stride), tf_same_pads(wd, kw, stride))
    xp = np.pad(x.astype(np.float64), ((0, 0), pads[0], pads[1], (0, 0)),
                constant_values=pad_value)
    oh = (xp.shape[1] - kh) // stride + 1
    ow = (xp.shape[2] - kw) // stride + 1
    out = np.zeros((n, oh, ow, o))
    for y in range(oh):
        for xx in range(ow):
            patch = xp[:, y * stride:y * stride + kh, xx * stride:xx * stride + kw]
            out[:, y, xx] = np.tensordot(patch, w, axes=([1, 2, 3], [0, 1, 2]))
    return out


def np_kmap(x, kh, kw, stride, padding):
    """K = box filter 1/(kh*kw) of mean_c |x| with zero padding."""
    mean_abs = np.abs(x).mean(-1, keepdims=True)
    box = np.full((kh, kw, 1, 1), 1.0 / (kh * kw))
    return np_conv(mean_abs, box, stride, "valid" if padding == "valid"
                   else "same", 0.0)


def np_binary_conv(x, w, bias, scheme, stride, padding, k_scale):
    if scheme == "float":
        return np_conv(x, w, stride, padding) + bias
    a = np.abs(w).mean() if scheme == "scalar" else np.abs(w).mean((0, 1, 2))
    if scheme == "binary":
        pad_value = 1.0 if padding == "same_one" else 0.0
        acc = np_conv(np_sign(x), np_sign(w), stride, padding, pad_value)
        if k_scale:
            acc = acc * np_kmap(x, w.shape[0], w.shape[1], stride, padding)
    else:
        acc = np_conv(x, np_sign(w), stride, padding)
    return acc * a + bias


CONV_CASES = [
    # (batch, h, w, c, filters, k, stride, padding, scheme)
    (3, 7, 7, 1, 4, 3, 1, "same", "binary"),
    (1, 9, 6, 3, 5, 3, 2, "same", "binary"),
    (2, 8, 8, 63, 3, 3, 2, "same_one", "binary"),
    (1, 5, 7, 64, 2, 3, 1, "valid", "binary"),
    (2, 6, 5, 65, 3, 5, 1, "same_one", "binary"),
    (1, 1, 1, 200, 4, 3, 1, "same", "binary"),
    (1, 1, 1, 7, 4, 1, 1, "same_one", "binary"),
    (3, 7, 9, 3, 6, 3, 2, "same", "xnor"),
    (2, 5, 5, 65, 4, 5, 1, "valid", "xnor"),
    (1, 1, 1, 64, 3, 3, 1, "same", "xnor"),
    (2, 7, 6, 3, 4, 3, 2, "same", "scalar"),
    (1, 6, 6, 63, 3, 3, 1, "valid", "scalar"),
    (2, 7, 7, 3, 4, 3, 2, "same", "float"),
]


# K only exists with binary inputs: binary cases run with and without it.
CONV_PARAMS = [(case, k) for case in CONV_CASES
               for k in ((True, False) if case[-1] == "binary" else (True,))]


@pytest.mark.parametrize("case,k_scale", CONV_PARAMS,
                         ids=lambda v: "-".join(map(str, v))
                         if isinstance(v, tuple) else f"k{int(v)}")
def test_conv_forward_matches_numpy(case, k_scale):
    n, h, w, c, f, k, s, padding, scheme = case
    rng = np.random.default_rng(zlib.crc32(repr(case).encode()))
    x = rng.normal(size=(n, h, w, c)).astype(np.float32)
    x[0, 0, 0, 0] = 0.0  # sign(0) = +1
    layer = BinaryConv2D(f, k, s, padding, scheme=scheme, use_bias=True,
                         k_scale=k_scale)
    layer.build(x.shape)
    kernel = rng.normal(size=(k, k, c, f)).astype(np.float32)
    kernel[0, 0, 0, 0] = 0.0
    bias = rng.normal(size=f).astype(np.float32)
    layer.set_weights([kernel, bias])
    got = np.asarray(layer(x))
    want = np_binary_conv(x, kernel, bias, scheme, s, padding, k_scale)
    assert got.shape == want.shape == layer.compute_output_shape(x.shape)
    np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-4)


@pytest.mark.parametrize("padding", ["same", "same_one", "valid"])
def test_binary_conv_integer_dot_is_exact(padding):
    """With +-1 weights (A = 1) and no K the output is the exact integer dot,
    which pins down the padding semantics (0 vs +1 after sign)."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 6, 5, 65)).astype(np.float32)
    kernel = np_sign(rng.normal(size=(3, 3, 65, 7))).astype(np.float32)
    layer = BinaryConv2D(7, 3, 2, padding, scheme="binary", k_scale=False)
    layer.build(x.shape)
    layer.set_weights([kernel])
    got = np.asarray(layer(x))
    want = np_conv(np_sign(x), kernel, 2, padding,
                   1.0 if padding == "same_one" else 0.0)
    np.testing.assert_array_equal(got, want)
    if padding != "valid":  # the two padding modes really differ at borders
        other = "same" if padding == "same_one" else "same_one"
        alt = np_conv(np_sign(x), kernel, 2, other,
                      1.0 if other == "same_one" else 0.0)
        assert not np.array_equal(got, alt)


@pytest.mark.parametrize("scheme", ["binary", "xnor", "scalar", "float"])
@pytest.mark.parametrize("features", [1, 63, 64, 65, 200])
def test_dense_forward_matches_numpy(scheme, features):
    rng = np.random.default_rng(features)
    x = rng.normal(size=(3, features)).astype(np.float32)
    x[0, 0] = 0.0
    layer = BinaryDense(5, scheme=scheme, use_bias=True)
    layer.build(x.shape)
    kernel = rng.normal(size=(features, 5)).astype(np.float32)
    bias = rng.normal(size=5).astype(np.float32)
    layer.set_weights([kernel, bias])
    if scheme == "float":
        want = x @ kernel + bias
    elif scheme == "binary":
        want = (np_sign(x) @ np_sign(kernel) * np.abs(x).mean(-1, keepdims=True)
                * np.abs(kernel).mean(0) + bias)
    else:
        a = np.abs(kernel).mean() if scheme == "scalar" else np.abs(kernel).mean(0)
        want = x @ np_sign(kernel) * a + bias
    np.testing.assert_allclose(np.asarray(layer(x)), want, rtol=2e-5, atol=2e-4)


def test_ste_sign_gradient_clipped_and_identity():
    x = tf.Variable([-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5])
    with tf.GradientTape(persistent=True) as tape:
        clipped = ste_sign(x, 1.0)
        identity = ste_sign(x, None)
    np.testing.assert_array_equal(clipped.numpy(), [-1, -1, -1, 1, 1, 1, 1])
    np.testing.assert_array_equal(tape.gradient(clipped, x).numpy(),
                                  [0, 1, 1, 1, 1, 1, 0])
    np.testing.assert_array_equal(tape.gradient(identity, x).numpy(),
                                  np.ones(7))


def test_binary_dense_input_gradient_is_straight_through():
    """Without K: dL/dx = ((u * A) @ sign(W)^T) inside |x| <= 1, 0 outside."""
    rng = np.random.default_rng(5)
    x = rng.uniform(-2, 2, size=(3, 40)).astype(np.float32)
    u = rng.normal(size=(3, 6)).astype(np.float32)
    layer = BinaryDense(6, scheme="binary", k_scale=False)
    layer.build(x.shape)
    xv = tf.Variable(x)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(layer(xv) * u)
    grad = tape.gradient(loss, xv).numpy()
    w = layer.kernel.numpy()
    want = (u * np.abs(w).mean(0)) @ np_sign(w).T * (np.abs(x) <= 1)
    np.testing.assert_allclose(grad, want, rtol=1e-5, atol=1e-5)
    assert np.all(grad[np.abs(x) > 1] == 0)
    assert np.count_nonzero(grad[np.abs(x) <= 1]) > 0


def test_binary_conv_input_gradient_zero_outside_clip():
    rng = np.random.default_rng(6)
    x = rng.uniform(-3, 3, size=(2, 6, 6, 5)).astype(np.float32)
    layer = BinaryConv2D(4, 3, 1, "same", scheme="binary", k_scale=False)
    xv = tf.Variable(x)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(layer(xv) ** 2)
    grad = tape.gradient(loss, xv).numpy()
    assert np.all(grad[np.abs(x) > 1] == 0)
    assert np.count_nonzero(grad[np.abs(x) <= 1]) > 0.5 * np.sum(np.abs(x) <= 1)


@pytest.mark.parametrize("ste,outside_zero", [("clip", True), ("identity", False)])
def test_weight_ste(ste, outside_zero):
    """Weight STE: inside |w| <= 1 the sign passes the gradient, outside it
    passes only with the identity STE."""
    layer = BinaryDense(1, scheme="xnor", weight_ste=ste)
    layer.build((1, 4))
    w = np.array([[-2.0], [-0.5], [0.5], [2.0]], np.float32)
    layer.set_weights([w])
    x = np.ones((1, 4), np.float32)
    with tf.GradientTape() as tape:
        y = tf.reduce_sum(layer(x))
    grad = tape.gradient(y, layer.kernel).numpy()[:, 0]
    # y = sum_i sign(w_i) * A, A = mean|w| = 1.25; sum sign = 0, so only
    # the STE part remains: dy/dw_i = A * ste'(w_i).
    want = 1.25 * (np.abs(w[:, 0]) <= 1 if outside_zero else np.ones(4))
    np.testing.assert_allclose(grad, want, rtol=1e-6)


def test_clip_weights_constraint_after_step():
    layer = BinaryDense(3, scheme="xnor", clip_weights=True)
    layer.build((2, 4))
    layer.set_weights([np.full((4, 3), 0.99, np.float32)])
    opt = keras.optimizers.SGD(10.0)
    with tf.GradientTape() as tape:
        loss = -tf.reduce_sum(layer(np.ones((2, 4), np.float32)))
    opt.apply_gradients(zip(tape.gradient(loss, [layer.kernel]), [layer.kernel]))
    w = layer.kernel.numpy()
    assert w.max() <= 1.0 and w.max() == pytest.approx(1.0)


def test_config_records_what_the_layer_computes():
    conv = BinaryConv2D(8, 3, 2, "same_one", scheme="binary", k_scale=False)
    cfg = conv.get_config()
    assert cfg["scheme"] == "binary" and cfg["padding"] == "same_one"
    assert cfg["binary_inputs"] is True and cfg["k_scale"] is False
    assert cfg["use_bias"] is False and cfg["weight_scale"] == "per_filter"
    assert cfg["strides"] == (2, 2) and cfg["kernel_size"] == (3, 3)
    xnor = BinaryConv2D(8, 3, scheme="xnor", use_bias=True).get_config()
    assert xnor["binary_inputs"] is False and xnor["k_scale"] is False
    assert xnor["use_bias"] is True
    scalar = BinaryDense(4, scheme="scalar").get_config()
    assert scalar["weight_scale"] == "layer" and scalar["units"] == 4
    clone = BinaryConv2D.from_config(cfg)
    assert clone.get_config() == cfg


def test_saved_model_roundtrip(tmp_path):
    inp = keras.Input((6, 6, 3))
    x = BinaryConv2D(4, 3, 1, "same", scheme="xnor")(inp)
    x = keras.layers.BatchNormalization()(x)
    x = ChannelScale()(x)
    x = ChannelZeroPad(2)(x)
    x = LRN(2, 1.0, 0.1, 0.75)(x)
    x = BinaryConv2D(4, 3, 2, "same_one", scheme="binary")(x)
    x = SignActivation()(x)
    x = keras.layers.Flatten()(x)
    x = BinaryDense(3, scheme="binary")(x)
    model = keras.Model(inp, x)
    data = np.random.default_rng(0).normal(size=(2, 6, 6, 3)).astype(np.float32)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    np.testing.assert_array_equal(model(data), loaded(data))


def test_lrn_matches_formula_and_tensorflow():
    rng = np.random.default_rng(7)
    x = rng.normal(size=(2, 3, 4, 11)).astype(np.float32)
    r, bias, alpha, beta = 2, 2.0, 1e-2, 0.75
    sq = np.pad(x.astype(np.float64) ** 2, ((0, 0),) * 3 + ((r, r),))
    sqr_sum = sum(sq[..., d:d + 11] for d in range(2 * r + 1))
    want = x / (bias + alpha * sqr_sum) ** beta
    got = np.asarray(LRN(r, bias, alpha, beta)(x))
    np.testing.assert_allclose(got, want, rtol=1e-5)
    tf_out = tf.nn.local_response_normalization(x, r, bias, alpha, beta)
    np.testing.assert_allclose(got, tf_out.numpy(), rtol=1e-5)


@pytest.mark.parametrize("kwargs", [
    dict(filters=4, kernel_size=3, scheme="ternary"),
    dict(filters=4, kernel_size=3, padding="full"),
    dict(filters=4, kernel_size=3, padding="same_one", scheme="xnor"),
    dict(filters=0, kernel_size=3),
    dict(filters=4, kernel_size=0),
    dict(filters=4, kernel_size=3, weight_ste="none"),
    dict(filters=4, kernel_size=3, input_clip=-1.0),
])
def test_bad_arguments_raise_value_error(kwargs):
    with pytest.raises(ValueError):
        BinaryConv2D(**kwargs)


def test_bad_input_rank_raises_value_error():
    with pytest.raises(ValueError):
        BinaryConv2D(4, 3).build((2, 5, 3))
    with pytest.raises(ValueError):
        BinaryDense(4).build((2, 5, 3))
