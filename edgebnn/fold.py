"""Folding: the plan-building pass. Each conv2d/dense, with the batchnorm,
relu/hardtanh and sign that follow it alone, becomes one fused op whose
output stage is exactly what the engine computes:

    v = acc * K[pixel] * mul[f] + bias[f], clamped            (float output)
    bit = flip[f] ? acc > thr[f] : acc < thr[f]                (bits, integer)
    bit = v < 0                                                (bits, float compare)

Integer thresholds come from the float semantics of docs/FORMAT.md
(float64, that exact order of operations) so that the integer comparison
agrees with sign(z) at every possible dot in [-fan_in, fan_in]: exact, not
merely close. A fused op keeps the name of the last op it absorbs, so every other
reference stays valid. conv -> maxpool -> batchnorm [-> sign] feeding binary
convs also becomes bits (see _pool_pattern); conv -> maxpool -> batchnorm
-> flatten feeding binary denses moves the batchnorm into the conv's float
stage (see _flatten_pattern). fold() of a folded graph
returns it unchanged.
"""
import json

import numpy as np

from .bits import pack_signs
from .graph import Graph


def _scale_terms(op, bn):
    """Per-filter float64 arrays (alpha, bias, bn) describing y and z."""
    n = op.attrs.get("filters") or op.attrs["units"]
    alpha = np.ones(n)
    if op.attrs["alpha"] != "none":
        alpha = np.broadcast_to(op.params["alpha"].astype(np.float64), (n,)).copy()
    bias = op.params["bias"].astype(np.float64) if op.attrs["use_bias"] else None
    bnp = None
    if bn is not None:
        bnp = {k: bn.params[k].astype(np.float64) for k in ("gamma", "beta", "mean", "var")}
        bnp["eps"] = bn.attrs["eps"]
    return alpha, bias, bnp


def float_formula(dot, alpha, bias, bn):
    """z of the unfolded layer for accumulator values `dot` (broadcasting),
    in the order of operations the format defines."""
    y = dot * alpha
    if bias is not None:
        y = y + bias
    if bn is not None:
        y = bn["gamma"] * (y - bn["mean"]) / np.sqrt(bn["var"] + bn["eps"]) + bn["beta"]
    return y


def integer_thresholds(fan_in, alpha, bias, bn):
    """(thr int32[O], flip uint8[O]) so that for every integer dot in
    [-fan_in, fan_in]: (flip ? dot > thr : dot < thr) == (z(dot) < 0).

    z is monotone in dot (each IEEE operation of float_formula is monotone),
    so the sign changes at most once and a per-channel bisection over the
    dot range finds it exactly (tests check every dot exhaustively)."""
    def negative(dot):
        return float_formula(dot.astype(np.float64), alpha, bias, bn) < 0

    n = len(alpha)
    lo = np.full(n, -fan_in, np.int64)
    hi = np.full(n, fan_in, np.int64)
    neg_lo, neg_hi = negative(lo), negative(hi)
    falling = neg_lo & ~neg_hi          # -1 for small dots: bit = dot < thr
    rising = ~neg_lo & neg_hi           # -1 for large dots: bit = dot > thr
    while np.any(hi - lo > 1):
        mid = (lo + hi) // 2
        m = negative(mid)
        # keep neg(lo) == neg_lo and neg(hi) == neg_hi
        move_lo = m == neg_lo
        lo = np.where(move_lo, mid, lo)
        hi = np.where(move_lo, hi, mid)
    thr = np.where(falling, hi, np.where(rising, lo, 0))
    # constant channels: all -1 -> dot < fan_in + 1; all +1 -> dot < -fan_in
    const = ~(falling | rising)
    thr = np.where(const & neg_lo, fan_in + 1, np.where(const, -fan_in, thr))
    return thr.astype(np.int32), rising.astype(np.uint8)


