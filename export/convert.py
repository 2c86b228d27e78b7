"""Keras model -> unfolded edgebnn Graph (docs/FORMAT.md section 4).

Works on Keras 3 models built from export.layers and on Keras 2 (tf_keras)
models, e.g. Larq's (export.larq_import adds QuantConv2D / QuantDense).
Layers are matched by class name, so both Keras versions go through the
same table. Every graph op that computes a Keras layer's output takes the
layer's name; `Conversion.checkpoints` lists those names, which is what the
layer-by-layer equivalence check compares.
"""
import numpy as np

from edgebnn import GraphBuilder
from edgebnn.bits import pack_signs


class ExportError(ValueError):
    """Anything the exporter refuses, with a message meant for the user."""


class Conversion:
    """graph: the unfolded Graph; checkpoints: {graph tensor name: Keras
    layer name} for tensors equal to a layer's output; float_acc: conv/dense
    ops whose Keras layer multiplies the scale into the weights before the
    sum (so even its binary dot is a float32 sum, not an exact integer)."""

    def __init__(self, graph, checkpoints, float_acc, keras_layers):
        self.graph, self.checkpoints = graph, checkpoints
        self.float_acc, self.keras_layers = float_acc, keras_layers


def _np(v):
    if v is None:
        return None
    v = v.numpy() if hasattr(v, "numpy") else v
    return np.asarray(v, np.float32)


def _pair(v):
    return [int(v), int(v)] if np.isscalar(v) else [int(x) for x in v]


class _Ctx:
    """State of one conversion: the builder, keras tensor -> graph name."""

    def __init__(self, model, input_name, input_shape):
        self.b = GraphBuilder(input_shape, input_name=input_name, name=model.name[:256])
        self.name_of = {}          # id(keras layer) -> graph tensor name of its output
        self.checkpoints = {input_name: input_name}
        self.float_acc = set()

    def shape(self, name):
        if name == self.b._doc["input"]["name"]:
            return list(self.b._doc["input"]["shape"])
        return self.b.build(check_labels=False).shape_of(name)

    def add(self, layer, op_type, attrs, params, inputs, name=None, final=True):
        """Add one op; final=True means its output is the layer's output."""
        name = name or layer.name
        try:
            self.b.add(op_type, attrs, params, inputs=inputs, name=name)
        except ValueError as e:
            raise ExportError(f"layer {layer.name!r} ({type(layer).__name__}): {e}") from e
        if final:
            self.checkpoints[name] = layer.name
        return name


# --------------------------------------------------------------- helpers --
def _activation(ctx, layer, name, x):
    """Keras `activation=` argument after a conv/dense already added as x."""
    act = layer.get_config().get("activation", "linear")
    act = act if isinstance(act, str) else getattr(act, "__name__", str(act))
    if act == "linear":
        return x
    if act not in _ACTIVATIONS:
        raise ExportError(f"layer {layer.name!r}: activation {act!r} is not supported "
                          f"(supported: linear, {', '.join(sorted(_ACTIVATIONS))})")
    return ctx.add(layer, _ACTIVATIONS[act], {}, {}, [x], name=name)


_ACTIVATIONS = {"relu": "relu", "softmax": "softmax", "hard_tanh": "hardtanh"}


def _conv_padding(layer, padding, binary_inputs):
    if padding == "valid":
        return "valid"
    if padding == "same":
        return "same_zero"
    if padding == "same_one" and binary_inputs:
        return "same_one"
    raise ExportError(f"layer {layer.name!r}: padding {padding!r} is not supported here "
                      "(valid, same; same_one / pad value 1 only with binary inputs)")


