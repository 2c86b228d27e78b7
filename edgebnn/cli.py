"""The `edgebnn` command: inspect and run .ebnn models.

classify/eval/bench run on the compiled engine when it is built and on
the numpy fallback executor otherwise; every output names which."""
import argparse
import os
import sys
import time

import numpy as np

from . import __version__
from .datasets import DatasetError

def _executor_note(model):
    """Which executor runs the model (and the ISA, for the engine)."""
    if model.backend == "engine":
        from . import _engine
        return f"compiled engine, ISA {_engine.get_isa()}"
    return "numpy fallback executor (compiled engine not built)"


def _load(path):
    from . import load
    return load(path)


def _fmt_bytes(n):
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024


def cmd_info(args):
    model = _load(args.model)
    g, spec = model.graph, model.input_spec
    print(f"model: {g.name}  ({args.model}, {os.path.getsize(args.model)} bytes, format v1)")
    pre = spec.preprocess
    pre_text = "none" if pre is None else (
        f"resize {pre['size'][0]}x{pre['size'][1]}, {pre['channels']} channel(s), "
        f"{'invert, ' if pre['invert'] else ''}scale {pre['scale']:.6g}, "
        f"mean {pre['mean']}, std {pre['std']}")
    print(f"input: {spec.name} {spec.shape}; preprocessing: {pre_text}")
    labels = model.labels
    if labels:
        shown = ", ".join(labels[:10]) + (", ..." if len(labels) > 10 else "")
        print(f"labels: {len(labels)} ({shown})")
    else:
        print("labels: none")
    print(f"executor: {_executor_note(model)}")
    rows = model.summary()
    print(f"\nlayers ({len(g.ops)} ops in the file, {len(rows)} after folding):")
    head = (f"{'#':>3}  {'source ops':<34} {'op':<30} {'output':<14} {'w bits':>6} "
            f"{'params':>10} {'MACs':>12}")
    print(head)
    print("-" * len(head))
    for i, r in enumerate(rows):
        bits = "" if r["weight_bits"] is None else str(r["weight_bits"])
        src = "+".join(r["source_ops"])
        src = src if len(src) <= 34 else src[:31] + "..."
        print(f"{i:>3}  {src:<34} {r['op'][:30]:<30} {str(r['shape']):<14} "
              f"{bits:>6} {_fmt_bytes(r['param_bytes']):>10} {r['macs']:>12,}")
    stored, as_float = model.sizes()
    macs = sum(r["macs"] for r in rows)
    print(f"\nparameters: {_fmt_bytes(stored)} stored; as float32 {_fmt_bytes(as_float)}; "
          f"compression {as_float / max(stored, 1):.1f}x; {macs:,} MACs per sample")
    return 0


def cmd_classify(args):
    model = _load(args.model)
    model.threads = args.threads
    for path in args.images:
        top = model.classify(path, top_k=args.top_k)
        print(f"{path}: " + ", ".join(f"{label} {p:.3f}" for label, p in top))
    print(f"({_executor_note(model)})")
    return 0


def _dataset(args, spec, labels):
    from . import datasets as ds
    if args.dataset == "mnist":
        x, y = ds.load_mnist(args.data, args.split)
    elif args.dataset == "cifar10":
        x, y = ds.load_cifar10(args.data, args.split, limit=args.limit)
    else:
        if len(spec.shape) != 3:
            raise ValueError("an image folder needs a model with an image input")
        # folders named like the model's labels are read in label order;
        # otherwise sorted folder names map to class indices 0, 1, ...
        classes = None
        if labels and all(os.path.isdir(os.path.join(args.dataset, c)) for c in labels):
            classes = labels
        x, y = ds.read_image_folder(args.dataset, classes=classes, size=spec.shape[:2],
                                    channels=spec.shape[2], limit=args.limit)
    if args.limit is not None:
        x, y = x[:args.limit], y[:args.limit]
    if list(x.shape[1:]) != list(spec.shape):
        raise ValueError(f"dataset images are {list(x.shape[1:])}, the model takes {spec.shape}")
    return x, y


def cmd_eval(args):
    model = _load(args.model)
    model.threads = args.threads
    x, y = _dataset(args, model.input_spec, model.labels)
    start = time.perf_counter()
    correct = 0
    for i in range(0, len(x), args.batch):
        correct += int(np.sum(model.predict(x[i:i + args.batch]) == y[i:i + args.batch]))
    dt = time.perf_counter() - start
    print(f"accuracy: {correct / len(x):.4f} ({correct}/{len(x)}) on {args.dataset} "
          f"{args.split}; {dt:.1f}s, {len(x) / dt:.0f} images/s; {_executor_note(model)}")
    return 0


def cmd_bench(args):
    model = _load(args.model)
    model.threads = args.threads
    rng = np.random.default_rng(0)
    print(f"{'batch':>6} {'mean ms':>10} {'min ms':>10} {'images/s':>10}   ({_executor_note(model)}, "
          f"{args.threads} thread(s))")
    for batch in args.batch:
        x = rng.standard_normal([batch] + model.input_spec.shape).astype(np.float32)
        for _ in range(args.warmup):
            model.run(x)
        times = []
        for _ in range(args.runs):
            t = time.perf_counter()
            model.run(x)
            times.append(time.perf_counter() - t)
        mean = sum(times) / len(times)
        print(f"{batch:>6} {mean * 1e3:>10.2f} {min(times) * 1e3:>10.2f} {batch / mean:>10.1f}")
    return 0


def _positive(text):
    v = int(text)
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return v


def build_parser():
    p = argparse.ArgumentParser(prog="edgebnn", description="Inspect and run .ebnn models.")
    p.add_argument("--version", action="version", version=f"edgebnn {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("info", help="layers, parameter bytes, compression, ISA",
                       description="Validate a model file and describe it.")
    s.add_argument("model", help="path to a .ebnn file")
    s.set_defaults(func=cmd_info)

    def run_opts(s):
        s.add_argument("model", help="path to a .ebnn file")
        s.add_argument("--threads", type=_positive, default=1, help="worker threads (default 1)")

    s = sub.add_parser("classify", help="top-k labels for images",
                       description="Classify image files, printing the top-k labels.")
    run_opts(s)
    s.add_argument("images", nargs="+", help="image files (PNG, JPEG, ...)")
    s.add_argument("--top-k", type=_positive, default=5)
    s.set_defaults(func=cmd_classify)

    s = sub.add_parser("eval", help="accuracy on a dataset",
                       description="Accuracy on MNIST, CIFAR-10 or an image folder.")
    run_opts(s)
    s.add_argument("--dataset", required=True,
                   help="mnist, cifar10, or a folder root/<class>/*.png|jpg")
    s.add_argument("--data", default=None,
                   help="datasets folder (default: $EDGEBNN_DATA or ../shared/datasets)")
    s.add_argument("--split", choices=("test", "train"), default="test")
    s.add_argument("--limit", type=_positive, default=None, help="evaluate only N images")
    s.add_argument("--batch", type=_positive, default=256)
    s.set_defaults(func=cmd_eval)

    s = sub.add_parser("bench", help="latency/throughput table",
                       description="Time Model.run on random inputs.")
    run_opts(s)
    s.add_argument("--batch", type=_positive, nargs="+", default=[1])
    s.add_argument("--runs", type=_positive, default=10)
    s.add_argument("--warmup", type=int, default=1)
    s.set_defaults(func=cmd_bench)
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, OSError, DatasetError) as e:   # ModelError is a ValueError
        msg = " ".join(str(e).split()) or type(e).__name__
        print(f"edgebnn: error: {msg}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