def _accepts_bits(graph, name, through_sign):
    """True if every consumer of `name` binarizes it anyway (so a packed
    output loses nothing). Without an explicit sign, a K-scaled consumer
    needs |x| and therefore the float values. Maxpool chains are followed
    (max commutes with sign: an AND of bits)."""
    pending = [name]
    while pending:
        current = pending.pop()
        cons = graph.consumers(current)
        if not cons or current == graph.output:
            return False
        for c in cons:
            if c.type in ("conv2d", "dense") and c.attrs["scheme"] == "binary":
                if c.attrs["input_scaling"] != "none" and not through_sign:
                    return False
            elif c.type == "maxpool":
                pending.append(c.name)
            else:
                return False
    return True


def _only_consumer(graph, name, types):
    cons = graph.consumers(name)
    if len(cons) == 1 and name != graph.output and cons[0].type in types:
        return cons[0]
    return None


def _stage(op, bn, bits, negate=None):
    """Output-stage tensors of the fused op. negate: channels whose bits are
    stored inverted (see _pool_pattern)."""
    alpha, bias, bnp = _scale_terms(op, bn)
    if bits and op.attrs["scheme"] == "binary" and op.attrs["input_scaling"] == "none":
        thr, flip = integer_thresholds(op.fan_in * _taps(op), alpha, bias, bnp)
        if negate is not None:
            # not (dot < t) == dot > t - 1 ; not (dot > t) == dot < t + 1
            thr = np.where(negate, np.where(flip == 1, thr + 1, thr - 1), thr).astype(np.int32)
            flip = np.where(negate, 1 - flip, flip).astype(np.uint8)
        return {"thresholds": thr, "flip": flip}
    # z = acc * K * mul + bias: the affine map float_formula applies
    zero = float_formula(0.0, alpha, bias, bnp)
    mul = float_formula(1.0, alpha, bias, bnp) - zero
    if negate is not None:      # -z < 0 is z > 0: differs from not(z < 0) only at z == 0
        mul, zero = np.where(negate, -mul, mul), np.where(negate, -zero, zero)
    return {"mul": mul.astype(np.float32), "bias": np.asarray(zero, np.float32)}


def _pool_pattern(graph, op):
    """X -> maxpool -> batchnorm [-> sign] -> binary consumers: the bits can
    be made before the pool (a bits maxpool is an AND). Where gamma < 0 the
    batchnorm reverses the order, max becomes min, and the AND works on
    inverted bits; the consumers' weights are inverted for those channels to
    match (+-1 * -1 per tap), which zero padding tolerates but +1 padding
    does not. Returns (pool, bn, sign or None, negate mask or None) or None."""
    if op.type != "conv2d":
        return None
    pool = _only_consumer(graph, op.name, ("maxpool",))
    bn = pool and _only_consumer(graph, pool.name, ("batchnorm",))
    if bn is None:
        return None
    sign = _only_consumer(graph, bn.name, ("sign",))
    last = sign or bn
    if not _accepts_bits(graph, last.name, sign is not None):
        return None
    negate = bn.params["gamma"] < 0
    if not negate.any():
        return pool, bn, sign, None
    for c in graph.consumers(last.name):
        if c.type != "conv2d" or c.attrs["padding"] == "same_one":
            return None
    return pool, bn, sign, negate


def _flatten_pattern(graph, op):
    """conv -> maxpool -> batchnorm -> flatten -> binary dense(s): the
    batchnorm moves into the conv's float output stage, before the pool.
    Max commutes with a non-decreasing map; where gamma < 0 the stage
    writes -z instead, so the pool takes max(-z) = -(the wanted value) and
    the consumers' weights are inverted on those features (a binary dense
    reads only sign and |x|; the sign differs only at exactly 0, as in
    _pool_pattern). Returns (pool, bn, flatten, per-feature negate mask or
    None) or None."""
    if op.type != "conv2d":
        return None
    pool = _only_consumer(graph, op.name, ("maxpool",))
    bn = pool and _only_consumer(graph, pool.name, ("batchnorm",))
    flat = bn and _only_consumer(graph, bn.name, ("flatten",))
    if flat is None:
        return None
    cons = graph.consumers(flat.name)
    if flat.name == graph.output or not cons or any(
            c.type != "dense" or c.attrs["scheme"] != "binary" for c in cons):
        return None
    negate = bn.params["gamma"] < 0
    if not negate.any():
        return pool, bn, flat, None
    h, w, _ = graph.shape_of(pool.name)
    return pool, bn, flat, np.tile(negate, h * w)


