"""Oracle of the folded ops: runs a FOLDED graph in plain numpy (float32),
op for op what the compiled engine computes (integer dots, thresholds,
output stage). Tests compare the compiled plans against it (and it against
the unfolded float64 reference, tests/reference_executor.py):
NumpyExecutor(graph).run(x) -> float32 output.

Bits tensors are carried as +-1 float32 values (unpacked): the same numbers
the packed words stand for.
"""
import numpy as np

from edgebnn.bits import unpack_signs
from edgebnn.ops import pad_before

_BINARY_INPUT = ("fused_conv2d", "fused_dense")


def _pads(size, k, s, padding):
    if padding == "valid":
        return 0, 0
    out = -(-size // s)
    total = max((out - 1) * s + k - size, 0)
    return pad_before(size, k, s), total - pad_before(size, k, s)


def windows(x, kernel, strides, padding, fill):
    """x [N,H,W,C] -> [N,OH,OW,C,kh,kw] (a view where possible)."""
    (kh, kw), (sh, sw) = kernel, strides
    pt, pb = _pads(x.shape[1], kh, sh, padding)
    pl, pr = _pads(x.shape[2], kw, sw, padding)
    if pt or pb or pl or pr:
        x = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)), constant_values=fill)
    win = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(1, 2))
    return win[:, ::sh, ::sw]


class _Fused:
    """A fused conv/dense with its weights unpacked once."""

    def __init__(self, op):
        self.op, a = op, op.attrs
        self.p = op.compute_params()
        w = self.p["weight"]
        if a["scheme"] != "float":
            w = unpack_signs(w, op.fan_in)
        w = w.astype(np.float32)
        if op.type == "fused_conv2d":       # [O, kh, kw, C] -> [C*kh*kw, O]
            w = w.transpose(0, 3, 1, 2)
        self.w = np.ascontiguousarray(w.reshape(w.shape[0], -1).T)

    def __call__(self, x):
        op, a = self.op, self.op.attrs
        xin = np.where(x < 0, -1.0, 1.0).astype(np.float32) if a["scheme"] == "binary" else x
        if op.type == "fused_conv2d":
            fill = 1.0 if a["padding"] == "same_one" else 0.0
            win = windows(xin, a["kernel"], a["strides"], a["padding"], fill)
            n, oh, ow = win.shape[:3]
            acc = (win.reshape(n * oh * ow, -1) @ self.w).reshape(n, oh, ow, -1)
        else:
            acc = xin @ self.w
        if "thresholds" in self.p:
            dot = np.rint(acc).astype(np.int64)
            thr, flip = self.p["thresholds"], self.p["flip"].astype(bool)
            neg = np.where(flip, dot > thr, dot < thr)
            return np.where(neg, -1.0, 1.0).astype(np.float32)
        if a["input_scaling"] == "mean_abs":
            acc = acc * self._kmap(x)
        v = acc * self.p.get("mul", np.float32(1)) + self.p.get("bias", np.float32(0))
        if a["output"] == "bits":
            return np.where(v < 0, -1.0, 1.0).astype(np.float32)
        if a["clamp"] is not None:
            lo, hi = a["clamp"]
            v = np.clip(v, lo, hi)
        return v.astype(np.float32)

    def _kmap(self, x):
        a = self.op.attrs
        amap = np.abs(x).mean(axis=-1, keepdims=True, dtype=np.float32)
        if self.op.type == "fused_dense":
            return amap
        kh, kw = a["kernel"]
        win = windows(amap, a["kernel"], a["strides"], a["padding"], 0.0)
        return win.sum(axis=(3, 4, 5), dtype=np.float32)[..., None] / np.float32(kh * kw)


def _pool(op, x):
    a = op.attrs
    if op.type == "maxpool":
        return windows(x, a["pool"], a["strides"], a["padding"], -np.inf).max(axis=(4, 5))
    total = windows(x, a["pool"], a["strides"], a["padding"], 0.0).sum(axis=(4, 5))
    ones = np.ones(x.shape[:3] + (1,), np.float32)
    count = windows(ones, a["pool"], a["strides"], a["padding"], 0.0).sum(axis=(4, 5))
    return (total / count).astype(np.float32)


def _lrn(op, x):
    a, r = op.attrs, op.attrs["depth_radius"]
    sq = np.pad(x * x, ((0, 0), (0, 0), (0, 0), (r, r)))
    c = x.shape[3]
    ssum = np.zeros_like(x)
    for i in range(2 * r + 1):
        ssum += sq[..., i:i + c]
    return (x / (np.float32(a["bias"]) + np.float32(a["alpha"]) * ssum)
            ** np.float32(a["beta"])).astype(np.float32)


def _batchnorm(op, x):
    p = op.compute_params()
    scale = p["gamma"] / np.sqrt(p["var"] + np.float32(op.attrs["eps"]))
    return (x - p["mean"]) * scale + p["beta"]


def _softmax(x):
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


_SIMPLE = {
    "batchnorm": lambda op, x: _batchnorm(op, x[0]),
    "relu": lambda op, x: np.maximum(x[0], np.float32(0)),
    "hardtanh": lambda op, x: np.clip(x[0], np.float32(-1), np.float32(1)),
    "sign": lambda op, x: np.where(x[0] < 0, -1.0, 1.0).astype(np.float32),
    "maxpool": lambda op, x: _pool(op, x[0]),
    "avgpool": lambda op, x: _pool(op, x[0]),
    "global_avgpool": lambda op, x: x[0].mean(axis=(1, 2), dtype=np.float32),
    "lrn": lambda op, x: _lrn(op, x[0]),
    "add": lambda op, x: x[0] + x[1],
    "flatten": lambda op, x: x[0].reshape(x[0].shape[0], -1),
    "softmax": lambda op, x: _softmax(x[0]),
}


class NumpyExecutor:
    """Runs a folded Graph; name = 'numpy' (reported by Model / the CLI)."""
    name = "numpy"

    def __init__(self, graph):
        self.graph = graph
        self.steps = []
        for op in graph.ops:
            if op.type in _BINARY_INPUT:
                fn = _Fused(op)
                self.steps.append((op, lambda op, x, fn=fn: fn(x[0])))
            elif op.type in _SIMPLE:
                self.steps.append((op, _SIMPLE[op.type]))
            else:
                raise ValueError(f"op {op.name!r}: type {op.type!r} must be folded first")

    def run(self, x, threads=1):
        """threads is accepted for interface parity and ignored."""
        values = {self.graph.input.name: np.asarray(x, np.float32)}
        remaining = {}
        for op in self.graph.ops:
            for name in op.inputs:
                remaining[name] = remaining.get(name, 0) + 1
        for op, fn in self.steps:
            values[op.name] = fn(op, [values[n] for n in op.inputs]).astype(np.float32, copy=False)
            for name in op.inputs:      # free activations nobody needs any more
                remaining[name] -= 1
                if remaining[name] == 0 and name != self.graph.output:
                    del values[name]
        return values[self.graph.output]
