"""The benchmark networks, written once against a small builder interface
and built three ways from it: an edgebnn graph (EdgebnnBuilder), the float
twin in Keras (KerasBuilder, float layers) and the Larq model
(KerasBuilder with larq's QuantConv2D/QuantDense). Imports nothing heavy at
the top: it runs in the project's environment and in the LCE venv.

Builder interface (x is a builder-specific tensor handle):
    input(shape) conv(x, filters, k, stride, binary, padding) bn(x)
    maxpool(x, k, s, padding) avgpool(x, k, s) add(x, y) global_avgpool(x)
    flatten(x) to_pixel(x) dense(x, units, binary) output(x)
Binary layers binarize their input (sign) and weights; "same" padding of a
binary conv pads with +1 (Larq pad_values=1.0, edgebnn same_one)."""


def lenet(b, dense_as_conv=False):
    """Binarized LeNet on MNIST shape, Larq order conv -> maxpool -> BN.
    dense_as_conv: the binary dense 1024 as a 1x1 conv over [1, 1, 3136]
    (LCE has no binary dense op)."""
    x = b.input([28, 28, 1])
    x = b.bn(b.maxpool(b.conv(x, 32, 5, binary=False), 2, 2))
    x = b.bn(b.maxpool(b.conv(x, 64, 5, binary=True), 2, 2))
    if dense_as_conv:
        x = b.flatten(b.bn(b.conv(b.to_pixel(x), 1024, 1, binary=True)))
    else:
        x = b.bn(b.dense(b.flatten(x), 1024, binary=True))
    return b.output(b.dense(x, 10, binary=False))


def _residual_stages(b, x, widths, convs_per_stage):
    """Bi-Real-style blocks: a shortcut around every binary 3x3 conv; the
    first conv of each later stage has stride 2 and its shortcut is
    avgpool 2x2 -> float 1x1 conv -> BN."""
    for stage, width in enumerate(widths):
        for i in range(convs_per_stage):
            down = stage > 0 and i == 0
            y = b.bn(b.conv(x, width, 3, stride=2 if down else 1, binary=True))
            s = x
            if down:
                s = b.bn(b.conv(b.avgpool(x, 2, 2), width, 1, binary=False))
            x = b.add(y, s)
    return x


def resnet20(b):
    """Binarized ResNet-20 (n=3) on CIFAR shape: 3 stages of 16/32/64, 18
    binary convs (3 blocks x 2 convs per stage), float stem and head."""
    x = b.input([32, 32, 3])
    x = b.bn(b.conv(x, 16, 3, binary=False))
    x = _residual_stages(b, x, (16, 32, 64), 6)
    return b.output(b.dense(b.global_avgpool(x), 10, binary=False))


def bireal18(b):
    """Bi-Real-Net-18-like on 224x224x3: float 7x7/2 stem + maxpool 3/2,
    4 stages of 64/128/256/512 with 4 binary 3x3 convs each, float head."""
    x = b.input([224, 224, 3])
    x = b.bn(b.conv(x, 64, 7, stride=2, binary=False))
    x = b.maxpool(x, 3, 2, padding="same")
    x = _residual_stages(b, x, (64, 128, 256, 512), 4)
    return b.output(b.dense(b.global_avgpool(x), 1000, binary=False))


def single_conv(b):
    """One binary 3x3 conv 14x14x256 -> 256 (same), BN, float output."""
    x = b.input([14, 14, 256])
    return b.output(b.bn(b.conv(x, 256, 3, binary=True)))


# name -> (builder function, kwargs, dataset for accuracy with pretrained files)
NETWORKS = {
    "lenet": (lenet, {}, "mnist"),
    "resnet20": (resnet20, {}, "cifar10"),
    "bireal18": (bireal18, {}, "imagenet"),
    "conv14x14x256": (single_conv, {}, None),
}
# LCE-only variant (LCE runs binary dense as float): reported beside "lenet"
LCE_VARIANTS = {"lenet": ("lenet_dense_as_conv", dict(dense_as_conv=True))}


