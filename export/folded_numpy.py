"""Single ops of a FOLDED graph in numpy (float32), as docs/FORMAT.md
section 5 defines them: what the equivalence check runs op by op on Keras's
values when the runtime offers no single-op entry point. Bits are carried
as +-1 floats."""
import numpy as np

from edgebnn.bits import unpack_signs
from edgebnn.ops import pad_before


def _pads(size, k, s, padding):
    if padding == "valid":
        return 0, 0
    total = max((-(-size // s) - 1) * s + k - size, 0)
    return pad_before(size, k, s), total - pad_before(size, k, s)


def windows(x, kernel, strides, padding, fill):
    """x [N,H,W,C] -> [N,OH,OW,C,kh,kw] (TF geometry; `fill` in padded taps)."""
    (kh, kw), (sh, sw) = kernel, strides
    pt, pb = _pads(x.shape[1], kh, sh, padding)
    pl, pr = _pads(x.shape[2], kw, sw, padding)
    if pt or pb or pl or pr:
        x = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)), constant_values=fill)
    return np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(1, 2))[:, ::sh, ::sw]


def _fused(op, x):
    a, p = op.attrs, op.compute_params()
    w = p["weight"]
    if a["scheme"] != "float":
        w = unpack_signs(w, op.fan_in)
    w = w.astype(np.float32)
    xin = np.where(x < 0, -1.0, 1.0).astype(np.float32) if a["scheme"] == "binary" else x
    if op.type == "fused_conv2d":
        fill = 1.0 if a["padding"] == "same_one" else 0.0
        win = windows(xin, a["kernel"], a["strides"], a["padding"], fill)
        n, oh, ow = win.shape[:3]
        wmat = w.transpose(0, 3, 1, 2).reshape(w.shape[0], -1).T
        acc = (win.reshape(n * oh * ow, -1) @ wmat).reshape(n, oh, ow, -1)
    else:
        acc = xin @ w.T
    if "thresholds" in p:
        dot = np.rint(acc).astype(np.int64)
        neg = np.where(p["flip"].astype(bool), dot > p["thresholds"], dot < p["thresholds"])
        return np.where(neg, -1.0, 1.0).astype(np.float32)
    if a["input_scaling"] == "mean_abs":
        amap = np.abs(x).mean(axis=-1, keepdims=True, dtype=np.float32)
        if op.type == "fused_conv2d":
            kh, kw = a["kernel"]
            amap = windows(amap, a["kernel"], a["strides"], a["padding"], 0.0).sum(
                axis=(3, 4, 5), dtype=np.float32)[..., None] / np.float32(kh * kw)
        acc = acc * amap
    v = acc * p.get("mul", np.float32(1)) + p.get("bias", np.float32(0))
    if a["output"] == "bits":
        return np.where(v < 0, -1.0, 1.0).astype(np.float32)
    if a["clamp"] is not None:
        lo, hi = a["clamp"]
        v = np.clip(v, lo, hi)
    return v.astype(np.float32)


def _pool(op, x):
    a = op.attrs
    if op.type == "maxpool":
        return windows(x, a["pool"], a["strides"], a["padding"], -np.inf).max(axis=(4, 5))
    total = windows(x, a["pool"], a["strides"], a["padding"], 0.0).sum(axis=(4, 5))
    ones = np.ones(x.shape[:3] + (1,), np.float32)
    return total / windows(ones, a["pool"], a["strides"], a["padding"], 0.0).sum(axis=(4, 5))


def _lrn(op, x):
    a, r, c = op.attrs, op.attrs["depth_radius"], x.shape[3]
    sq = np.pad(x * x, ((0, 0), (0, 0), (0, 0), (r, r)))
    ssum = sum(sq[..., i:i + c] for i in range(2 * r + 1))
    return x / (np.float32(a["bias"]) + np.float32(a["alpha"]) * ssum) ** np.float32(a["beta"])


def _batchnorm(op, x):
    p = op.compute_params()
    return (x - p["mean"]) * (p["gamma"] / np.sqrt(p["var"] + np.float32(op.attrs["eps"]))) \
        + p["beta"]


def _softmax(x):
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


STEPS = {
    "fused_conv2d": lambda op, x: _fused(op, x[0]),
    "fused_dense": lambda op, x: _fused(op, x[0]),
    "batchnorm": lambda op, x: _batchnorm(op, x[0]),
    "relu": lambda op, x: np.maximum(x[0], np.float32(0)),
    "hardtanh": lambda op, x: np.clip(x[0], np.float32(-1), np.float32(1)),
    "sign": lambda op, x: np.where(x[0] < 0, -1.0, 1.0),
    "maxpool": lambda op, x: _pool(op, x[0]),
    "avgpool": lambda op, x: _pool(op, x[0]),
    "global_avgpool": lambda op, x: x[0].mean(axis=(1, 2), dtype=np.float32),
    "lrn": lambda op, x: _lrn(op, x[0]),
    "add": lambda op, x: x[0] + x[1],
    "flatten": lambda op, x: x[0].reshape(x[0].shape[0], -1),
    "softmax": lambda op, x: _softmax(x[0]),
}


def step(op, ins):
    """One folded op on float32 inputs -> float32 output."""
    return np.asarray(STEPS[op.type](op, ins), np.float32)
