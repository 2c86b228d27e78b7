"""From a folded graph to a compiled execution plan (edgebnn._engine.Plan):
every op becomes one C step over buffers allocated here once, so a run is
one call into C (one OpenMP region, the GIL released) however many layers
the model has. A plan is built per (batch size, threads, input dtype).

What the builder decides:
  - bits stay packed between binary layers; a float activation feeding a
    binary layer is packed by one bitpack step, shared by all its consumers;
  - K (input_scaling mean_abs): a K-map step from a float input, or for a
    packed (+-1) input the window coverage, constant, computed here once;
  - add(y, s) where y is a float conv/dense output with no clamp used only
    by that add: fused into y's output stage (the `residual` pointer);
  - a float conv/dense output (after its fused add) read by binary layers
    gets their packed signs from its own output stage (sign_bits), no
    bitpack step; so does a batchnorm of it read only by binary layers:
    without K scaling the batchnorm becomes per-channel float thresholds
    (bn_sign_rule, exact) and no step at all; with K scaling (the K map
    reads the batchnorm's floats) the stage also writes the batchnorm
    (norm) and packs its signs;
  - flatten is a reshaped view of the same buffer (no step);
  - step outputs share memory by lifetime (_Arena): a buffer whose last
    reader has run is reused by a later step, so a plan holds a few
    activations, not all of them (off for run_layers, which reads them all).
"""
import math

import numpy as np

_KINDS = {("fused_conv2d", "binary"): "bconv", ("fused_conv2d", "binary_weights"): "wconv",
          ("fused_conv2d", "float"): "fconv", ("fused_dense", "binary"): "bdense",
          ("fused_dense", "binary_weights"): "wdense", ("fused_dense", "float"): "fdense"}


def _clamp(c):
    if c is None:
        return None
    lo, hi = c
    return (-np.inf if lo is None else lo, np.inf if hi is None else hi)


def residual_fusions(graph):
    """{fused op name: (the add it absorbs, relu/hardtanh after the add or
    None)} where the add's other input is computed before the fused op (so
    it exists when the conv writes). The activation becomes the stage's
    clamp, which the kernels apply after the residual."""
    index = {op.name: i for i, op in enumerate(graph.ops)}
    index[graph.input.name] = -1
    fusions = {}
    for op in graph.ops:
        if op.type != "add":
            continue
        for mine, other in ((op.inputs[0], op.inputs[1]), (op.inputs[1], op.inputs[0])):
            prod = graph.by_name.get(mine)
            if (prod is not None and prod.type in _FUSABLE and prod.attrs["output"] == "float"
                    and prod.attrs["clamp"] is None and mine != graph.output
                    and len(graph.consumers(mine)) == 1 and mine != other
                    and index[other] < index[mine] and mine not in fusions):
                act = graph.consumers(op.name)
                act = act[0] if (len(act) == 1 and op.name != graph.output
                                 and act[0].type in ("relu", "hardtanh")) else None
                fusions[mine] = (op, act)
                break
    return fusions


_FUSABLE = ("fused_conv2d", "fused_dense")


def _float_keys(x):
    """int64 keys ordered like the float32 values x (non-NaN; -0 just below +0)."""
    u = np.asarray(x, np.float32).view(np.uint32).astype(np.int64)
    return np.where(u < 0x80000000, u, -(u & 0x7FFFFFFF) - 1)


def _key_floats(k):
    k = np.asarray(k, np.int64)
    u = np.where(k >= 0, k, (-(k + 1)) | 0x80000000)
    return u.astype(np.uint32).view(np.float32)


def _numpy_keeps_denormals():
    """True where numpy's float32 array arithmetic and compares are IEEE for
    denormals. numpy on 32-bit Raspberry Pi OS (armhf) runs its float32
    loops on NEON, which flushes denormals to zero, so a threshold searched
    for with numpy there could disagree with the engine (IEEE on every ISA)
    next to denormal values."""
    tiny = np.full(64, 1e-45, np.float32)       # long enough for the SIMD loops
    with np.errstate(all="ignore"):
        return bool((tiny > 0).all() and (tiny * np.float32(3) > tiny).all()
                    and (tiny - np.float32(0) != 0).all()
                    and (np.full(64, 1e-38, np.float32) * np.float32(0.5) > 0).all())