class EdgebnnBuilder:
    """Builds an edgebnn Graph with random weights (BN statistics drawn so
    thresholds land inside the dot range, like tests/model_zoo.py)."""

    def __init__(self, seed=0):
        import numpy as np
        self.np, self.rng = np, np.random.default_rng(seed)
        self.gb = None
        self.shapes = {}

    def _add(self, op_type, attrs=None, params=None, inputs=None):
        name = self.gb.add(op_type, attrs or {}, params, inputs=inputs)
        self.shapes[name] = self.gb.build(check_labels=False).by_name[name].shape
        return name

    def input(self, shape):
        from edgebnn import GraphBuilder
        self.gb = GraphBuilder(shape)
        self.shapes["input"] = list(shape)
        return "input"

    def conv(self, x, filters, k, stride=1, binary=True, padding="same"):
        from edgebnn.bits import pack_signs
        np, c = self.np, self.shapes[x][-1]
        raw = self.rng.standard_normal((filters, k, k, c)).astype(np.float32)
        if binary:
            params = {"weight": pack_signs(raw),
                      "alpha": self.rng.uniform(0.05, 0.3, filters).astype(np.float32)}
            pad = "same_one" if padding == "same" else "valid"
        else:
            params = {"weight": raw / np.float32(np.sqrt(k * k * c))}
            pad = "same_zero" if padding == "same" else "valid"
        attrs = dict(filters=filters, kernel=[k, k], strides=[stride, stride], padding=pad,
                     scheme="binary" if binary else "float",
                     alpha="per_filter" if binary else "none", input_scaling="none",
                     use_bias=False)
        return self._add("conv2d", attrs, params, [x])

    def bn(self, x):
        np, r, c = self.np, self.rng, self.shapes[x][-1]
        params = {"gamma": r.uniform(0.5, 2.0, c), "beta": r.normal(0, 0.5, c),
                  "mean": r.normal(0, 2.0, c), "var": r.uniform(0.5, 4.0, c)}
        return self._add("batchnorm", {"eps": 1e-3},
                         {k: v.astype(np.float32) for k, v in params.items()}, [x])

    def maxpool(self, x, k, s, padding="valid"):
        return self._add("maxpool", dict(pool=[k, k], strides=[s, s], padding=padding), None, [x])

    def avgpool(self, x, k, s):
        return self._add("avgpool", dict(pool=[k, k], strides=[s, s], padding="same"), None, [x])

    def add(self, x, y):
        return self._add("add", None, None, [x, y])

    def global_avgpool(self, x):
        return self._add("global_avgpool", None, None, [x])

    def flatten(self, x):
        return self._add("flatten", None, None, [x])

    def to_pixel(self, x):
        raise NotImplementedError("edgebnn runs binary dense directly")

    def dense(self, x, units, binary=True):
        from edgebnn.bits import pack_signs
        np, f = self.np, self.shapes[x][0]
        raw = self.rng.standard_normal((units, f)).astype(np.float32)
        if binary:
            params = {"weight": pack_signs(raw),
                      "alpha": self.rng.uniform(0.05, 0.3, units).astype(np.float32)}
        else:
            params = {"weight": raw / np.float32(np.sqrt(f)),
                      "bias": self.rng.normal(0, 0.1, units).astype(np.float32)}
        attrs = dict(units=units, scheme="binary" if binary else "float",
                     alpha="per_filter" if binary else "none", input_scaling="none",
                     use_bias=not binary)
        return self._add("dense", attrs, params, [x])

    def output(self, x):
        n = self.shapes[x]
        return self.gb.build(labels=[f"class{i}" for i in range(n[0])] if len(n) == 1 else None)


class KerasBuilder:
    """Keras functional model. larq=None: the float twin (plain Conv2D/Dense,
    ReLU where the binary net binarizes, so TFLite fuses it). larq=the larq
    module: QuantConv2D/QuantDense with ste_sign on inputs and weights.
    batch: a fixed batch size (LCE files have one), None = any."""

    def __init__(self, keras, larq=None, batch=None):
        self.keras, self.L, self.lq, self.batch = keras, keras.layers, larq, batch
        self.inp = None

    def input(self, shape):
        self.inp = self.keras.Input(shape, batch_size=self.batch)
        return self.inp

    def _quant(self, binary):
        if not (binary and self.lq):
            return {}
        return dict(input_quantizer="ste_sign", kernel_quantizer="ste_sign",
                    kernel_constraint="weight_clip")

    def conv(self, x, filters, k, stride=1, binary=True, padding="same"):
        if binary and self.lq:
            return self.lq.layers.QuantConv2D(filters, k, strides=stride, padding=padding,
                                              pad_values=1.0, use_bias=False,
                                              **self._quant(True))(x)
        y = self.L.Conv2D(filters, k, strides=stride, padding=padding, use_bias=False)(x)
        return y

    def bn(self, x):
        y = self.L.BatchNormalization(momentum=0.9, epsilon=1e-3)(x)
        return y if self.lq else self.L.ReLU()(y)

    def maxpool(self, x, k, s, padding="valid"):
        return self.L.MaxPooling2D(k, s, padding=padding)(x)

    def avgpool(self, x, k, s):
        return self.L.AveragePooling2D(k, s, padding="same")(x)

    def add(self, x, y):
        return self.L.Add()([x, y])

    def global_avgpool(self, x):
        return self.L.GlobalAveragePooling2D()(x)

    def flatten(self, x):
        return self.L.Flatten()(x)

    def to_pixel(self, x):
        return self.L.Reshape((1, 1, -1))(x)

    def dense(self, x, units, binary=True):
        if binary and self.lq:
            return self.lq.layers.QuantDense(units, use_bias=False, **self._quant(True))(x)
        return self.L.Dense(units, use_bias=not binary)(x)

    def output(self, x):
        return self.keras.Model(self.inp, x)


def randomize_bn(model, seed=0):
    """Non-trivial BatchNorm statistics, so the random network's values
    (and the int8 calibration) look like a trained one's."""
    import numpy as np
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if type(layer).__name__ == "BatchNormalization":
            c = layer.get_weights()[0].shape[0]
            layer.set_weights([rng.uniform(0.5, 2.0, c).astype(np.float32),
                               rng.normal(0, 0.5, c).astype(np.float32),
                               rng.normal(0, 0.5, c).astype(np.float32),
                               rng.uniform(0.5, 2.0, c).astype(np.float32)])
    return model
