"""The model graph: validated from a file's JSON + tensors, built by code
(GraphBuilder, used by tests, the exporter and the folding pass), written
back out. Every reference, dtype, shape and attribute is checked here, so
executors can trust a Graph."""
import json
import math

import numpy as np

from . import ops as opdefs
from .bits import high_bits_clear
from .container import DTYPES
from .errors import ModelError, short

MAX_OPS = 10_000
MAX_NAME = 256
MAX_LABELS = 100_000


class InputSpec:
    """What the model eats: shape [H, W, C] (or [F]) and how a raw image is
    turned into it: resize to size, channels 1|3, invert (255 - v), then
    (v * scale - mean[c]) / std[c]."""

    def __init__(self, name, shape, preprocess=None):
        self.name, self.shape, self.preprocess = name, list(shape), preprocess

    def to_doc(self):
        return {"name": self.name, "shape": self.shape, "preprocess": self.preprocess}

    @classmethod
    def from_doc(cls, doc):
        where = "input"
        if not isinstance(doc, dict) or set(doc) != {"name", "shape", "preprocess"}:
            raise ModelError(f"{where}: must have exactly name, shape, preprocess")
        name = _name(doc["name"], f"{where} name")
        shape = doc["shape"]
        if not isinstance(shape, list) or len(shape) not in (1, 3) or not all(
                isinstance(d, int) and not isinstance(d, bool) and 1 <= d <= opdefs.MAX_DIM
                for d in shape):
            raise ModelError(f"{where}: shape must be [H, W, C] or [F] of 1..{opdefs.MAX_DIM}, "
                             f"got {short(shape)}")
        if math.prod(shape) > opdefs.MAX_ACTIVATION:
            raise ModelError(f"{where}: shape {shape} is too large")
        pre = doc["preprocess"]
        if pre is not None:
            pre = _check_preprocess(pre, shape)
        return cls(name, shape, pre)


def _check_preprocess(pre, shape):
    where = "input preprocess"
    keys = {"size", "channels", "scale", "mean", "std", "invert"}
    if not isinstance(pre, dict) or set(pre) != keys:
        raise ModelError(f"{where}: must have exactly {sorted(keys)}")
    if len(shape) != 3:
        raise ModelError(f"{where}: only image inputs [H, W, C] take preprocessing")
    if pre["size"] != shape[:2]:
        raise ModelError(f"{where}: size {short(pre['size'])} must equal the input's H, W {shape[:2]}")
    if pre["channels"] not in (1, 3) or pre["channels"] != shape[2]:
        raise ModelError(f"{where}: channels must be 1 or 3 and equal C={shape[2]}")
    num = opdefs._float()
    num(pre["scale"], f"{where} scale")
    for key in ("mean", "std"):
        v = pre[key]
        if not isinstance(v, list) or len(v) != shape[2]:
            raise ModelError(f"{where}: {key} must list {shape[2]} numbers")
        for x in v:
            num(x, f"{where} {key}")
    if any(s <= 0 for s in pre["std"]):
        raise ModelError(f"{where}: std must be positive")
    opdefs._bool(pre["invert"], f"{where} invert")
    return pre


def _name(v, where):
    if not isinstance(v, str) or not 0 < len(v) <= MAX_NAME:
        raise ModelError(f"{where}: must be a string of 1..{MAX_NAME} characters, got {short(v)}")
    return v


class Op:
    """One validated node. params maps role -> numpy array (read-only views
    into the file for loaded graphs); tensor_names maps role -> file name."""

    def __init__(self, name, type, inputs, attrs, params, tensor_names, shape, kind, fan_in):
        self.name, self.type, self.inputs, self.attrs = name, type, inputs, attrs
        self.params, self.tensor_names = params, tensor_names
        self.shape, self.kind, self.fan_in = shape, kind, fan_in

    def to_doc(self):
        return {"name": self.name, "type": self.type, "inputs": list(self.inputs),
                "attrs": self.attrs, "params": dict(self.tensor_names)}

    def compute_params(self):
        """params as executors use them: float16 storage widened to float32."""
        return {role: a.astype(np.float32) if a.dtype == np.float16 else a
                for role, a in self.params.items()}

    def __repr__(self):
        return f"Op({self.name!r}, {self.type}, {self.inputs} -> {self.shape} {self.kind})"