NUMPY_KEEPS_DENORMALS = _numpy_keeps_denormals()


def bn_sign_rule(a, b, d):
    """(thresholds, flip) with sign bit (x-a)*b+d < 0 (float32, in that order)
    == (flip ? x > t : x < t) for every float32 x, or None where no such
    per-channel rule exists (a non-finite parameter, or b == 0 with d < 0:
    the bit is then 1 for finite x - a only).

    For finite a, d and b > 0, x -> (x-a)*b+d is a chain of correctly
    rounded monotone operations, non-decreasing on [-inf, inf] with no NaN,
    so the x giving a negative result are exactly those below the smallest
    float t whose result is not negative (found by bisection on the ordered
    float32 keys); b < 0 mirrors it (x > t); b == 0 with d >= 0 never gives
    a negative result (t = -inf). -0 and +0 always give the same bit, so the
    float compare (-0 == +0) agrees with the key order.

    None too where numpy flushes denormals (NUMPY_KEEPS_DENORMALS), or if the
    rule ever failed its own check against the formula: the plan then lets
    the output stage compute the batch norm itself, which is exact anyway."""
    if not NUMPY_KEEPS_DENORMALS:
        return None
    a, b, d = (np.asarray(v, np.float32) for v in (a, b, d))
    if not (np.isfinite(a).all() and np.isfinite(b).all() and np.isfinite(d).all()):
        return None
    if ((b == 0) & (d < 0)).any():
        return None

    def neg(k):
        with np.errstate(over="ignore", invalid="ignore"):
            return (_key_floats(k) - a) * b + d < 0

    lo = np.full(a.shape, _float_keys(np.float32(-np.inf)), np.int64)
    hi = np.full(a.shape, _float_keys(np.float32(np.inf)), np.int64)
    up = b < 0                              # results fall as x rises
    while (hi - lo > 1).any():
        mid = lo + (hi - lo) // 2
        n = neg(mid)
        # b > 0: lo stays negative, hi not; b < 0: lo stays not, hi negative
        go_hi = np.where(up, ~n, n)
        lo, hi = np.where(go_hi, mid, lo), np.where(go_hi, hi, mid)
    t = np.where(up, _key_floats(lo), _key_floats(hi)).astype(np.float32)
    t[b == 0] = -np.inf
    flip = (up & (b != 0)).astype(np.uint8)
    # the rule on its own boundary and a few probes, against the formula
    with np.errstate(over="ignore", invalid="ignore"):
        probes = np.stack([np.nextafter(t, np.float32(-np.inf)), t,
                           np.nextafter(t, np.float32(np.inf)), np.zeros_like(t),
                           -np.zeros_like(t), a, np.full_like(t, np.inf), np.full_like(t, -np.inf)])
        want = (probes - a) * b + d < 0
    got = np.where(flip.astype(bool), probes > t, probes < t)
    if not (want == got).all():
        return None
    return t, flip


def sign_fusions(graph, residual, bn_rules):
    """{fused op name: (stream, batchnorm name or None, mode)}: the fused op's
    output stage packs the signs that binary layers read, of its stream (its
    own output or its fused add / activation: `stream`; mode "sign") or of a
    batchnorm of the stream read only by binary layers: mode "thresholds"
    when none of them has K scaling and bn_rules has the batchnorm's exact
    thresholds, else "norm" (the stage writes the batchnorm's floats too)."""
    def binary_reader(op):
        return op.type in _FUSABLE and op.attrs["scheme"] == "binary"

    found = {}
    for op in graph.ops:
        if op.type not in _FUSABLE or op.attrs["output"] != "float":
            continue
        stream = op.name
        if op.name in residual:
            add, act = residual[op.name]
            stream = act.name if act is not None else add.name
        readers = graph.consumers(stream)
        if any(binary_reader(r) for r in readers):
            found[op.name] = (stream, None, "sign")
            continue
        for bn in readers:
            users = graph.consumers(bn.name)
            if (bn.type == "batchnorm" and bn.name != graph.output and users
                    and all(binary_reader(r) for r in users)):
                exact = bn_rules.get(bn.name) is not None
                plain = all(r.attrs["input_scaling"] != "mean_abs" for r in users)
                found[op.name] = (stream, bn.name, "thresholds" if exact and plain else "norm")
                break
    return found


