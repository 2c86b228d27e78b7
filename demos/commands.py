"""The `edgebnn demo | serve | camera` subcommands: arguments here, code
imported only when a command runs (the CLI's other commands stay light)."""
import argparse
import importlib
import sys


def _positive(text):
    v = int(text)
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return v


def _runner(module):
    def run(args):
        from .models import DemoError
        try:
            return importlib.import_module(f".{module}", __package__).run(args)
        except DemoError as e:
            print(f"edgebnn {args.command}: {e}", file=sys.stderr)
            return e.code
    return run


def _model_options(s, default="lenet"):
    s.add_argument("--model", default=default,
                   help=f"lenet, resnet (the shipped models) or a .ebnn path (default {default})")
    s.add_argument("--threads", type=_positive, default=1, help="worker threads (default 1)")


def add(sub):
    """Add the demo subcommands to the edgebnn parser's subparsers."""
    s = sub.add_parser("demo", help="classify test images in the terminal",
                       description="Classify MNIST/CIFAR-10 test images, drawing a few of them.")
    _model_options(s)
    s.add_argument("--data", "--data-dir", dest="data", default=None,
                   help="datasets folder (default: $EDGEBNN_DATA or ../shared/datasets)")
    s.add_argument("--dataset", choices=("mnist", "cifar10"), default=None,
                   help="default: from the model's input (grey -> mnist, colour -> cifar10)")
    s.add_argument("--count", type=_positive, default=1000,
                   help="images to classify (default 1000)")
    s.add_argument("--show", type=int, default=3, help="images to draw (default 3)")
    s.add_argument("--seed", type=int, default=0, help="which images are drawn")
    s.add_argument("--batch", type=_positive, default=256)
    s.add_argument("--ascii", action="store_true", help="plain ASCII pictures, no colours")
    s.set_defaults(func=_runner("terminal_demo"))

    s = sub.add_parser("serve", help="web page: draw or upload, see the prediction",
                       description="Serve a page to draw a digit or upload a photo and see "
                                   "the top-3 classes and the latency.")
    _model_options(s)
    s.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1; 0.0.0.0 opens it to the LAN)")
    s.add_argument("--port", type=int, default=8000)
    s.add_argument("--tflite", default=None,
                   help="float .tflite twin of the model, run side by side (needs ai-edge-litert)")
    s.set_defaults(func=_runner("server"))

    s = sub.add_parser("camera", help="classify camera frames continuously",
                       description="Classify frames from a Pi camera (picamera2) or a USB "
                                   "webcam (OpenCV), printing frames per second.")
    _model_options(s)
    s.add_argument("--device", type=int, default=0, help="OpenCV camera index (default 0)")
    s.add_argument("--frames", type=_positive, default=None, help="stop after N frames")
    s.set_defaults(func=_runner("camera"))
