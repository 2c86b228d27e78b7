"""The op vocabulary: for each op type, its attributes (typed, ranged), the
parameter tensors it needs (dtype and shape from the attributes and the input
shape) and its output shape and kind ("float" or "bits").

Shapes exclude the batch: images are [H, W, C], vectors [F]. A "bits"
tensor holds +-1 values; in a file it only flows between ops that accept it.
"""
import math

from .bits import words
from .errors import ModelError, short

MAX_DIM = 1 << 16           # any single spatial size, channel or unit count
MAX_KERNEL = 64
MAX_ACTIVATION = 1 << 24    # elements of one activation per sample (64 MiB float32)

SCHEMES = ("float", "binary_weights", "binary")
ALPHAS = ("none", "scalar", "per_filter")
SCALINGS = ("none", "mean_abs")
PADDINGS = ("valid", "same_zero", "same_one")
POOL_PADDINGS = ("valid", "same")


# ------------------------------------------------------------ attr types ---
def _int(lo, hi):
    def check(v, where):
        if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
            raise ModelError(f"{where}: must be an integer in {lo}..{hi}, got {short(v)}")
        return v
    return check


def _pair(lo, hi):
    def check(v, where):
        if not isinstance(v, list) or len(v) != 2:
            raise ModelError(f"{where}: must be a list of two integers, got {short(v)}")
        return [_int(lo, hi)(x, where) for x in v]
    return check


def _enum(*choices):
    def check(v, where):
        if v not in choices:
            raise ModelError(f"{where}: must be one of {list(choices)}, got {short(v)}")
        return v
    return check


def _float(lo=-math.inf, hi=math.inf, lo_open=False):
    def check(v, where):
        if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v) \
                or not lo <= v <= hi or (lo_open and v == lo):
            raise ModelError(f"{where}: must be a finite number in "
                             f"{'(' if lo_open else '['}{lo}, {hi}], got {short(v)}")
        return float(v)
    return check


def _bool(v, where):
    if not isinstance(v, bool):
        raise ModelError(f"{where}: must be true or false, got {short(v)}")
    return v


def _clamp(v, where):
    """null (no clamp) or [lo, hi]; either bound may be null (unbounded)."""
    if v is None:
        return None
    if not isinstance(v, list) or len(v) != 2:
        raise ModelError(f"{where}: must be null or [lo, hi], got {short(v)}")
    lo, hi = (None if x is None else _float()(x, where) for x in v)
    if lo is not None and hi is not None and lo > hi:
        raise ModelError(f"{where}: lo {lo} > hi {hi}")
    return [lo, hi]