def _check_param(op_name, role, arr, tname, dtype, shape, fan_in):
    where = f"op {op_name!r} param {role!r} (tensor {short(tname)})"
    half_ok = dtype == "F32" and arr.dtype == DTYPES["F16"]    # float params may be stored F16
    if arr.dtype != DTYPES[dtype] and not half_ok:
        raise ModelError(f"{where}: dtype must be {dtype}{' (or F16)' if dtype == 'F32' else ''}, "
                         f"got {arr.dtype}")
    if list(arr.shape) != list(shape):
        raise ModelError(f"{where}: shape must be {list(shape)}, got {list(arr.shape)}")
    if dtype in ("F32", "F16") and not np.all(np.isfinite(arr)):
        raise ModelError(f"{where}: holds NaN or infinite values")
    if dtype == "U64" and fan_in is not None and not high_bits_clear(arr, fan_in):
        raise ModelError(f"{where}: unused high bits of the last word are set")
    if role == "flip" and np.any(arr > 1):
        raise ModelError(f"{where}: flip values must be 0 or 1")
    if role == "var" and np.any(arr < 0):
        raise ModelError(f"{where}: variance must be non-negative")


class Graph:
    def __init__(self, input_spec, ops, output, labels=None, name="model"):
        self.input, self.ops, self.output = input_spec, ops, output
        self.labels, self.name = labels, name
        self.by_name = {op.name: op for op in ops}
        self._consumers = {}
        for op in ops:
            for x in dict.fromkeys(op.inputs):
                self._consumers.setdefault(x, []).append(op)

    def shape_of(self, name):
        return self.input.shape if name == self.input.name else self.by_name[name].shape

    def tensors(self):
        """{file tensor name: array} of every parameter (shared ones once)."""
        out = {}
        for op in self.ops:
            for role, arr in op.params.items():
                out[op.tensor_names[role]] = arr
        return out

    def to_doc(self):
        return {"name": self.name, "input": self.input.to_doc(),
                "ops": [op.to_doc() for op in self.ops], "output": self.output,
                "labels": self.labels}

    def consumers(self, name):
        """Ops that read `name`, in order (each once)."""
        return list(self._consumers.get(name, ()))

    @classmethod
    def from_doc(cls, doc, tensors, partial=False):
        """Validate a graph document against its tensors; ModelError if wrong.
        partial=True (a graph under construction) lets the output be bits."""
        if not isinstance(doc, dict) or set(doc) != {"name", "input", "ops", "output", "labels"}:
            raise ModelError("graph: must have exactly name, input, ops, output, labels")
        name = _name(doc["name"], "graph name")
        spec = InputSpec.from_doc(doc["input"])
        raw_ops = doc["ops"]
        if not isinstance(raw_ops, list) or not 1 <= len(raw_ops) <= MAX_OPS:
            raise ModelError(f"graph: ops must be a list of 1..{MAX_OPS} ops")
        known = {spec.name: (spec.shape, "float")}
        used = set()
        ops = []
        for i, raw in enumerate(raw_ops):
            where = f"op #{i}"
            if not isinstance(raw, dict) or set(raw) != {"name", "type", "inputs", "attrs", "params"}:
                raise ModelError(f"{where}: must have exactly name, type, inputs, attrs, params")
            op_name = _name(raw["name"], f"{where} name")
            where = f"op {op_name!r} ({short(raw['type'])})"
            if op_name in known:
                raise ModelError(f"{where}: name is already used")
            if not isinstance(raw["type"], str) or raw["type"] not in opdefs.OPS:
                raise ModelError(f"{where}: unknown op type")
            attrs = opdefs.check_attrs(raw["type"], raw["attrs"], where)
            inputs = raw["inputs"]
            if not isinstance(inputs, list) or not all(isinstance(x, str) for x in inputs):
                raise ModelError(f"{where}: inputs must be a list of names")
            for x in inputs:
                if x not in known:
                    raise ModelError(f"{where}: input {short(x)} is not the graph input or an "
                                     "earlier op (ops must be in order)")
            shapes = [known[x][0] for x in inputs]
            kinds = [known[x][1] for x in inputs]
            shape, kind, req, optional, fan_in = opdefs.infer(raw["type"], attrs, shapes,
                                                               kinds, where)
            pnames = raw["params"]
            if not isinstance(pnames, dict) or not all(isinstance(v, str) for v in pnames.values()):
                raise ModelError(f"{where}: params must map roles to tensor names")
            missing = set(req) - set(pnames)
            extra = set(pnames) - set(req) - set(optional)
            if missing or extra:
                raise ModelError(f"{where}: params missing {sorted(missing)}, "
                                 f"unexpected {short(sorted(extra))}")
            params = {}
            for role, tname in pnames.items():
                if tname not in tensors:
                    raise ModelError(f"{where}: param {role!r} names tensor {short(tname)} "
                                     "which is not in the file")
                dtype, pshape = req.get(role) or optional[role]
                _check_param(op_name, role, tensors[tname], tname, dtype, pshape, fan_in)
                params[role] = tensors[tname]
                used.add(tname)
            ops.append(Op(op_name, raw["type"], inputs, attrs, params, dict(pnames),
                          shape, kind, fan_in))
            known[op_name] = (shape, kind)
        unused = set(tensors) - used
        if unused:
            raise ModelError(f"graph: tensors {short(sorted(unused)[:5])} are not used by any op")
        out = doc["output"]
        if not isinstance(out, str) or out not in known or out == spec.name:
            raise ModelError(f"graph: output {short(out)} is not an op")
        if known[out][1] != "float" and not partial:
            raise ModelError(f"graph: output {short(out)} must be a float tensor")
        labels = doc["labels"]
        if labels is not None:
            if not isinstance(labels, list) or not all(
                    isinstance(s, str) and len(s) <= MAX_NAME for s in labels):
                raise ModelError("graph: labels must be null or a list of short strings")
            if known[out][0] != [len(labels)]:
                raise ModelError(f"graph: {len(labels)} labels but the output has shape "
                                 f"{known[out][0]}")
        return cls(spec, ops, out, labels, name)


