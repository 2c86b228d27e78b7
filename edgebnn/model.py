"""Model: the public face of a loaded .ebnn file. It folds the graph into
a plan and hands that to an executor: the compiled engine
(edgebnn.engine_backend) when edgebnn._engine is built, else the numpy
fallback (edgebnn.numpy_backend); both have the same run() interface."""
import math

import numpy as np

from .engine_backend import EngineExecutor, load_engine
from .fold import fold
from .numpy_backend import NumpyExecutor
from .preprocess import load_image, normalize

BACKENDS = {"numpy": NumpyExecutor, "engine": EngineExecutor}


class Model:
    def __init__(self, graph, backend="auto", threads=1):
        if backend == "auto":
            backend = "engine" if load_engine() is not None else "numpy"
        if backend not in BACKENDS:
            raise ValueError(f"backend must be 'auto' or one of {sorted(BACKENDS)}, got {backend!r}")
        self.graph = graph
        self.plan = fold(graph)
        self.backend = backend
        self._exec = BACKENDS[backend](self.plan)
        self.threads = threads

    @property
    def input_spec(self):
        return self.graph.input

    @property
    def labels(self):
        return self.graph.labels

    @property
    def threads(self):
        return self._threads

    @threads.setter
    def threads(self, n):
        if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= 256:
            raise ValueError(f"threads must be an integer in 1..256, got {n!r}")
        self._threads = n

    def run(self, x):
        """x: [N, *input shape] (or one sample without N); uint8 raw pixels
        (preprocessed as the file says) or float32 model input. -> outputs
        [N, ...] float32."""
        x = np.asarray(x)
        shape = tuple(self.input_spec.shape)
        if x.shape == shape:
            x = x[None]
        if x.ndim != len(shape) + 1 or x.shape[1:] != shape or x.shape[0] < 1:
            raise ValueError(f"input must have shape [N, {', '.join(map(str, shape))}], "
                             f"got {list(x.shape)}")
        if x.dtype == np.uint8:
            x = normalize(x, self.input_spec)
        elif x.dtype != np.float32:
            raise ValueError(f"input must be uint8 (raw pixels) or float32, got {x.dtype}")
        return self._exec.run(np.ascontiguousarray(x), threads=self._threads)

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

    def summary(self):
        """Per op of the plan: name, op, output shape, weight bits, parameter
        bytes, MACs (multiply-accumulates per sample), source_ops (the ops
        of the file it computes)."""
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
            rows.append({"name": op.name, "op": kind, "shape": list(op.shape),
                         "weight_bits": bits, "param_bytes": pbytes, "macs": macs,
                         "source_ops": list(self.plan.origin.get(op.name, [op.name]))})
        return rows

    def sizes(self):
        """(bytes stored, bytes the same weights take as float32)."""
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