# ------------------------------------------------------------- geometry ---
def conv_out(size, k, s, same):
    """TF rule: same -> ceil(size/s), valid -> (size-k)//s + 1 (0 if k > size)."""
    return -(-size // s) if same else max((size - k) // s + 1, 0)


def pad_before(size, k, s):
    out = -(-size // s)
    return max((out - 1) * s + k - size, 0) // 2


def _image(shape, where):
    if len(shape) != 3:
        raise ModelError(f"{where}: needs an image input [H, W, C], got shape {list(shape)}")
    return shape


def _vector(shape, where):
    if len(shape) != 1:
        raise ModelError(f"{where}: needs a vector input [F] (flatten first), got {list(shape)}")
    return shape


def _spatial(attrs, shape, kernel_key, where):
    h, w, _ = _image(shape, where)
    kh, kw = attrs[kernel_key]
    sh, sw = attrs["strides"]
    same = attrs["padding"] != "valid"
    oh, ow = conv_out(h, kh, sh, same), conv_out(w, kw, sw, same)
    if oh < 1 or ow < 1:
        raise ModelError(f"{where}: {kh}x{kw} window does not fit the {h}x{w} input "
                         f"with padding {attrs['padding']}")
    return oh, ow


# ------------------------------------------------ weight-carrying ops ---
_CONV_ATTRS = {"filters": _int(1, MAX_DIM), "kernel": _pair(1, MAX_KERNEL),
               "strides": _pair(1, MAX_KERNEL), "padding": _enum(*PADDINGS),
               "scheme": _enum(*SCHEMES), "alpha": _enum(*ALPHAS),
               "input_scaling": _enum(*SCALINGS), "use_bias": _bool}
_DENSE_ATTRS = {"units": _int(1, MAX_DIM), "scheme": _enum(*SCHEMES),
                "alpha": _enum(*ALPHAS), "input_scaling": _enum(*SCALINGS),
                "use_bias": _bool}
_FUSED_EXTRA = {"output": _enum("float", "bits"), "clamp": _clamp}


def _fused(attrs):
    """A fused op's scale lives in mul/bias/thresholds, not alpha/use_bias."""
    a = {k: v for k, v in attrs.items() if k not in ("alpha", "use_bias")}
    a.update(_FUSED_EXTRA)
    return a


def _check_scheme(a, where):
    if a["scheme"] == "float" and a.get("alpha", "none") != "none":
        raise ModelError(f"{where}: scheme float takes alpha 'none'")
    if a["scheme"] != "binary" and a["input_scaling"] != "none":
        raise ModelError(f"{where}: input_scaling needs scheme 'binary'")
    if a.get("padding") == "same_one" and a["scheme"] != "binary":
        raise ModelError(f"{where}: padding same_one exists only for binary inputs")


def _weight_params(a, out, fan_shape, in_c):
    """weight tensor for `out` filters over fan_shape (kh, kw, C) or (F,)."""
    if a["scheme"] == "float":
        return {"weight": ("F32", [out, *fan_shape])}
    return {"weight": ("U64", [out, *fan_shape[:-1], words(in_c)])}


def _scale_params(a, out, fused):
    p = {}
    if not fused:
        if a["alpha"] != "none":
            p["alpha"] = ("F32", [1 if a["alpha"] == "scalar" else out])
        if a["use_bias"]:
            p["bias"] = ("F32", [out])
        return p, {}
    # fused: the output stage of the engine
    integer_bits = a["output"] == "bits" and a["scheme"] == "binary" \
        and a["input_scaling"] == "none"
    if integer_bits:
        return {"thresholds": ("I32", [out]), "flip": ("U8", [out])}, {}
    return {}, {"mul": ("F32", [out]), "bias": ("F32", [out])}


def _conv_rule(fused):
    def rule(a, shapes, kinds, where):
        _check_scheme(a, where)
        if fused and a["output"] == "bits" and a["clamp"] is not None:
            raise ModelError(f"{where}: clamp does not apply to a bits output")
        if kinds[0] == "bits" and a["scheme"] != "binary":
            raise ModelError(f"{where}: a bits input needs scheme 'binary'")
        oh, ow = _spatial(a, shapes[0], "kernel", where)
        kh, kw = a["kernel"]
        c = shapes[0][2]
        req = _weight_params(a, a["filters"], (kh, kw, c), c)
        more, optional = _scale_params(a, a["filters"], fused)
        req.update(more)
        kind = a["output"] if fused else "float"
        return [oh, ow, a["filters"]], kind, req, optional, c
    return rule


def _dense_rule(fused):
    def rule(a, shapes, kinds, where):
        _check_scheme(a, where)
        if fused and a["output"] == "bits" and a["clamp"] is not None:
            raise ModelError(f"{where}: clamp does not apply to a bits output")
        if kinds[0] == "bits" and a["scheme"] != "binary":
            raise ModelError(f"{where}: a bits input needs scheme 'binary'")
        (f,) = _vector(shapes[0], where)
        req = _weight_params(a, a["units"], (f,), f)
        more, optional = _scale_params(a, a["units"], fused)
        req.update(more)
        kind = a["output"] if fused else "float"
        return [a["units"]], kind, req, optional, f
    return rule


# ------------------------------------------------------------ other ops ---
def _float_only(kinds, where):
    if any(k != "float" for k in kinds):
        raise ModelError(f"{where}: needs float inputs, got {kinds}")


def _same_shape(a, shapes, kinds, where):
    _float_only(kinds, where)
    return list(shapes[0]), "float", {}, {}, None


def _sign(a, shapes, kinds, where):
    # values +-1 as floats; packed "bits" tensors only come from fused ops
    _float_only(kinds, where)
    return list(shapes[0]), "float", {}, {}, None


def _batchnorm(a, shapes, kinds, where):
    _float_only(kinds, where)
    c = shapes[0][-1]
    req = {k: ("F32", [c]) for k in ("gamma", "beta", "mean", "var")}
    return list(shapes[0]), "float", req, {}, None


def _pool(a, shapes, kinds, where):
    if a["_type"] == "avgpool":
        _float_only(kinds, where)
    oh, ow = _spatial(a, shapes[0], "pool", where)
    return [oh, ow, shapes[0][2]], kinds[0], {}, {}, None


def _global_avgpool(a, shapes, kinds, where):
    _float_only(kinds, where)
    return [_image(shapes[0], where)[2]], "float", {}, {}, None


def _lrn(a, shapes, kinds, where):
    _float_only(kinds, where)
    _image(shapes[0], where)
    return list(shapes[0]), "float", {}, {}, None


def _add(a, shapes, kinds, where):
    _float_only(kinds, where)
    if list(shapes[0]) != list(shapes[1]):
        raise ModelError(f"{where}: shapes {list(shapes[0])} and {list(shapes[1])} differ")
    return list(shapes[0]), "float", {}, {}, None


def _flatten(a, shapes, kinds, where):
    _float_only(kinds, where)
    return [math.prod(shapes[0])], "float", {}, {}, None


def _softmax(a, shapes, kinds, where):
    _float_only(kinds, where)
    _vector(shapes[0], where)
    return list(shapes[0]), "float", {}, {}, None


_POOL_ATTRS = {"pool": _pair(1, MAX_KERNEL), "strides": _pair(1, MAX_KERNEL),
               "padding": _enum(*POOL_PADDINGS)}

# type -> (number of inputs, attribute checks, rule)
# rule(attrs, in_shapes, in_kinds, where) ->
#   (out_shape, out_kind, required params, optional params, in_features)
OPS = {
    "conv2d": (1, _CONV_ATTRS, _conv_rule(False)),
    "dense": (1, _DENSE_ATTRS, _dense_rule(False)),
    "fused_conv2d": (1, _fused(_CONV_ATTRS), _conv_rule(True)),
    "fused_dense": (1, _fused(_DENSE_ATTRS), _dense_rule(True)),
    "batchnorm": (1, {"eps": _float(0.0, 1.0, lo_open=True)}, _batchnorm),
    "relu": (1, {}, _same_shape),
    "hardtanh": (1, {}, _same_shape),
    "sign": (1, {}, _sign),
    "maxpool": (1, _POOL_ATTRS, _pool),
    "avgpool": (1, _POOL_ATTRS, _pool),
    "global_avgpool": (1, {}, _global_avgpool),
    "lrn": (1, {"depth_radius": _int(0, 1024), "bias": _float(),
                "alpha": _float(), "beta": _float()}, _lrn),
    "add": (2, {}, _add),
    "flatten": (1, {}, _flatten),
    "softmax": (1, {}, _softmax),
}


def check_attrs(op_type, attrs, where):
    """Validate attrs of an op type: known keys only, all present, typed."""
    if op_type not in OPS:
        raise ModelError(f"{where}: unknown op type {short(op_type)}")
    if not isinstance(attrs, dict):
        raise ModelError(f"{where}: attrs must be an object")
    spec = OPS[op_type][1]
    unknown = set(attrs) - set(spec)
    if unknown:
        raise ModelError(f"{where}: unknown attributes {short(sorted(unknown))}")
    missing = set(spec) - set(attrs)
    if missing:
        raise ModelError(f"{where}: missing attributes {sorted(missing)}")
    return {k: check(attrs[k], f"{where} attribute {k!r}") for k, check in spec.items()}


def infer(op_type, attrs, shapes, kinds, where):
    n_in, _, rule = OPS[op_type]
    if len(shapes) != n_in:
        raise ModelError(f"{where}: takes {n_in} input(s), got {len(shapes)}")
    out_shape, kind, req, optional, fan_in = rule(dict(attrs, _type=op_type),
                                                  shapes, kinds, where)
    if math.prod(out_shape) > MAX_ACTIVATION:
        raise ModelError(f"{where}: output {out_shape} exceeds {MAX_ACTIVATION} elements")
    return out_shape, kind, req, optional, fan_in
