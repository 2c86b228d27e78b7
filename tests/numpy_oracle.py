"""Oracle of the folded ops: runs a FOLDED graph in plain numpy (float32),
op for op what the compiled engine computes (integer dots, thresholds,
output stage). Tests compare the compiled plans against it (and it against
the unfolded float64 reference, tests/reference_executor.py):
NumpyExecutor(graph).run(x) -> float32 output.

The single-op semantics are the exporter's (edgebnn_export.folded_numpy,
numpy only): one implementation of FORMAT.md section 5 serves both the
exporter's op-by-op check and these tests. Bits tensors are carried as +-1
float32 values (unpacked): the same numbers the packed words stand for.
"""
import numpy as np

from edgebnn_export.folded_numpy import STEPS, step


class NumpyExecutor:
    """Runs a folded Graph."""
    name = "numpy"

    def __init__(self, graph):
        self.graph = graph
        for op in graph.ops:
            if op.type not in STEPS:
                raise ValueError(f"op {op.name!r}: type {op.type!r} must be folded first")

    def run(self, x, threads=1):
        """threads is accepted for interface parity and ignored."""
        values = {self.graph.input.name: np.asarray(x, np.float32)}
        remaining = {}
        for op in self.graph.ops:
            for name in op.inputs:
                remaining[name] = remaining.get(name, 0) + 1
        for op in self.graph.ops:
            values[op.name] = step(op, [values[n] for n in op.inputs])
            for name in op.inputs:      # free activations nobody needs any more
                remaining[name] -= 1
                if remaining[name] == 0 and name != self.graph.output:
                    del values[name]
        return values[self.graph.output]