class Params:
    """Per-model constants shared by all its plans: widened parameters,
    batchnorm vectors, K coverage maps."""

    def __init__(self, graph, engine):
        self.graph, self.eng = graph, engine
        self.fused = {}
        self.coverage = {}
        self.residual = residual_fusions(graph)
        for op in graph.ops:
            if op.type in _FUSABLE:
                p = op.compute_params()
                w = np.ascontiguousarray(p["weight"])
                self.fused[op.name] = {k: np.ascontiguousarray(v) for k, v in p.items()}
                self.fused[op.name]["weight"] = w
            elif op.type == "batchnorm":
                p = op.compute_params()
                scale = p["gamma"] / np.sqrt(p["var"] + np.float32(op.attrs["eps"]))
                self.fused[op.name] = {k: np.ascontiguousarray(v, np.float32) for k, v in
                                       (("mean", p["mean"]), ("scale", scale),
                                        ("beta", p["beta"]))}
        self.bn_rules = {}
        for op in graph.ops:
            if op.type == "batchnorm":
                f = self.fused[op.name]
                self.bn_rules[op.name] = bn_sign_rule(f["mean"], f["scale"], f["beta"])
        self.signs = sign_fusions(graph, self.residual, self.bn_rules)

    def coverage_map(self, op, h, w):
        """K of a packed input: mean |x| is 1, so K is the window coverage."""
        key = (op.name, h, w)
        if key not in self.coverage:
            a = op.attrs
            ones = np.ones((1, h, w, 1), np.float32)
            self.coverage[key] = self.eng.kmap(ones, a["kernel"], a["strides"], a["padding"])[0]
        return self.coverage[key]


class _Arena:
    """Memory blocks handed out to step outputs and taken back once the last
    step reading them has run. Steps run in order with a barrier between
    them, so a block freed before op i may hold op i's output; a block is
    never shared by a step's inputs and its output."""

    def __init__(self):
        self.free, self.live, self.fresh = [], [], []

    def alloc(self, shape, dtype):
        nbytes = max(1, math.prod(shape) * dtype.itemsize)
        fits = [i for i, b in enumerate(self.free) if b.nbytes >= nbytes]
        if fits:
            block = self.free.pop(min(fits, key=lambda i: self.free[i].nbytes))
        else:
            block = np.empty(nbytes, np.uint8)
        self.fresh.append(block)
        return block[:nbytes].view(dtype).reshape(shape)

    def mark(self, last):
        """Blocks handed out since the previous mark are read until op `last`."""
        self.live += [[b, last] for b in self.fresh]
        self.fresh = []

    def extend(self, array, last):
        """An alias of `array` is read until op `last`."""
        base = array
        while base.base is not None and not any(base is b for b, _ in self.live):
            base = base.base
        for entry in self.live:
            if entry[0] is base:
                entry[1] = max(entry[1], last)

    def release_before(self, i):
        self.free += [b for b, last in self.live if last < i]
        self.live = [e for e in self.live if e[1] >= i]


class CompiledPlan:
    """A sealed engine Plan with its input buffer and output view."""

    def __init__(self, plan, input_buffer, output, names):
        self.plan, self.input, self.output, self.values = plan, input_buffer, output, names

    def run(self, threads):
        self.plan.run(threads)
        return self.output