def _fuse(graph, op, absorbed, negated):
    """Fused op docs + tensors for op followed by its absorbable chain:
    [(name, type, inputs, attrs, tensors)]."""
    weight = op.params["weight"]
    if op.inputs[0] in negated:                 # its input bits come inverted
        weight = weight ^ pack_signs(np.where(negated[op.inputs[0]], -1.0, 1.0))
    attrs = {k: v for k, v in op.attrs.items() if k not in ("alpha", "use_bias")}
    attrs["clamp"] = None

    pattern = _pool_pattern(graph, op)
    if pattern is not None:
        pool, bn, sign, negate = pattern
        last = sign or bn
        absorbed.update(o.name for o in (pool, bn, sign) if o is not None)
        if negate is not None:
            negated[last.name] = negate
        attrs["output"] = "bits"
        fused = (op.name, "fused_" + op.type, list(op.inputs), attrs,
                 {"weight": weight, **_stage(op, bn, True, negate)})
        return [fused, (last.name, "maxpool", [op.name], pool.attrs, {})]

    pattern = _flatten_pattern(graph, op)
    if pattern is not None:
        pool, bn, flat, negate = pattern
        absorbed.update((pool.name, bn.name))
        if negate is not None:
            negated[flat.name] = negate
        attrs["output"] = "float"
        channels = None if negate is None else bn.params["gamma"] < 0
        fused = (op.name, "fused_" + op.type, list(op.inputs), attrs,
                 {"weight": weight, **_stage(op, bn, False, channels)})
        return [fused, (bn.name, "maxpool", [op.name], pool.attrs, {})]

    bn = _only_consumer(graph, op.name, ("batchnorm",))
    last = bn or op
    act = _only_consumer(graph, last.name, ("relu", "hardtanh", "sign"))
    if act is not None and act.type == "sign" and not _accepts_bits(graph, act.name, True):
        act = None              # keep the sign op; fuse only up to it
    if act is not None:
        last = act
    absorbed.update(o.name for o in (bn, act) if o is not None)
    if act is not None and act.type == "sign":
        bits = True
    else:
        bits = act is None and _accepts_bits(graph, last.name, False)
    attrs["output"] = "bits" if bits else "float"
    if act is not None and act.type == "relu":
        attrs["clamp"] = [0.0, None]
    elif act is not None and act.type == "hardtanh":
        attrs["clamp"] = [-1.0, 1.0]
    return [(last.name, "fused_" + op.type, list(op.inputs), attrs,
             {"weight": weight, **_stage(op, bn, bits)})]


def _taps(op):
    return op.attrs["kernel"][0] * op.attrs["kernel"][1] if op.type == "conv2d" else 1


def fold(graph):
    """Return the folded Graph (validated like any loaded file). Its
    `origin` maps each plan op name to the source ops it computes."""
    absorbed, negated = set(), {}
    docs, tensors, origin = [], {}, {}
    for op in graph.ops:
        if op.name in absorbed:
            continue
        if op.type in ("conv2d", "dense"):
            before = set(absorbed)
            fused = _fuse(graph, op, absorbed, negated)
            merged = [op.name] + [o.name for o in graph.ops if o.name in absorbed - before]
            for name, typ, inputs, attrs, params in fused:
                origin[name] = merged if typ.startswith("fused_") else [o for o in merged
                                                                         if o != op.name]
                doc = {"name": name, "type": typ, "inputs": inputs, "attrs": attrs,
                       "params": {}}
                for role, arr in params.items():
                    doc["params"][role] = f"{name}.{role}"
                    tensors[f"{name}.{role}"] = arr
                docs.append(doc)
            continue
        doc = op.to_doc()
        for role, arr in op.params.items():
            tensors[op.tensor_names[role]] = arr
        docs.append(doc)
        origin[op.name] = [op.name]
    doc = {"name": graph.name, "input": graph.input.to_doc(), "ops": docs,
           "output": graph.output, "labels": graph.labels}
    folded = Graph.from_doc(json.loads(json.dumps(doc)), tensors)
    folded.origin = origin
    return folded
