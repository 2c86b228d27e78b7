"""Random LeNet-, ResNet- and AlexNet-shaped graphs built through the
writer's GraphBuilder, in every scheme, with parameters drawn so that
batchnorm thresholds land inside the dot range (negative and zero gammas
included, to exercise flips and constant channels)."""
import zlib

import numpy as np

from edgebnn import GraphBuilder
from edgebnn.bits import pack_signs

SCHEMES = ("float", "binary_weights", "binary", "binary_k")


class Net:
    def __init__(self, rng, shape, preprocess=None):
        self.rng, self.b = rng, GraphBuilder(shape, preprocess=preprocess)
        self.shape = {"input": list(shape)}

    def _record(self, name):
        self.shape[name] = self.b.build(check_labels=False).by_name[name].shape
        return name

    def conv(self, filters, k, scheme, stride=1, padding="same_zero", inputs=None,
             alpha="per_filter", use_bias=False):
        inputs = inputs or [self.b.last]
        c = self.shape[inputs[0]][-1]
        binary = scheme.startswith("binary")
        sch = "binary" if scheme == "binary_k" else scheme
        if sch != "binary" and padding == "same_one":
            padding = "same_zero"
        raw = self.rng.standard_normal((filters, k, k, c)).astype(np.float32)
        params = {"weight": pack_signs(raw) if binary else raw * np.float32(1 / np.sqrt(k * k * c))}
        if not binary:
            alpha = "none"
        if alpha != "none":
            n = 1 if alpha == "scalar" else filters
            params["alpha"] = self.rng.uniform(0.05, 0.3, n).astype(np.float32)
        if use_bias:
            params["bias"] = self.rng.normal(0, 0.1, filters).astype(np.float32)
        attrs = dict(filters=filters, kernel=[k, k], strides=[stride, stride], padding=padding,
                     scheme=sch, alpha=alpha,
                     input_scaling="mean_abs" if scheme == "binary_k" else "none",
                     use_bias=use_bias)
        return self._record(self.b.add("conv2d", attrs, params, inputs=inputs))

    def dense(self, units, scheme, alpha="per_filter", use_bias=True):
        f = self.shape[self.b.last][0]
        binary = scheme.startswith("binary")
        raw = self.rng.standard_normal((units, f)).astype(np.float32)
        params = {"weight": pack_signs(raw) if binary else raw * np.float32(1 / np.sqrt(f))}
        if not binary:
            alpha = "none"
        if alpha != "none":
            params["alpha"] = self.rng.uniform(0.05, 0.3, 1 if alpha == "scalar" else units
                                               ).astype(np.float32)
        if use_bias:
            params["bias"] = self.rng.normal(0, 0.1, units).astype(np.float32)
        attrs = dict(units=units, scheme="binary" if scheme == "binary_k" else scheme,
                     alpha=alpha, input_scaling="mean_abs" if scheme == "binary_k" else "none",
                     use_bias=use_bias)
        return self._record(self.b.add("dense", attrs, params))

    def bn(self, spread=1.0, inputs=None):
        inputs = inputs or [self.b.last]
        c = self.shape[inputs[0]][-1]
        r = self.rng
        gamma = r.uniform(0.5, 2.0, c) * r.choice([-1.0, 1.0], c)
        gamma[r.random(c) < 0.1] = 0.0
        params = {"gamma": gamma, "beta": r.normal(0, 0.5, c), "mean": r.normal(0, spread, c),
                  "var": r.uniform(0.2, 2.0, c) * spread ** 2}
        params = {k: v.astype(np.float32) for k, v in params.items()}
        return self._record(self.b.add("batchnorm", {"eps": 1e-3}, params, inputs=inputs))

    def op(self, op_type, inputs=None, **attrs):
        return self._record(self.b.add(op_type, attrs, inputs=inputs))

    def pool(self, op_type, k, s, padding="valid"):
        return self.op(op_type, pool=[k, k], strides=[s, s], padding=padding)

    def build(self, labels=True):
        n = self.shape[self.b.last][0]
        return self.b.build(labels=[f"class{i}" for i in range(n)] if labels else None)


def lenet(rng, scheme, size=12, explicit_sign=True):
    net = Net(rng, [size, size, 1])
    first = "binary_weights" if scheme.startswith("binary") else scheme
    net.conv(6, 3, first, padding="same_zero")
    net.pool("maxpool", 2, 2)
    net.bn(spread=1.0)
    if explicit_sign and scheme.startswith("binary"):
        net.op("sign")
    net.conv(8, 3, scheme, padding="same_one")
    net.bn(spread=4.0)
    if explicit_sign and scheme.startswith("binary"):
        net.op("sign")
    net.conv(10, 3, scheme, padding="valid")
    net.pool("maxpool", 2, 2, "same")
    net.bn(spread=4.0)
    net.op("flatten")
    net.dense(12, scheme)
    net.bn(spread=3.0)
    net.op("hardtanh")
    net.dense(5, "float")
    net.op("softmax")
    return net.build()