def add_weighted(ctx, layer, x, *, conv, float_weights=None, signs=None, alpha=None,
                 alpha_kind="none", scheme="float", k_scale=False, padding="valid",
                 bias=None, float_acc=False):
    """Append a conv2d/dense (+ its Keras activation). float_weights / signs
    in Keras layout ([kh,kw,C,O] or [F,U])."""
    has_act = layer.get_config().get("activation", "linear") not in ("linear", None)
    name = f"{layer.name}/linear" if has_act else layer.name
    w = float_weights if float_weights is not None else signs
    if conv:
        w = np.transpose(w, (3, 0, 1, 2))           # -> [O, kh, kw, C]
    else:
        w = w.T                                      # -> [U, F]
    params = {"weight": np.ascontiguousarray(w, np.float32) if scheme == "float"
              else pack_signs(w)}
    if alpha_kind != "none":
        params["alpha"] = np.asarray(alpha, np.float32).reshape(-1)
    if bias is not None:
        params["bias"] = np.asarray(bias, np.float32)
    attrs = {"scheme": scheme, "alpha": alpha_kind,
             "input_scaling": "mean_abs" if k_scale else "none", "use_bias": bias is not None}
    if conv:
        cfg = layer.get_config()
        if _pair(cfg.get("dilation_rate", 1)) != [1, 1] or cfg.get("groups", 1) != 1:
            raise ExportError(f"layer {layer.name!r}: dilated or grouped convolutions are "
                              "not supported")
        attrs.update(filters=int(w.shape[0]), kernel=[int(w.shape[1]), int(w.shape[2])],
                     strides=_pair(cfg["strides"]), padding=padding)
    else:
        attrs["units"] = int(w.shape[0])
    out = ctx.add(layer, "conv2d" if conv else "dense", attrs, params, [x], name=name,
                  final=not has_act)
    if float_acc:
        ctx.float_acc.add(out)
    return _activation(ctx, layer, layer.name, out) if has_act else out


def _check_channels_last(layer):
    fmt = layer.get_config().get("data_format")
    if fmt not in (None, "channels_last"):
        raise ExportError(f"layer {layer.name!r}: data_format {fmt!r}; only channels_last "
                          "(NHWC) is supported")


# ---------------------------------------------------------- layer table --
def _keras_conv(ctx, layer, ins):
    _check_channels_last(layer)
    pad = _conv_padding(layer, layer.get_config()["padding"], False)
    return add_weighted(ctx, layer, ins[0], conv=True, float_weights=_np(layer.kernel),
                        padding=pad, bias=_np(layer.bias) if layer.use_bias else None)


def _keras_dense(ctx, layer, ins):
    return add_weighted(ctx, layer, ins[0], conv=False, float_weights=_np(layer.kernel),
                        bias=_np(layer.bias) if layer.use_bias else None)


def _binary(ctx, layer, ins, conv):
    """export.layers.BinaryConv2D / BinaryDense."""
    scheme = layer.scheme
    bias = _np(layer.bias) if layer.use_bias else None
    kw = {"conv": conv, "bias": bias}
    if conv:
        kw["padding"] = _conv_padding(layer, layer.padding, layer.binary_inputs)
    if scheme == "float":
        return add_weighted(ctx, layer, ins[0], float_weights=_np(layer.kernel), **kw)
    signs, scale = layer.signed_kernel()       # the very float32 scale Keras uses
    kind = "scalar" if scheme == "scalar" else "per_filter"
    return add_weighted(ctx, layer, ins[0], signs=_np(signs), alpha=_np(scale),
                        alpha_kind=kind, scheme="binary" if layer.binary_inputs
                        else "binary_weights", k_scale=layer.k_scale, **kw)


def _batchnorm(ctx, layer, ins):
    cfg = layer.get_config()
    axis = cfg.get("axis", -1)
    axis = axis[0] if isinstance(axis, (list, tuple)) and len(axis) == 1 else axis
    rank = len(ctx.shape(ins[0])) + 1
    if axis not in (-1, rank - 1) or cfg.get("renorm") or cfg.get("virtual_batch_size"):
        raise ExportError(f"layer {layer.name!r}: only BatchNormalization over the last "
                          "axis, without renorm / virtual batches, is supported")
    mean = _np(layer.moving_mean)
    c = mean.shape[0]
    gamma = _np(layer.gamma) if getattr(layer, "gamma", None) is not None else np.ones(c)
    beta = _np(layer.beta) if getattr(layer, "beta", None) is not None else np.zeros(c)
    params = {"gamma": gamma, "beta": beta, "mean": mean, "var": _np(layer.moving_variance)}
    params = {k: np.asarray(v, np.float32) for k, v in params.items()}
    return ctx.add(layer, "batchnorm", {"eps": float(cfg["epsilon"])}, params, ins)


