"""Model: the public face of a loaded .ebnn file. It folds the graph and
runs it through compiled plans (edgebnn.plan): one plan per (batch size,
threads, input dtype), built on first use and reused; a small pool per key
so several Python threads can run one Model at once, each on its own
buffers."""
import math
import threading
from collections import OrderedDict

import numpy as np

from .bits import unpack_signs
from .engine_backend import require_engine
from .fold import fold
from .plan import Params, build
from .preprocess import load_image

MAX_KEYS = 4            # distinct (batch, threads, dtype) plan sets kept
MAX_IDLE = 8            # idle plans kept per key (one per concurrent caller)


class Model:
    def __init__(self, graph, backend="auto", threads=1):
        if backend not in ("auto", "engine"):
            raise ValueError(f"backend must be 'auto' or 'engine' (the compiled engine is the "
                             f"only executor), got {backend!r}")
        self._eng = require_engine()
        self.graph = graph
        self.plan = fold(graph)
        self.backend = "engine"
        self._params = Params(self.plan, self._eng)
        self._shape = tuple(graph.input.shape)
        self._lock = threading.Lock()
        self._idle = OrderedDict()      # key -> [CompiledPlan], most recent last
        self.threads = threads

    @property
    def input_spec(self):
        return self.graph.input

    @property
    def labels(self):
        return self.graph.labels

    @property
    def isa(self):
        return self._eng.get_isa()

    @property
    def threads(self):
        return self._threads

    @threads.setter
    def threads(self, n):
        if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= 256:
            raise ValueError(f"threads must be an integer in 1..256, got {n!r}")
        self._threads = n

    # ----------------------------------------------------------- running --
    def _checked(self, x):
        x = np.asarray(x)
        shape = self._shape
        if x.shape == shape:
            x = x[None]
        if x.shape[1:] != shape or x.ndim != len(shape) + 1 or x.shape[0] < 1:
            raise ValueError(f"input must have shape [N, {', '.join(map(str, shape))}], "
                             f"got {list(x.shape)}")
        if x.dtype != np.float32 and x.dtype != np.uint8:
            raise ValueError(f"input must be uint8 (raw pixels) or float32, got {x.dtype}")
        return x

    def _checkout(self, key):
        with self._lock:
            idle = self._idle.get(key)
            if idle:
                return idle.pop()
        return build(self.plan, self._params, key[0], key[1], key[2])

    def _checkin(self, key, cp):
        with self._lock:
            idle = self._idle.get(key)
            if idle is None:
                idle = self._idle[key] = []
                while len(self._idle) > MAX_KEYS:
                    self._idle.popitem(last=False)
            else:
                self._idle.move_to_end(key)
            if len(idle) < MAX_IDLE:
                idle.append(cp)

    def run(self, x):
        """x: [N, *input shape] (or one sample without N); uint8 raw pixels
        (preprocessed as the file says) or float32 model input. -> outputs
        [N, ...] float32 (a new array)."""
        x = self._checked(x)
        key = (x.shape[0], self._threads, x.dtype == np.uint8)
        cp = self._checkout(key)
        try:
            np.copyto(cp.input, x)
            cp.plan.run(key[1])
            out = cp.output.copy()
        finally:
            self._checkin(key, cp)
        return out

    def run_layers(self, x):
        """Debug: every named activation of the folded plan for input x, as
        {name: float32 [N, ...]} (bits unpacked to +-1), plus the input. Slow
        (a fresh plan, no residual fusion so each op's own output is seen)."""
        x = self._checked(x)
        cp = build(self.plan, self._params, x.shape[0], self._threads, x.dtype == np.uint8,
                   fuse_residual=False)
        np.copyto(cp.input, x)
        cp.plan.run(self._threads)
        out = {}
        for name, v in cp.values.items():
            if v.dtype == np.uint64:
                shape = self.plan.shape_of(name)
                v = unpack_signs(v, shape[-1]).reshape((x.shape[0],) + tuple(shape))
            out[name] = np.array(v, np.float32)
        return out

    def profile(self, x, repeats=1):
        """[(step name, seconds)] of one run of x's plan: each step's own time
        measured inside the plan (median over `repeats` runs)."""
        x = self._checked(x)
        key = (x.shape[0], self._threads, x.dtype == np.uint8)
        cp = self._checkout(key)
        try:
            np.copyto(cp.input, x)
            times = np.median([cp.plan.profile(key[1]) for _ in range(max(1, repeats))], axis=0)
            names = list(cp.plan.names)
        finally:
            self._checkin(key, cp)
        return list(zip(names, times.tolist()))

    def predict(self, x):
        """Class index per sample."""
        out = self.run(x)
        return np.argmax(out.reshape(out.shape[0], -1), axis=1)

    def probabilities(self, x):
        out = self.run(x)
        if self.plan.by_name[self.plan.output].type == "softmax":
            return out
        e = np.exp(out - out.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    def classify(self, image, top_k=5):
        """image: path, PIL image or uint8 array -> [(label, probability)]
        best first."""
        if len(self.input_spec.shape) != 3:
            raise ValueError("classify needs a model with an image input")
        pixels = load_image(image, self.input_spec)
        p = self.probabilities(pixels[None])[0]
        k = max(1, min(int(top_k), p.size))
        order = np.argsort(-p, kind="stable")[:k]
        names = self.labels or [str(i) for i in range(p.size)]
        return [(names[i], float(p[i])) for i in order]

    # ---------------------------------------------------------- describing --
    def summary(self):
        """Per op of the plan: name, op, input and output shape, activation
        kind (float/bits), weight bits, parameter bytes, MACs (multiply-
        accumulates per sample), source_ops (the ops of the file it computes)."""
        rows = []
        for op in self.plan.ops:
            pbytes = sum(a.nbytes for a in op.params.values())
            bits, macs = None, 0
            if op.type in ("fused_conv2d", "fused_dense"):
                bits = 32 if op.attrs["scheme"] == "float" else 1
                fan = op.fan_in * (math.prod(op.attrs["kernel"]) if "kernel" in op.attrs else 1)
                macs = math.prod(op.shape) * fan
                scheme = op.attrs["scheme"] + ("+K" if op.attrs["input_scaling"] != "none" else "")
                kind = f"{op.type[6:]} {scheme} -> {op.attrs['output']}"
            else:
                kind = op.type
            rows.append({"name": op.name, "op": kind,
                         "in_shape": [list(self.plan.shape_of(n)) for n in op.inputs],
                         "shape": list(op.shape), "activation": op.kind,
                         "weight_bits": bits, "param_bytes": pbytes, "macs": macs,
                         "source_ops": list(self.plan.origin.get(op.name, [op.name]))})
        return rows

    def sizes(self):
        """(bytes stored, bytes the same weights take as float32). Stored
        bytes are the file's (edgebnn.format storage) for a loaded graph,
        the arrays' for one built in code."""
        storage = getattr(self.graph, "storage", None)
        if storage is not None:
            stored = sum(nbytes for _, nbytes, _ in storage.values())
        else:
            stored = sum(a.nbytes for a in self.graph.tensors().values())
        as_float = 0
        for op in self.graph.ops:
            for a in op.params.values():
                if a.dtype == np.uint64:     # packed signs: one float per real value
                    n = a.size // a.shape[-1] * op.fan_in
                    as_float += 4 * n
                else:
                    as_float += 4 * a.size
        return stored, as_float
