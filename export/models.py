"""The networks: LeNet, ResNet(n) and AlexNet, parameterised by scheme and
width. All output logits (softmax belongs in the loss).

Layers used are only those the runtime supports (see layers.py for the
binarized ones): BinaryConv2D/Conv2D, BinaryDense/Dense, BatchNormalization,
ReLU, MaxPooling2D, AveragePooling2D, GlobalAveragePooling2D, Add, Flatten,
Dropout, LRN, ChannelScale, ChannelZeroPad.

With scheme 'binary' the sign() of the activations happens inside the next
binary layer, so a hidden activation is BatchNorm only (BN before sign);
with float activations (float, xnor, scalar) it is BatchNorm + ReLU.
"""
import keras
from keras import layers as kl

from .layers import (LRN, BinaryConv2D, BinaryDense, ChannelScale,
                     ChannelZeroPad, SCHEMES)

NETS = ("lenet", "resnet", "alexnet")


def _width(channels, width):
    return max(1, int(round(channels * width)))


class _Builder:
    """Creates conv/dense layers for one network with consistent options."""

    def __init__(self, scheme, padding, k_scale, clip_weights, weight_ste):
        if scheme not in SCHEMES:
            raise ValueError(f"scheme must be one of {SCHEMES}, got {scheme!r}")
        if padding not in ("same", "same_one"):
            raise ValueError(f"padding must be 'same' or 'same_one', "
                             f"got {padding!r}")
        if padding == "same_one" and scheme != "binary":
            raise ValueError("padding='same_one' needs scheme='binary'")
        self.scheme = scheme
        self.padding = padding
        self.opts = dict(k_scale=k_scale, clip_weights=clip_weights,
                         weight_ste=weight_ste)

    @property
    def float_activations(self):
        return self.scheme != "binary"

    def conv(self, filters, k, strides=1, name=None, real=False,
             use_bias=False, padding=None):
        if real or self.scheme == "float":
            return kl.Conv2D(filters, k, strides, padding=padding or "same",
                             use_bias=use_bias, name=name)
        pad = padding or self.padding
        return BinaryConv2D(filters, k, strides, pad, scheme=self.scheme,
                            use_bias=use_bias, name=name, **self.opts)

    def dense(self, units, name=None, real=False, use_bias=False):
        if real or self.scheme == "float":
            return kl.Dense(units, use_bias=use_bias, name=name)
        return BinaryDense(units, scheme=self.scheme, use_bias=use_bias,
                           name=name, **self.opts)

    def activation(self, x, name):
        """BN (+ ReLU with float activations); binary layers sign() next."""
        x = kl.BatchNormalization(name=f"{name}_bn")(x)
        if self.float_activations:
            x = kl.ReLU(name=f"{name}_relu")(x)
        return x


def lenet(scheme="binary", width=1.0, input_shape=(28, 28, 1), classes=10,
          float_first=True, float_last=True, padding="same", k_scale=True,
          clip_weights=False, weight_ste="clip", dropout=0.5):
    """Thesis 3.3.1, 7 levels: conv 5x5x32, maxpool 2, conv 5x5x64,
    maxpool 2, dense 1024, dropout 0.5, dense classes. Conv -> BN -> pool
    (sign(max) = max(sign): the exporter may pool before or after sign)."""
    b = _Builder(scheme, padding, k_scale, clip_weights, weight_ste)
    inp = keras.Input(input_shape, name="image")
    x = b.conv(_width(32, width), 5, name="conv1", real=float_first,
               padding="same")(inp)
    x = b.activation(x, "conv1")
    x = kl.MaxPooling2D(2, name="pool1")(x)
    x = b.conv(_width(64, width), 5, name="conv2")(x)
    x = b.activation(x, "conv2")
    x = kl.MaxPooling2D(2, name="pool2")(x)
    x = kl.Flatten(name="flatten")(x)
    x = b.dense(_width(1024, width), name="fc1")(x)
    x = b.activation(x, "fc1")
    x = kl.Dropout(dropout, name="dropout")(x)
    x = b.dense(classes, name="logits", real=float_last, use_bias=True)(x)
    return keras.Model(inp, x, name=f"lenet_{scheme}")