def resnet(rng, scheme, n=1, size=8, shortcut="avgpool"):
    net = Net(rng, [size, size, 3])
    net.conv(8, 3, "float")
    net.bn()
    x = net.op("relu")
    width = 8
    for stage in range(2):
        for block in range(n):
            down = stage > 0 and block == 0
            c_out = width * 2 if down else width
            net.conv(c_out, 3, scheme, stride=2 if down else 1, inputs=[x],
                     padding="same_one" if scheme == "binary" else "same_zero")
            y = net.bn(spread=3.0)
            s = x
            if down and shortcut == "avgpool":
                net.op("avgpool", inputs=[x], pool=[2, 2], strides=[2, 2], padding="same")
                net.conv(c_out, 1, "float")
                s = net.bn()
            elif down:
                net.conv(c_out, 1, "float", stride=2, inputs=[x])
                s = net.bn()
            net.op("add", inputs=[y, s])
            x = net.op("hardtanh")
            width = c_out
    net.op("global_avgpool")
    net.dense(4, "float")
    return net.build()


def alexnet(rng, scheme, size=19):
    net = Net(rng, [size, size, 3], preprocess={
        "size": [size, size], "channels": 3, "scale": 1 / 255, "mean": [0.5, 0.4, 0.3],
        "std": [0.25, 0.25, 0.25], "invert": False})
    net.conv(12, 5, "float", stride=2, use_bias=True)
    net.op("relu")
    net.op("lrn", depth_radius=2, bias=1.0, alpha=1e-4 * 5, beta=0.75)
    net.pool("maxpool", 3, 2, "same")
    net.bn()
    net.conv(16, 3, scheme, padding="same_zero")
    net.bn(spread=4.0)
    if scheme.startswith("binary"):
        net.op("sign")
    net.pool("maxpool", 3, 2, "same")
    net.conv(20, 3, scheme, padding="same_one" if scheme.startswith("binary") else "same_zero",
             alpha="scalar")
    net.bn(spread=4.0)
    net.op("relu")
    net.op("flatten")
    net.dense(16, scheme)
    net.bn(spread=3.0)
    net.dense(16, scheme, alpha="scalar")
    net.bn(spread=3.0)
    net.op("relu")
    net.dense(6, "float")
    net.op("softmax")
    return net.build()


def larq_style(rng, explicit_sign=False, padding="same_zero", k_scaled=False):
    """Binary conv -> maxpool -> batchnorm -> binary conv, the order Larq's
    BinaryAlexNet and LeNet examples use (negative gammas included)."""
    net = Net(rng, [13, 13, 3])
    net.conv(12, 3, "float")
    net.bn()
    net.conv(70, 3, "binary", padding="same_one")
    net.pool("maxpool", 3, 2, "same")
    net.bn(spread=6.0)
    if explicit_sign:
        net.op("sign")
    net.conv(9, 3, "binary_k" if k_scaled else "binary", padding=padding)
    net.pool("maxpool", 2, 2, "valid")
    net.bn(spread=6.0)
    net.conv(7, 1, "binary", padding="valid")
    net.bn(spread=2.0)
    net.op("flatten")
    net.dense(4, "float")
    return net.build()


def awkward_chain(rng, channels, size, stride, padding, scheme, head="sign"):
    """One binary-style block on awkward shapes: conv(scheme) -> BN ->
    [sign|relu|none] -> binary conv -> BN -> global avgpool."""
    net = Net(rng, [size[0], size[1], channels])
    net.conv(channels, 3, scheme, stride=stride, padding=padding)
    net.bn(spread=4.0)
    if head in ("sign", "relu"):
        net.op(head)
    net.conv(65, 3, "binary", stride=1, padding="same_one" if padding == "same_one" else "same_zero")
    net.bn(spread=5.0)
    net.op("global_avgpool")
    return net.build(labels=False)


def awkward_case(salt, channels, size, stride, padding, scheme):
    """(graph, input batch of 3) of one AWKWARD case, seeded by the case and
    `salt` (each test file its own draw); the head after the first conv
    cycles through sign / relu / none with the channel count."""
    rng = np.random.default_rng(
        zlib.crc32(f"{salt}{channels}{size}{stride}{padding}{scheme}".encode()))
    head = ("sign", "relu", "none")[channels % 3]
    graph = awkward_chain(rng, channels, size, stride, padding, scheme, head)
    return graph, rng.standard_normal([3] + graph.input.shape).astype(np.float32)


AWKWARD = [(c, size, stride, padding, scheme)
           for c in (1, 3, 63, 64, 65, 200)
           for size, stride in (((1, 1), 1), ((5, 7), 2), ((6, 6), 1))
           for padding in ("valid", "same_zero", "same_one")
           for scheme in ("binary", "binary_k", "binary_weights", "float")
           if not (padding == "valid" and size[0] < 5)
           and (c + size[1] + stride + len(padding) + len(scheme)) % 3 == 0]
