"""Worker: time an .ebnn file through the public edgebnn API (edgebnn.load,
Model.threads, Model.run), so whatever the runtime does internally (numpy
glue today, a compiled plan later) is what gets measured. Run under the
project's Python; see timing.py for the arguments and output."""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(os.path.dirname(HERE))]
# numpy's BLAS would otherwise start one thread per core next to the
# engine's own threads
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import edgebnn  # noqa: E402
import timing  # noqa: E402
from edgebnn.engine_backend import load_engine  # noqa: E402

ENGINE = load_engine()      # imported before the memory baseline, like the peers' runtimes


class Runner:
    def __init__(self, args):
        self.model = edgebnn.load(args.model)
        if self.model.backend != "engine":
            timing.fail("compiled engine not built: run python setup.py build_ext --inplace")
        self.model.threads = args.threads
        self.input_shape = tuple(self.model.input_spec.shape)

    def run(self, x):
        return self.model.run(x)


if __name__ == "__main__":
    timing.main(Runner)