def build(graph, params, batch, threads, uint8_input=False, fuse_residual=True):
    """CompiledPlan of `graph` (folded) for inputs [batch, *input shape].
    fuse_residual=False keeps every add a step of its own and every
    activation in its own buffer (each op's own output stays visible, for
    layer-by-layer comparisons)."""
    eng = params.eng
    plan = eng.Plan(threads)
    arena = _Arena() if fuse_residual else None
    if arena is not None:
        plan.allocator = arena.alloc
    last_use = {graph.output: math.inf}
    for i, op in enumerate(graph.ops):
        for name in op.inputs:
            last_use[name] = max(last_use.get(name, -1), i)

    def mark(last):
        if arena is not None:
            arena.mark(last)
    spec = graph.input
    shape = (batch,) + tuple(spec.shape)
    if uint8_input:
        raw = np.zeros(shape, np.uint8)
        pre, c = spec.preprocess, shape[-1]
        if pre is None:
            mean, std, scale, invert = 0.0, 1.0, 1.0, False
        else:
            mean, std, scale, invert = pre["mean"], pre["std"], pre["scale"], pre["invert"]
        vec = lambda v: np.ascontiguousarray(np.broadcast_to(np.asarray(v, np.float32), (c,)))  # noqa: E731
        x0 = plan.rows("u8_input", spec.name, raw, a=vec(mean), b=vec(std), lo=np.float32(scale),
                       radius=int(bool(invert)))
        mark(last_use.get(spec.name, -1))
        input_buffer = raw
    else:
        x0 = input_buffer = np.zeros(shape, np.float32)
    values = {spec.name: x0}
    packed = {}

    def packed_of(name):
        v = values[name]
        if v.dtype == np.uint64:
            return v
        if name not in packed:
            packed[name] = plan.rows("bitpack", name + "/bitpack", v)
            mark(last_use.get(name, -1))
        return packed[name]

    residual = params.residual if fuse_residual else {}
    signs = params.signs if fuse_residual else {}
    sign_bn = {bn for _, bn, _ in signs.values() if bn is not None}
    aliases = {}            # add name -> the fused op whose output it is
    for i, op in enumerate(graph.ops):
        if arena is not None:
            arena.release_before(i)
        a, ins = op.attrs, [values.get(n) for n in op.inputs]
        if op.type in _FUSABLE:
            add = residual.get(op.name)
            sign = signs.get(op.name)
            values[op.name] = _fused(plan, params, op, add, values, packed_of, batch,
                                     lambda: mark(i), sign)
            if add is not None:
                aliases[add[0].name] = op.name
                if add[1] is not None:
                    aliases[add[1].name] = op.name
            if sign is not None:
                stream, bn, mode = sign
                values[op.name], *extra = values[op.name]
                if mode == "sign":
                    packed[stream] = extra[0]
                elif mode == "thresholds":
                    values[bn] = extra[0]
                else:
                    values[bn], packed[bn] = extra
                mark(last_use.get(op.name, i))
                if arena is not None:      # they live as long as their readers
                    for a in extra:
                        arena.extend(a, last_use.get(stream if bn is None else bn, i))
                continue
        elif op.name in sign_bn:             # a batchnorm folded into signs
            pass
        elif op.name in aliases:             # a fused add or its activation
            values[op.name] = values[aliases[op.name]]
            if arena is not None:
                arena.extend(values[op.name], last_use.get(op.name, i))
        elif op.type == "add":
            values[op.name] = plan.rows("add", op.name, ins[0], ins[1])
        elif op.type == "maxpool" and ins[0].dtype == np.uint64:
            values[op.name] = plan.spatial("maxpool_bits", op.name, ins[0], op.shape[-1],
                                           a["pool"], a["strides"], a["padding"])
        elif op.type in ("maxpool", "avgpool"):
            values[op.name] = plan.spatial(op.type, op.name, ins[0], ins[0].shape[-1],
                                           a["pool"], a["strides"], a["padding"])
        elif op.type == "global_avgpool":
            values[op.name] = plan.global_avgpool(op.name, ins[0])
        elif op.type == "batchnorm":
            p = params.fused[op.name]
            values[op.name] = plan.rows("affine", op.name, ins[0], a=p["mean"], b=p["scale"],
                                        d=p["beta"])
        elif op.type in ("relu", "hardtanh"):
            lo, hi = (0.0, np.inf) if op.type == "relu" else (-1.0, 1.0)
            values[op.name] = plan.rows("clamp", op.name, ins[0], lo=lo, hi=hi)
        elif op.type == "sign":
            values[op.name] = plan.rows("sign", op.name, ins[0])
        elif op.type == "lrn":
            values[op.name] = plan.rows("lrn", op.name, ins[0], lo=a["bias"], hi=a["alpha"],
                                        beta=a["beta"], radius=a["depth_radius"])
        elif op.type == "softmax":
            values[op.name] = plan.rows("softmax", op.name, ins[0])
        elif op.type == "flatten":
            values[op.name] = ins[0].reshape(batch, -1)
            if arena is not None:
                arena.extend(ins[0], last_use.get(op.name, i))
        else:
            raise ValueError(f"op {op.name!r}: type {op.type!r} must be folded first")
        mark(last_use.get(op.name, i))
    out = values[graph.output]
    if out.dtype != np.float32:
        raise ValueError(f"output {graph.output!r} is packed bits; a model must end in floats")
    plan.seal()
    out = out.reshape((batch,) + tuple(graph.shape_of(graph.output)))
    return CompiledPlan(plan, input_buffer, out, values)