def _relu(ctx, layer, ins):
    cfg = layer.get_config()
    if cfg.get("max_value") is not None or cfg.get("negative_slope", 0) or \
            cfg.get("threshold", 0):
        raise ExportError(f"layer {layer.name!r}: only plain ReLU (no max_value, slope "
                          "or threshold) is supported")
    return ctx.add(layer, "relu", {}, {}, ins)


def _activation_layer(ctx, layer, ins):
    cfg = layer.get_config()
    act = cfg["activation"] if isinstance(cfg["activation"], str) else str(cfg["activation"])
    if act == "linear":
        return ins[0]
    if act not in _ACTIVATIONS:
        raise ExportError(f"layer {layer.name!r}: activation {act!r} is not supported "
                          f"(supported: linear, {', '.join(sorted(_ACTIVATIONS))})")
    return ctx.add(layer, _ACTIVATIONS[act], {}, {}, ins)


def _pool(op_type):
    def convert(ctx, layer, ins):
        _check_channels_last(layer)
        cfg = layer.get_config()
        strides = cfg.get("strides") or cfg["pool_size"]
        return ctx.add(layer, op_type, {"pool": _pair(cfg["pool_size"]),
                                        "strides": _pair(strides), "padding": cfg["padding"]},
                       {}, ins)
    return convert


def _gap(ctx, layer, ins):
    _check_channels_last(layer)
    if layer.get_config().get("keepdims"):
        raise ExportError(f"layer {layer.name!r}: GlobalAveragePooling2D(keepdims=True) "
                          "is not supported")
    return ctx.add(layer, "global_avgpool", {}, {}, ins)


def _add(ctx, layer, ins):
    x = ins[0]
    for i, y in enumerate(ins[1:]):
        last = i == len(ins) - 2
        x = ctx.add(layer, "add", {}, {}, [x, y],
                    name=None if last else f"{layer.name}/add{i}", final=last)
    return x


def _lrn(ctx, layer, ins):
    return ctx.add(layer, "lrn", {"depth_radius": layer.depth_radius, "bias": layer.lrn_bias,
                                  "alpha": layer.alpha, "beta": layer.beta}, {}, ins)


def _channel_scale(ctx, layer, ins):
    # y = x * s as a batchnorm whose var + eps is exactly 1 (both powers of
    # two apart), so (x - 0) * s / 1 + 0 is bit-identical to x * s
    s = _np(layer.scale)
    eps = 2.0 ** -10
    params = {"gamma": s, "beta": np.zeros_like(s), "mean": np.zeros_like(s),
              "var": np.full_like(s, 1.0 - eps)}
    return ctx.add(layer, "batchnorm", {"eps": eps}, params, ins)


def _channel_zero_pad(ctx, layer, ins):
    # extra zero channels as a 1x1 float conv with an identity block: each
    # output is x * 1 plus exact zeros, so the values are unchanged
    c = ctx.shape(ins[0])[-1]
    w = np.zeros((c + layer.extra, 1, 1, c), np.float32)
    w[np.arange(c), 0, 0, np.arange(c)] = 1.0
    attrs = {"filters": c + layer.extra, "kernel": [1, 1], "strides": [1, 1],
             "padding": "valid", "scheme": "float", "alpha": "none",
             "input_scaling": "none", "use_bias": False}
    return ctx.add(layer, "conv2d", attrs, {"weight": w}, ins)


def _passthrough(ctx, layer, ins):
    return ins[0]


