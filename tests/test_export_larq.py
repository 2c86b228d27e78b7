"""Larq models -> .ebnn. Needs the Larq environment (requirements-larq.txt,
TF_USE_LEGACY_KERAS=1; see export/larq_ci.sh); skipped elsewhere."""
import os

import numpy as np
import pytest

pytestmark = pytest.mark.tf
lq = pytest.importorskip("larq")
tf_keras = pytest.importorskip("tf_keras")

import edgebnn
from edgebnn_export import larq_import  # noqa: F401  (registers QuantConv2D / QuantDense)
from edgebnn_export.convert import ExportError, convert
from edgebnn_export.equivalence import Checker
from edgebnn_export.exporter import export

kl = tf_keras.layers
CLIP = dict(kernel_constraint="weight_clip")


def randomize_bn(model, seed=0):
    r = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, kl.BatchNormalization):
            c = layer.moving_mean.shape[0]
            if layer.gamma is not None:
                layer.gamma.assign(r.uniform(0.5, 2, c) * r.choice([-1, 1], c))
            layer.beta.assign(r.normal(0, 0.5, c))
            layer.moving_mean.assign(r.normal(0, 3, c))
            layer.moving_variance.assign(r.uniform(0.2, 2, c))
    return model


def larq_net(pad_values, channels=3, size=13, mid=65, stride=2, input_q="ste_sign",
             kernel_q="ste_sign"):
    """Larq's BinaryAlexNet / LeNet layer order: quant conv -> maxpool -> BN."""
    binary = dict(input_quantizer=input_q, kernel_quantizer=kernel_q, use_bias=False, **CLIP)
    inp = tf_keras.Input((size, size, channels))
    x = lq.layers.QuantConv2D(mid, 3, kernel_quantizer="ste_sign", padding="same",
                              use_bias=False, **CLIP)(inp)
    x = kl.BatchNormalization(scale=False)(x)
    x = lq.layers.QuantConv2D(mid, 3, strides=stride, padding="same", pad_values=pad_values,
                              **binary)(x)
    x = kl.MaxPool2D(2, padding="same")(x)
    x = kl.BatchNormalization()(x)
    x = lq.layers.QuantConv2D(63, 3, padding="same", pad_values=pad_values,
                              **dict(binary, input_quantizer="approx_sign",
                                     kernel_quantizer="magnitude_aware_sign"))(x)
    x = kl.BatchNormalization()(x)
    x = lq.layers.QuantConv2D(17, 1, **dict(binary, input_quantizer="swish_sign"))(x)
    x = kl.BatchNormalization()(x)
    x = kl.Flatten()(x)
    x = lq.layers.QuantDense(33, **binary)(x)
    x = kl.BatchNormalization()(x)
    x = lq.layers.QuantDense(5, input_quantizer="ste_sign", kernel_quantizer="ste_sign",
                             **CLIP)(x)
    x = kl.Activation("softmax")(x)
    return randomize_bn(tf_keras.Model(inp, x))


def x_of(model, n=12, seed=0):
    shape = tuple(int(d) for d in model.inputs[0].shape[1:])
    return np.random.default_rng(seed).standard_normal((n,) + shape).astype(np.float32)


@pytest.mark.parametrize("pad_values", [0, 1])
@pytest.mark.parametrize("channels,size,mid,stride", [(3, 13, 65, 2), (1, 7, 64, 1),
                                                      (200, 5, 63, 2), (3, 2, 1, 1)])
def test_larq_network_equivalent(pad_values, channels, size, mid, stride):
    tf_keras.utils.set_random_seed(channels + size)
    model = larq_net(pad_values, channels, size, mid, stride)
    checker = Checker(model, convert(model))
    report = checker.run(x_of(model))
    assert report.passed, report.text()
    assert report.top1_agreement == 1.0
    kinds = [c.kind for c in report.ops]
    assert "bits" in kinds
    if mid > 1:
        # BN after the max-pool has negative gammas: zero padding downstream
        # lets folding keep it as inverted bits; +1 padding keeps it float
        assert bool(checker.negated) == (pad_values == 0)


def test_larq_file_round_trip(tmp_path):
    tf_keras.utils.set_random_seed(1)
    model = larq_net(1)
    src = tmp_path / "larq.h5"
    model.save(src)
    out = tmp_path / "larq.ebnn"
    if os.environ.get("TF_USE_LEGACY_KERAS") != "1":
        pytest.skip("loading a Larq file needs TF_USE_LEGACY_KERAS=1 (export/larq_ci.sh)")
    report = export(str(src), str(out), samples=10, log=lambda s: None)
    assert report.passed
    x = x_of(model, 10, seed=3)
    ours = edgebnn.load(str(out)).run(x)
    assert np.array_equal(ours.argmax(1), np.asarray(model(x)).argmax(1))


def test_larq_savedmodel_dir(tmp_path):
    if os.environ.get("TF_USE_LEGACY_KERAS") != "1":
        pytest.skip("loading a Larq SavedModel needs TF_USE_LEGACY_KERAS=1")
    tf_keras.utils.set_random_seed(2)
    model = larq_net(0, size=9)
    src = tmp_path / "saved"
    model.save(src, save_format="tf")
    report = export(str(src), str(tmp_path / "m.ebnn"), samples=6, log=lambda s: None)
    assert report.passed and report.top1_agreement == 1.0


def test_unsupported_quantizer_is_named():
    inp = tf_keras.Input((6, 6, 3))
    x = lq.layers.QuantConv2D(4, 3, input_quantizer="ste_heaviside", kernel_quantizer="ste_sign",
                              name="heavy")(inp)
    model = tf_keras.Model(inp, kl.Flatten()(x))
    with pytest.raises(ExportError, match="'heavy'.*'ste_heaviside' is not supported.*ste_sign"):
        convert(model)
    x = lq.layers.QuantConv2D(4, 3, kernel_quantizer="ste_sign", padding="same", pad_values=1,
                              name="floatpad")(inp)
    with pytest.raises(ExportError, match="pad_values=1 on a float input"):
        convert(tf_keras.Model(inp, kl.Flatten()(x)))
    x = lq.layers.QuantDepthwiseConv2D(3, name="dw")(inp)
    with pytest.raises(ExportError, match=r"dw \(QuantDepthwiseConv2D\).*Supported:.*QuantConv2D"):
        convert(tf_keras.Model(inp, kl.Flatten()(x)))


def test_untrained_larq_ties_and_softmax():
    """Default BN: binary logits tie exactly; Keras breaks ties by rounding."""
    tf_keras.utils.set_random_seed(3)
    binary = dict(input_quantizer="ste_sign", kernel_quantizer="ste_sign", **CLIP)
    inp = tf_keras.Input((10, 10, 1))
    x = lq.layers.QuantConv2D(16, 3, kernel_quantizer="ste_sign", padding="same",
                              use_bias=False, **CLIP)(inp)
    x = kl.BatchNormalization(scale=False)(x)
    x = lq.layers.QuantConv2D(32, 3, padding="same", pad_values=1, use_bias=False, **binary)(x)
    x = kl.MaxPool2D(2)(x)
    x = kl.BatchNormalization(scale=False)(x)
    x = kl.Flatten()(x)
    x = lq.layers.QuantDense(10, **binary)(x)
    x = kl.BatchNormalization(scale=False)(x)
    model = tf_keras.Model(inp, kl.Activation("softmax")(x))
    report = Checker(model, convert(model)).run(x_of(model, 64))
    assert report.passed, report.text()
    assert report.top1_agreement == 1.0
