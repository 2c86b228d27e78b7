"""Engine executor: runs a FOLDED graph through the compiled kernels of
edgebnn._engine, one call per conv/dense/pool, activations kept packed
between binary layers. Same interface as the numpy fallback
(edgebnn.numpy_backend.NumpyExecutor), which is its reference in tests.

The small elementwise ops (batchnorm, relu, hardtanh, sign, add, flatten,
softmax, lrn) run in numpy: one vectorised pass each."""
import numpy as np

from . import numpy_backend as fallback

REQUIRED = ("bitpack", "bconv2d", "bdense", "maxpool_bits", "wconv2d", "wdense", "fconv2d",
            "fdense", "kmap", "maxpool", "avgpool", "global_avgpool")


def load_engine():
    """The compiled engine module, or None if it is not built (or lacks an op)."""
    try:
        from . import _engine
    except ImportError:
        return None
    return _engine if all(hasattr(_engine, f) for f in REQUIRED) else None


def _clamp(c):
    if c is None:
        return None
    lo, hi = c
    return (-np.inf if lo is None else lo, np.inf if hi is None else hi)


class EngineExecutor:
    name = "engine"

    def __init__(self, graph, engine=None):
        self.graph = graph
        self.eng = engine or load_engine()
        if self.eng is None:
            raise ValueError("the compiled engine (edgebnn._engine) is not built")
        self._coverage = {}
        self._params = {}

    # ------------------------------------------------------------ helpers --
    def _packed(self, x, nt):
        return x if x.dtype == np.uint64 else self.eng.bitpack(np.ascontiguousarray(x),
                                                                num_threads=nt)

    def _kmap(self, op, x, nt):
        """K per output pixel: from |x| for float input; for a packed (+-1)
        input mean|x| is 1, so K is the window coverage, the same for every
        sample (computed once per input size)."""
        a = op.attrs
        if op.type == "fused_dense":
            if x.dtype == np.uint64:
                return np.ones(x.shape[0], np.float32)
            return np.abs(x).mean(axis=1, dtype=np.float32)
        if x.dtype != np.uint64:
            return self.eng.kmap(x, a["kernel"], a["strides"], a["padding"], num_threads=nt).ravel()
        key = (op.name, x.shape[1], x.shape[2])
        if key not in self._coverage:
            ones = np.ones((1, x.shape[1], x.shape[2], 1), np.float32)
            self._coverage[key] = self.eng.kmap(ones, a["kernel"], a["strides"], a["padding"])
        return np.ascontiguousarray(np.broadcast_to(
            self._coverage[key], (x.shape[0],) + self._coverage[key].shape[1:])).ravel()

    def _fused(self, op, x, nt):
        a, eng = op.attrs, self.eng
        if op.name not in self._params:         # float16 storage widened once
            self._params[op.name] = op.compute_params()
        p = self._params[op.name]
        stage = {"out": a["output"], "num_threads": nt}
        if "thresholds" in p:
            stage.update(thresholds=np.asarray(p["thresholds"]), flip=np.asarray(p["flip"]))
        else:
            stage.update(mul=p.get("mul"), bias=p.get("bias"), clamp=_clamp(a["clamp"]))
            if a["input_scaling"] == "mean_abs":
                stage["pixel_scale"] = self._kmap(op, x, nt)
        w = p["weight"]
        conv = op.type == "fused_conv2d"
        if a["scheme"] == "binary":
            xp = self._packed(x, nt)
            if conv:
                return eng.bconv2d(xp, op.fan_in, w, a["kernel"], a["strides"], a["padding"],
                                   **stage)
            return eng.bdense(xp, op.fan_in, w, **stage)
        x = np.ascontiguousarray(x, np.float32)
        if a["scheme"] == "binary_weights":
            if conv:
                return eng.wconv2d(x, op.fan_in, w, a["kernel"], a["strides"], a["padding"],
                                   **stage)
            return eng.wdense(x, w, **stage)
        if conv:
            return eng.fconv2d(x, w, a["kernel"], a["strides"], a["padding"], **stage)
        return eng.fdense(x, w, **stage)

    def _step(self, op, ins, nt):
        eng, a = self.eng, op.attrs
        if op.type in ("fused_conv2d", "fused_dense"):
            return self._fused(op, ins[0], nt)
        if op.type == "maxpool" and ins[0].dtype == np.uint64:
            return eng.maxpool_bits(ins[0], op.shape[-1], a["pool"], a["strides"], a["padding"],
                                    num_threads=nt)
        if op.type in ("maxpool", "avgpool"):
            f = eng.maxpool if op.type == "maxpool" else eng.avgpool
            return f(ins[0], a["pool"], a["strides"], a["padding"], num_threads=nt)
        if op.type == "global_avgpool":
            return eng.global_avgpool(ins[0], num_threads=nt)
        return fallback._SIMPLE[op.type](op, ins).astype(np.float32, copy=False)

    def run(self, x, threads=1):
        values = {self.graph.input.name: np.ascontiguousarray(x, np.float32)}
        remaining = {}
        for op in self.graph.ops:
            for name in op.inputs:
                remaining[name] = remaining.get(name, 0) + 1
        for op in self.graph.ops:
            out = self._step(op, [values[n] for n in op.inputs], threads)
            values[op.name] = np.ascontiguousarray(out)
            for name in op.inputs:
                remaining[name] -= 1
                if remaining[name] == 0 and name != self.graph.output:
                    del values[name]
        return values[self.graph.output]