def _fused(plan, params, op, add, values, packed_of, batch, mark_here, sign=None):
    """The conv/dense step of op; `add` (None or (add, activation or None)) is
    fused in as its residual (and clamp). mark_here(): buffers made so far
    (the K map) are read by this op only. sign (None or (stream, batchnorm
    name or None, mode)): the stage also packs signs (and in mode "norm"
    writes the batchnorm); returns (output, [batchnorm,] bits)."""
    a, p, src = op.attrs, params.fused[op.name], op.inputs[0]
    kind = _KINDS[(op.type, a["scheme"])]
    conv = op.type == "fused_conv2d"
    x = packed_of(src) if a["scheme"] == "binary" else values[src]
    if not conv and x.ndim != 2:
        raise ValueError(f"op {op.name!r}: dense input must be [N, features]")
    stage = {"out": a["output"]}
    if "thresholds" in p:
        stage.update(thresholds=p["thresholds"], flip=p["flip"])
    else:
        stage.update(mul=p.get("mul"), bias=p.get("bias"), clamp=_clamp(a["clamp"]))
        if a["input_scaling"] == "mean_abs":
            stage["pixel_scale"] = _kscale(plan, params, op, src, values, batch)
            mark_here()
    if add is not None:
        add, act = add
        other = add.inputs[1] if add.inputs[0] == op.name else add.inputs[0]
        stage["residual"] = values[other]
        if act is not None:
            stage["clamp"] = (0.0, np.inf) if act.type == "relu" else (-1.0, 1.0)
    if sign is not None:
        stage["sign_bits"] = True
        if sign[2] == "thresholds":
            stage["sign_thresholds"], stage["sign_flip"] = params.bn_rules[sign[1]]
        elif sign[2] == "norm":
            bn = params.fused[sign[1]]
            stage["norm"] = (bn["mean"], bn["scale"], bn["beta"])
    if conv:
        return plan.conv(kind, op.name, x, p["weight"], op.fan_in, a["kernel"], a["strides"],
                         a["padding"], **stage)
    return plan.dense(kind, op.name, x, p["weight"], op.fan_in, **stage)


def _kscale(plan, params, op, src, values, batch):
    x = values[src]
    a = op.attrs
    if op.type == "fused_dense":
        if x.dtype == np.uint64:
            return np.ones(batch, np.float32)
        return plan.rows("mean_abs", op.name + "/K", x)
    if x.dtype != np.uint64:
        return plan.spatial("kmap", op.name + "/K", x, x.shape[-1], a["kernel"], a["strides"],
                            a["padding"])
    cov = params.coverage_map(op, x.shape[1], x.shape[2])
    return np.ascontiguousarray(np.broadcast_to(cov, (batch,) + cov.shape))