class GraphBuilder:
    """Build a Graph in code: each add() validates at once, so a mistake is
    reported at the op that makes it."""

    def __init__(self, input_shape, input_name="input", preprocess=None, name="model"):
        self._doc = {"name": name, "input": {"name": input_name, "shape": list(input_shape),
                                             "preprocess": preprocess},
                     "ops": [], "output": None, "labels": None}
        self._tensors = {}
        self.last = input_name

    def add(self, op_type, attrs=None, params=None, inputs=None, name=None):
        """Append an op (default input: the previous op). params: role -> array.
        Returns the op's name."""
        name = name or f"{op_type}_{len(self._doc['ops'])}"
        inputs = [self.last] if inputs is None else list(inputs)
        names = {}
        for role, arr in (params or {}).items():
            tname = f"{name}.{role}"
            self._tensors[tname] = np.ascontiguousarray(arr)
            names[role] = tname
        self._doc["ops"].append({"name": name, "type": op_type, "inputs": inputs,
                                 "attrs": dict(attrs or {}), "params": names})
        self._doc["output"] = name
        self.last = name
        self.build(check_labels=False)
        return name

    def build(self, labels=None, check_labels=True):
        """The Graph so far; check_labels=False means 'still building'."""
        doc = dict(self._doc, labels=labels if check_labels else None)
        return Graph.from_doc(json.loads(json.dumps(doc)), self._tensors,
                              partial=not check_labels)
