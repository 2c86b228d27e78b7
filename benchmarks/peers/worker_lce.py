"""Worker: time a Larq Compute Engine flatbuffer in LCE's own interpreter.
LCE models have a fixed batch, so the batch-32 throughput uses a second
file converted at batch 32 (--model-batch). Kernel options: default,
indirect (indirect BGEMM), and either with XNNPACK. Run in the LCE venv."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import timing  # noqa: E402


def _lite_wrapper():
    """LCE's interpreter extension, loaded by file: importing the
    larq_compute_engine package would pull in TensorFlow (for its
    converter) and inflate load time and resident memory."""
    import importlib.machinery
    import importlib.util
    spec = importlib.util.find_spec("larq_compute_engine")
    folder = os.path.join(os.path.dirname(spec.origin), "tflite", "python")
    so = next(f for f in os.listdir(folder) if f.startswith("interpreter_wrapper_lite"))
    loader = importlib.machinery.ExtensionFileLoader("interpreter_wrapper_lite",
                                                     os.path.join(folder, so))
    mod = importlib.util.module_from_spec(importlib.util.spec_from_loader(loader.name, loader))
    loader.exec_module(mod)
    return mod


LITE = _lite_wrapper()

OPTIONS = {"default": (False, False), "indirect": (True, False),
           "xnnpack": (False, True), "indirect+xnnpack": (True, True)}


def add_args(ap):
    ap.add_argument("--option", choices=sorted(OPTIONS), default="default")
    ap.add_argument("--model-batch", help="same network converted at the --batch size")


class Runner:
    def __init__(self, args):
        indirect, xnnpack = OPTIONS[args.option]

        def make(path):
            # the arguments of larq_compute_engine.tflite.python.interpreter.Interpreter:
            # (flatbuffer, num_threads, use_reference_bconv, use_indirect_bgemm, use_xnnpack)
            with open(path, "rb") as f:
                return LITE.LiteInterpreter(f.read(), args.threads, False, indirect, xnnpack)
        self.by_batch = {1: make(args.model)}
        if args.batch and args.model_batch:
            self.by_batch[args.batch] = make(args.model_batch)
        elif args.batch:
            timing.fail("LCE needs --model-batch for a batch other than 1")
        self.input_shape = tuple(self.by_batch[1].input_shapes[0][1:])

    def run(self, x):
        # what Interpreter.predict() calls per sample: one invoke on [N, ...]
        return self.by_batch[x.shape[0]].predict([x])[0]


if __name__ == "__main__":
    timing.main(Runner, add_args)