CONVERTERS = {
    "Conv2D": _keras_conv,
    "Dense": _keras_dense,
    "BinaryConv2D": lambda c, l, i: _binary(c, l, i, True),
    "BinaryDense": lambda c, l, i: _binary(c, l, i, False),
    "BatchNormalization": _batchnorm,
    "ReLU": _relu,
    "Activation": _activation_layer,
    "HardTanh": lambda c, l, i: c.add(l, "hardtanh", {}, {}, i),
    "SignActivation": lambda c, l, i: c.add(l, "sign", {}, {}, i),
    "MaxPooling2D": _pool("maxpool"),
    "MaxPool2D": _pool("maxpool"),
    "AveragePooling2D": _pool("avgpool"),
    "AvgPool2D": _pool("avgpool"),
    "GlobalAveragePooling2D": _gap,
    "GlobalAvgPool2D": _gap,
    "Add": _add,
    "Flatten": lambda c, l, i: c.add(l, "flatten", {}, {}, i),
    "Dropout": _passthrough,
    "LRN": _lrn,
    "ChannelScale": _channel_scale,
    "ChannelZeroPad": _channel_zero_pad,
}


def supported_layers():
    return sorted(set(CONVERTERS) | {"InputLayer"})


def _inbound(layer):
    """Keras layers feeding `layer` (its single call)."""
    nodes = getattr(layer, "_inbound_nodes", [])
    if len(nodes) != 1:
        raise ExportError(f"layer {layer.name!r} is used {len(nodes)} times; shared layers "
                          "are not supported")
    inp = layer.input
    tensors = list(inp) if isinstance(inp, (list, tuple)) else [inp]
    return [t._keras_history[0] for t in tensors]


def convert(model, labels=None, preprocess=None):
    """Keras model -> Conversion. Raises ExportError naming any layer it
    cannot express."""
    inputs = model.inputs
    if len(inputs) != 1 or len(model.outputs) != 1:
        raise ExportError("only models with one input and one output are supported")
    shape = [int(d) for d in inputs[0].shape[1:]]
    if any(d is None for d in inputs[0].shape[1:]):
        raise ExportError(f"the input shape {inputs[0].shape} must be fully known")
    in_layer = inputs[0]._keras_history[0]
    ctx = _Ctx(model, in_layer.name, shape)
    if preprocess is not None:
        ctx.b._doc["input"]["preprocess"] = preprocess
    ctx.name_of[id(in_layer)] = in_layer.name
    unsupported = [f"{l.name} ({type(l).__name__})" for l in model.layers
                   if type(l).__name__ not in CONVERTERS and type(l).__name__ != "InputLayer"]
    if unsupported:
        raise ExportError(f"unsupported layer(s): {', '.join(unsupported)}. Supported: "
                          f"{', '.join(supported_layers())}")
    pending = [l for l in model.layers if id(l) != id(in_layer)
               and type(l).__name__ != "InputLayer"]
    order = []
    while pending:           # topological order (model.layers usually is one)
        ready = [l for l in pending if all(id(p) in ctx.name_of for p in _inbound(l))]
        if not ready:
            raise ExportError("the model graph has layers not reachable from its input")
        for layer in ready:
            ins = [ctx.name_of[id(p)] for p in _inbound(layer)]
            ctx.name_of[id(layer)] = CONVERTERS[type(layer).__name__](ctx, layer, ins)
            order.append(layer)
        pending = [l for l in pending if all(id(l) != id(r) for r in ready)]
    out_layer = model.outputs[0]._keras_history[0]
    out = ctx.name_of[id(out_layer)]
    if out == in_layer.name:
        raise ExportError("the model computes nothing (its output is its input)")
    ctx.b._doc["output"] = out
    try:
        graph = ctx.b.build(labels=labels)
    except ValueError as e:
        raise ExportError(f"building the graph: {e}") from e
    # keep only ops that still exist (all do) and map to layer outputs
    return Conversion(graph, ctx.checkpoints, ctx.float_acc, order)