def resnet(n=3, scheme="binary", width=1.0, input_shape=(32, 32, 3),
           classes=10, float_first=True, float_last=True, padding="same",
           k_scale=True, clip_weights=False, weight_ste="clip",
           shortcut="avgpool", bireal=False, channel_scale=False,
           bn_before_sign=True):
    """CIFAR ResNet of He et al. (thesis 3.3.4): conv 3x3x16, 3 stages of n
    blocks at 16/32/64 filters (32/16/8 maps), global avgpool, dense:
    6n+2 weighted layers (1x1 shortcut convs not counted).

    Block (thesis order, pre-activation): BN-conv-BN-conv + shortcut, where
    each "BN" is BN (+ReLU for float activations; binary convs sign inside).
    Options: shortcut 'avgpool' (strided 2x2 avgpool + zero channels, He's
    option A) or 'conv' (strided 1x1 conv + BN); bireal=True adds a
    real-valued shortcut around every conv (Bi-Real Net) instead of one per
    block; channel_scale=True multiplies each conv output by a learnable
    per-channel scale; bn_before_sign=False moves each BN after its conv.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if shortcut not in ("avgpool", "conv"):
        raise ValueError(f"shortcut must be 'avgpool' or 'conv', got {shortcut!r}")
    b = _Builder(scheme, padding, k_scale, clip_weights, weight_ste)

    def unit(h, filters, stride, name):
        """[BN(+ReLU)] -> conv -> [BN] -> [scale]."""
        if bn_before_sign:
            h = b.activation(h, name)
        elif b.float_activations:
            h = kl.ReLU(name=f"{name}_relu")(h)
        h = b.conv(filters, 3, stride, name=name)(h)
        if not bn_before_sign:
            h = kl.BatchNormalization(name=f"{name}_bn")(h)
        if channel_scale:
            h = ChannelScale(name=f"{name}_scale")(h)
        return h

    def project(h, filters, stride, name):
        if stride == 1 and h.shape[-1] == filters:
            return h
        if shortcut == "conv":
            h = kl.Conv2D(filters, 1, stride, use_bias=False,
                          name=f"{name}_proj")(h)
            return kl.BatchNormalization(name=f"{name}_proj_bn")(h)
        if stride != 1:
            h = kl.AveragePooling2D(stride, name=f"{name}_pool")(h)
        return ChannelZeroPad(filters - h.shape[-1], name=f"{name}_pad")(h)

    inp = keras.Input(input_shape, name="image")
    x = b.conv(_width(16, width), 3, name="conv1", real=float_first,
               padding="same")(inp)
    for stage, base in enumerate((16, 32, 64)):
        filters = _width(base, width)
        for block in range(n):
            stride = 2 if stage > 0 and block == 0 else 1
            name = f"s{stage + 1}b{block + 1}"
            short = project(x, filters, stride, name)
            if bireal:
                h = kl.Add(name=f"{name}_add1")(
                    [unit(x, filters, stride, f"{name}_c1"), short])
                x = kl.Add(name=f"{name}_add2")(
                    [unit(h, filters, 1, f"{name}_c2"), h])
            else:
                h = unit(x, filters, stride, f"{name}_c1")
                h = unit(h, filters, 1, f"{name}_c2")
                x = kl.Add(name=f"{name}_add")([h, short])
    x = kl.BatchNormalization(name="final_bn")(x)
    x = kl.ReLU(name="final_relu")(x)
    x = kl.GlobalAveragePooling2D(name="gap")(x)
    x = b.dense(classes, name="logits", real=float_last, use_bias=True)(x)
    return keras.Model(inp, x, name=f"resnet{6 * n + 2}_{scheme}")


def alexnet(scheme="binary", width=1.0, input_shape=(224, 224, 3),
            classes=1000, float_first=True, float_last=True, padding="same",
            k_scale=True, clip_weights=False, weight_ste="clip", dropout=0.5):
    """Thesis 3.3.2 (Krizhevsky et al.) with its LRN layers: conv 11x11x96/4,
    LRN, maxpool 3/2, conv 5x5x256, LRN, maxpool 3/2, conv 3x3x384,
    conv 3x3x384, conv 3x3x256, maxpool 3/2, dense 4096, dropout,
    dense 4096, dropout, dense classes. 'same' pooling keeps any input size
    valid. LRN as in the paper: radius 2, bias 2, alpha 1e-4, beta 0.75
    (TF semantics: alpha is not divided by the window size)."""
    b = _Builder(scheme, padding, k_scale, clip_weights, weight_ste)

    def lrn(x, name):
        return LRN(2, bias=2.0, alpha=1e-4, beta=0.75, name=name)(x)

    def pool(x, name):
        return kl.MaxPooling2D(3, 2, padding="same", name=name)(x)

    inp = keras.Input(input_shape, name="image")
    x = b.conv(_width(96, width), 11, 4, name="conv1", real=float_first,
               padding="same")(inp)
    x = pool(lrn(b.activation(x, "conv1"), "lrn1"), "pool1")
    x = b.conv(_width(256, width), 5, name="conv2")(x)
    x = pool(lrn(b.activation(x, "conv2"), "lrn2"), "pool2")
    x = b.activation(b.conv(_width(384, width), 3, name="conv3")(x), "conv3")
    x = b.activation(b.conv(_width(384, width), 3, name="conv4")(x), "conv4")
    x = b.conv(_width(256, width), 3, name="conv5")(x)
    x = pool(b.activation(x, "conv5"), "pool5")
    x = kl.Flatten(name="flatten")(x)
    for i in (6, 7):
        x = b.activation(b.dense(_width(4096, width), name=f"fc{i}")(x),
                         f"fc{i}")
        x = kl.Dropout(dropout, name=f"dropout{i}")(x)
    x = b.dense(classes, name="logits", real=float_last, use_bias=True)(x)
    return keras.Model(inp, x, name=f"alexnet_{scheme}")


def build(net, **kwargs):
    """Builds a network by name from recipe keywords (see train.py)."""
    makers = {"lenet": lenet, "resnet": resnet, "alexnet": alexnet}
    if net not in makers:
        raise ValueError(f"net must be one of {NETS}, got {net!r}")
    return makers[net](**kwargs)


def weighted_layers(model):
    """Conv and dense layers (binary or float), in order."""
    kinds = (kl.Conv2D, kl.Dense, BinaryConv2D, BinaryDense)
    return [l for l in model.layers if isinstance(l, kinds)]
