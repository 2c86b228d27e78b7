"""Float64 evaluation of UNFOLDED graph ops (docs/FORMAT.md section 4) with
a worst-case bound on the rounding error of one float32 evaluation.

evaluate(op, values, errors) -> (value, error): `value` is the op's result
in float64 (for our purposes exact), `error` an elementwise bound on how far
ANY float32 evaluation of the same formula (Keras's, in its own order of
operations, or edgebnn's folded one) can land from it, given inputs that are
themselves `errors` away. The bounds follow the standard forward error
analysis: a sum of n products is off by at most gamma(n) * sum |products|,
gamma(n) = n u / (1 - n u), u = 2^-24 (Higham, Accuracy and Stability of
Numerical Algorithms, ch. 3). Two float32 evaluations of the same value can
therefore differ by up to twice the bound, which is what the equivalence
check allows.

Binary dots (sign(x) . sign(w)) are exact integers in float32 as long as
the fan-in is below 2^24, so they carry no error -- unless the Keras layer
multiplied the scale into the weights first (Larq's MagnitudeAwareSign):
then the sum is a float sum (`float_acc=True`).
"""
import numpy as np

from edgebnn.bits import unpack_signs

from .folded_numpy import windows

U = 2.0 ** -24
TINY = 2.0 ** -126     # smallest normal float32: TensorFlow flushes subnormals to zero


def gamma(n):
    n = np.asarray(n, np.float64)
    return n * U / (1 - n * U)


def _sign(x):
    return np.where(x < 0, -1.0, 1.0)


def _weights(op):
    w = op.compute_params()["weight"]
    if op.attrs["scheme"] != "float":
        w = unpack_signs(w, op.fan_in, np.float64)
    return np.asarray(w, np.float64)


def _alpha(op, n):
    if op.attrs["alpha"] == "none":
        return np.ones(n)
    return np.broadcast_to(op.compute_params()["alpha"].astype(np.float64), (n,))


def _weighted(op, x, float_acc):
    a = op.attrs
    binary = a["scheme"] == "binary"
    inp = _sign(x) if binary else x
    w = _weights(op)
    n_out = w.shape[0]
    exact_dot = binary and not float_acc
    if op.type == "conv2d":
        kh, kw = a["kernel"]
        fill = 1.0 if a["padding"] == "same_one" else 0.0
        win = windows(inp, a["kernel"], a["strides"], a["padding"], fill)
        n, oh, ow = win.shape[:3]
        cols = win.reshape(n * oh * ow, -1)
        wmat = w.transpose(0, 3, 1, 2).reshape(n_out, -1)      # [O, C*kh*kw]
        dot = (cols @ wmat.T).reshape(n, oh, ow, n_out)
        absdot = None if exact_dot else (np.abs(cols) @ np.abs(wmat).T).reshape(dot.shape)
        k = None
        if a["input_scaling"] == "mean_abs":
            amap = np.abs(x).mean(axis=-1, keepdims=True)
            k = windows(amap, a["kernel"], a["strides"], a["padding"], 0.0).sum(
                axis=(3, 4, 5))[..., None] / (kh * kw)
            k_terms = x.shape[-1] + kh * kw + 2
        fan = cols.shape[1]
    else:
        dot = inp @ w.T
        absdot = None if exact_dot else np.abs(inp) @ np.abs(w).T
        k = None
        if a["input_scaling"] == "mean_abs":
            k = np.abs(x).mean(axis=-1, keepdims=True)
            k_terms = x.shape[-1] + 2
        fan = w.shape[1]
    alpha = _alpha(op, n_out)
    bias = op.compute_params()["bias"].astype(np.float64) if a["use_bias"] else 0.0
    scale = alpha if k is None else k * alpha
    y = dot * scale + bias
    err = gamma(3) * (np.abs(dot * scale) + np.abs(bias))
    if absdot is not None:
        err = err + gamma(fan) * absdot * np.abs(scale)
    if k is not None:
        err = err + gamma(k_terms) * np.abs(dot * scale)
    return y, err


def _pool(op, x, e):
    a = op.attrs
    if op.type == "maxpool":
        v = windows(x, a["pool"], a["strides"], a["padding"], -np.inf).max(axis=(4, 5))
        return v, windows(e, a["pool"], a["strides"], a["padding"], 0.0).max(axis=(4, 5))
    ones = np.ones(x.shape[:3] + (1,))
    count = windows(ones, a["pool"], a["strides"], a["padding"], 0.0).sum(axis=(4, 5))
    v = windows(x, a["pool"], a["strides"], a["padding"], 0.0).sum(axis=(4, 5)) / count
    mag = windows(np.abs(x) * gamma(np.prod(a["pool"]) + 1) + e, a["pool"], a["strides"],
                  a["padding"], 0.0).sum(axis=(4, 5)) / count
    return v, mag


def _lrn(op, x, e):
    a, r = op.attrs, op.attrs["depth_radius"]
    c = x.shape[-1]
    sq = np.pad(x * x, ((0, 0), (0, 0), (0, 0), (r, r)))
    ssum = sum(sq[..., i:i + c] for i in range(2 * r + 1))
    factor = (a["bias"] + a["alpha"] * ssum) ** -a["beta"]
    v = x * factor
    # pow is not correctly rounded: allow a generous number of ulps
    return v, np.abs(v) * gamma(2 * r + 40) + e * factor * (1 + 2 * abs(a["beta"]))


def evaluate(op, xs, es, float_acc=False):
    """(value, error bound) of unfolded op `op` on float64 inputs xs with
    error bounds es (same shapes)."""
    t = op.type
    x = xs[0]
    e = es[0]
    if t in ("conv2d", "dense"):
        # conv/dense inputs are always Keras tensors fed as they are (e == 0)
        return _weighted(op, x, float_acc)
    if t == "batchnorm":
        p = {k: v.astype(np.float64) for k, v in op.compute_params().items()}
        s = p["gamma"] / np.sqrt(p["var"] + op.attrs["eps"])
        v = s * (x - p["mean"]) + p["beta"]
        err = np.abs(s) * e + gamma(10) * (np.abs(s) * (np.abs(x) + np.abs(p["mean"]))
                                           + np.abs(p["beta"]))
        return v, err
    if t == "relu":
        return np.maximum(x, 0.0), e
    if t == "hardtanh":
        return np.clip(x, -1.0, 1.0), e
    if t == "sign":
        return _sign(x), np.zeros_like(x)
    if t in ("maxpool", "avgpool"):
        return _pool(op, x, e)
    if t == "global_avgpool":
        hw = x.shape[1] * x.shape[2]
        return x.mean(axis=(1, 2)), e.mean(axis=(1, 2)) + gamma(hw + 1) * np.abs(x).mean(
            axis=(1, 2))
    if t == "lrn":
        return _lrn(op, x, e)
    if t == "add":
        v = x + xs[1]
        return v, e + es[1] + 2 * U * (np.abs(x) + np.abs(xs[1]))
    if t == "flatten":
        return x.reshape(len(x), -1), e.reshape(len(e), -1)
    if t == "softmax":
        shifted = x - x.max(axis=1, keepdims=True)
        z = np.exp(shifted)
        p = z / z.sum(axis=1, keepdims=True)
        # exp turns the rounding of (x - max) into a relative error of |x - max| u
        return p, p * (gamma(x.shape[1] + 20) + 2 * U * np.abs(shifted)
                       + 2 * e.max(axis=1, keepdims=True))
    raise ValueError(f"op {op.name!r}: no reference for type {t!r}")
