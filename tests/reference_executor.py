"""Test oracle: a plain numpy (float64) executor of the UNFOLDED graph, the
float semantics of docs/FORMAT.md written as directly as possible. No
packing, no thresholds, no tricks; slow and obviously right.

The order of float operations in conv/dense + batchnorm is part of the
format's semantics (integer thresholds must reproduce it bit for bit):
    y = dot [* K] * alpha ; y = y + bias ; z = gamma * (y - mean) / sqrt(var + eps) + beta
"""
import numpy as np

from edgebnn.bits import unpack_signs


def sign(x):
    return np.where(x < 0, -1.0, 1.0)


def _pads(size, k, s, padding):
    if padding == "valid":
        return 0, 0
    out = -(-size // s)
    total = max((out - 1) * s + k - size, 0)
    return total // 2, total - total // 2


def _windows(x, kh, kw, sh, sw, padding, fill):
    """x [N,H,W,C] -> windows [N,OH,OW,C,kh,kw] with TF padding by `fill`."""
    pt, pb = _pads(x.shape[1], kh, sh, padding)
    pl, pr = _pads(x.shape[2], kw, sw, padding)
    xp = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)), constant_values=fill)
    win = np.lib.stride_tricks.sliding_window_view(xp, (kh, kw), axis=(1, 2))
    return win[:, ::sh, ::sw]


def _weights(op, fan_in_channels):
    w = op.params["weight"]
    if op.attrs["scheme"] == "float":
        return w.astype(np.float64)
    return unpack_signs(w, fan_in_channels, np.float64)


def conv2d(op, x):
    a = op.attrs
    kh, kw = a["kernel"]
    sh, sw = a["strides"]
    c = x.shape[3]
    w = _weights(op, c)                               # [O, kh, kw, C]
    xin = sign(x) if a["scheme"] == "binary" else x
    fill = 1.0 if a["padding"] == "same_one" else 0.0
    win = _windows(xin, kh, kw, sh, sw, a["padding"], fill)
    y = np.einsum("nhwcij,oijc->nhwo", win, w)
    if a["input_scaling"] == "mean_abs":
        amap = np.abs(x).mean(axis=3, keepdims=True)
        kwin = _windows(amap, kh, kw, sh, sw, a["padding"], 0.0)
        y = y * (kwin.sum(axis=(3, 4, 5)) / (kh * kw))[..., None]
    return _bias(op, _alpha(op, y))


def dense(op, x):
    a = op.attrs
    w = _weights(op, x.shape[1])
    xin = sign(x) if a["scheme"] == "binary" else x
    y = xin @ w.T
    if a["input_scaling"] == "mean_abs":
        y = y * np.abs(x).mean(axis=1, keepdims=True)
    return _bias(op, _alpha(op, y))


def _alpha(op, dot):
    if op.attrs["alpha"] == "none":
        return dot
    return dot * op.params["alpha"].astype(np.float64)


def _bias(op, y):
    if op.attrs["use_bias"]:
        y = y + op.params["bias"].astype(np.float64)
    return y


def batchnorm(op, x):
    p = {k: op.params[k].astype(np.float64) for k in ("gamma", "beta", "mean", "var")}
    return p["gamma"] * (x - p["mean"]) / np.sqrt(p["var"] + op.attrs["eps"]) + p["beta"]


def pool(op, x):
    kh, kw = op.attrs["pool"]
    sh, sw = op.attrs["strides"]
    if op.type == "maxpool":
        return _windows(x, kh, kw, sh, sw, op.attrs["padding"], -np.inf).max(axis=(4, 5))
    total = _windows(x, kh, kw, sh, sw, op.attrs["padding"], 0.0).sum(axis=(4, 5))
    ones = np.ones(x.shape[:3] + (1,))
    count = _windows(ones, kh, kw, sh, sw, op.attrs["padding"], 0.0).sum(axis=(4, 5))
    return total / count


def lrn(op, x):
    a = op.attrs
    r = a["depth_radius"]
    sq = np.pad(x * x, ((0, 0), (0, 0), (0, 0), (r, r)))
    c = x.shape[3]
    sqr_sum = sum(sq[..., i:i + c] for i in range(2 * r + 1))
    return x / (a["bias"] + a["alpha"] * sqr_sum) ** a["beta"]


def softmax(x):
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def run(graph, x):
    """Execute an unfolded Graph on x [N, *input shape] -> float64 output."""
    values = {graph.input.name: np.asarray(x, np.float64)}
    for op in graph.ops:
        ins = [values[n] for n in op.inputs]
        t = op.type
        if t == "conv2d":
            y = conv2d(op, ins[0])
        elif t == "dense":
            y = dense(op, ins[0])
        elif t == "batchnorm":
            y = batchnorm(op, ins[0])
        elif t == "relu":
            y = np.maximum(ins[0], 0.0)
        elif t == "hardtanh":
            y = np.clip(ins[0], -1.0, 1.0)
        elif t == "sign":
            y = sign(ins[0])
        elif t in ("maxpool", "avgpool"):
            y = pool(op, ins[0])
        elif t == "global_avgpool":
            y = ins[0].mean(axis=(1, 2))
        elif t == "lrn":
            y = lrn(op, ins[0])
        elif t == "add":
            y = ins[0] + ins[1]
        elif t == "flatten":
            y = ins[0].reshape(ins[0].shape[0], -1)
        elif t == "softmax":
            y = softmax(ins[0])
        else:
            raise AssertionError(f"reference executor has no op {t!r}")
        values[op.name] = y
    return values[graph.output]
