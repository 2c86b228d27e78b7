"""The `edgebnn` command: inspect and run .ebnn models.

classify/eval/bench run on the compiled engine (required; a clear
one-line error if it is not built); every output names the ISA in use.
Subcommands live in the COMMANDS table: one function for the arguments, one
to run."""
import argparse
import json
import os
import sys
import time

import numpy as np

from . import __version__
from .compact import FLOAT_PARAMS
from .datasets import DatasetError
from .format import FLOAT_PARAMS_HELP

def _executor_note(model):
    """Which executor runs the model (and the ISA, for the engine)."""
    return f"compiled engine, ISA {model.isa}"


def _load(path):
    from . import load      # takes the shipped names too
    return load(path)


def _fmt_bytes(n):
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024


def cmd_info(args):
    from .pretrained import resolve
    path = resolve(args.model)
    model = _load(path)
    g, spec = model.graph, model.input_spec
    print(f"model: {g.name}  ({path}, {os.path.getsize(path)} bytes, "
          f"format v{g.file_info['version']})")
    print(f"storage: {_storage_note(g)}")
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
    if args.bytes:
        _print_bytes(g)
    return 0


ENCODING_NOTES = {"F32": "float32", "F16": "float16", "Q8": "int8 + per-channel scale",
                  "Q6": "int6 + per-channel scale", "Q5": "int5 + per-channel scale",
                  "Q4": "int4 + per-channel scale",
                  "B1": "1 bit per weight", "U64": "bits in 64-bit words", "I32": "int32",
                  "U8": "uint8"}


def _storage_note(graph):
    from .format import encodings_used
    used = encodings_used(graph)
    return ", ".join(f"{n} x {enc} ({ENCODING_NOTES[enc]})" for enc, n in sorted(used.items()))


def _print_bytes(graph):
    """Where the file's bytes go (edgebnn.format.byte_breakdown)."""
    from .format import byte_breakdown
    parts = byte_breakdown(graph)
    total = parts["file"]
    print("\nbytes of the file:")
    labels = {"binary weights": "binary weights", "float weights": "float weights (float layers)",
              "other params": "other params (BN, scales, thresholds)",
              "graph": "graph document" + (" (zlib)" if graph.file_info["version"] >= 2 else ""),
              "container": "container header, table, alignment"}
    for key, label in labels.items():
        print(f"  {label:<40} {parts[key]:>12,} B  {100 * parts[key] / max(total, 1):5.1f} %")
    print(f"  {'file':<40} {total:>12,} B")
    bits = parts["binary bits"]
    print(f"  (binary weights: {bits:,} bits = {bits / 8:,.0f} B at one bit each; "
          f"stored {parts['binary weights']:,} B)")


def cmd_classify(args):
    model = _load(args.model)
    model.threads = args.threads
    results = []
    for path in args.images:
        top = model.classify(path, top_k=args.top_k)
        results.append({"image": path, "top": [{"label": lbl, "probability": p}
                                               for lbl, p in top]})
        if not args.json:
            print(f"{path}: " + ", ".join(f"{label} {p:.3f}" for label, p in top))
    if args.json:
        print(json.dumps({"model": args.model, "results": results}))
    else:
        print(f"({_executor_note(model)})")
    return 0


def _dataset(args, spec, labels):
    from . import datasets as ds
    if args.dataset == "mnist":
        x, y = ds.load_mnist(args.data_dir, args.split)
    elif args.dataset == "cifar10":
        x, y = ds.load_cifar10(args.data_dir, args.split, limit=args.limit)
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
    from tqdm import tqdm
    model = _load(args.model)
    model.threads = args.threads
    x, y = _dataset(args, model.input_spec, model.labels)
    start = time.perf_counter()
    correct = 0
    with tqdm(total=len(x), unit="img", disable=args.quiet, file=sys.stderr,
              leave=False) as bar:
        for i in range(0, len(x), args.batch_size):
            correct += int(np.sum(model.predict(x[i:i + args.batch_size])
                                  == y[i:i + args.batch_size]))
            bar.update(min(args.batch_size, len(x) - i))
            bar.set_postfix(acc=f"{correct / min(i + args.batch_size, len(x)):.4f}")
    dt = time.perf_counter() - start
    print(f"accuracy: {correct / len(x):.4f} ({correct}/{len(x)}) on {args.dataset} "
          f"{args.split}; {dt:.1f}s, {len(x) / dt:.0f} images/s; {_executor_note(model)}")
    return 0


def _latencies(model, x, runs, warmup):
    for _ in range(warmup):
        model.run(x)
    times = np.empty(runs)
    for i in range(runs):
        t = time.perf_counter()
        model.run(x)
        times[i] = time.perf_counter() - t
    return times


def cmd_bench(args):
    model = _load(args.model)
    model.threads = args.threads
    rng = np.random.default_rng(0)
    print(f"{'batch':>6} {'p50 ms':>10} {'p90 ms':>10} {'images/s':>10}   "
          f"({_executor_note(model)}, {args.threads} thread(s), {args.runs} runs)")
    for batch in sorted({1, args.batch_size}):
        x = rng.standard_normal([batch] + model.input_spec.shape).astype(np.float32)
        t = _latencies(model, x, args.runs, args.warmup)
        p50, p90 = np.percentile(t, 50), np.percentile(t, 90)
        print(f"{batch:>6} {p50 * 1e3:>10.3f} {p90 * 1e3:>10.3f} {batch / p50:>10.1f}")
    return 0


def cmd_export(args):
    """Keras/TF/Larq -> .ebnn: the training side's exporter (edgebnn_export,
    needs TensorFlow), imported only for this command."""
    try:
        from edgebnn_export.exporter import main as export_main
    except ImportError as e:
        raise ValueError(f"export needs the training side (pip install 'edgebnn[train]'): {e}") from None
    return export_main(args.export_args)


def _add_export_command(sub):
    # every argument, even --help, goes to the exporter's own parser: no
    # help option and no option prefix here
    s = sub.add_parser("export", help="Keras / checkpoint / Larq model -> .ebnn (needs TensorFlow)",
                       description="See: edgebnn export --help", add_help=False,
                       prefix_chars="\0")
    s.add_argument("export_args", nargs=argparse.REMAINDER)
    s.set_defaults(func=cmd_export)


def _positive(text):
    v = int(text)
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return v


def _model_arg(s):
    s.add_argument("model", help="a .ebnn file, or lenet / resnet (the shipped pretrained models)")


def _run_args(s):
    _model_arg(s)
    s.add_argument("--threads", type=_positive, default=1, help="worker threads (default 1)")


def _classify_args(s):
    _run_args(s)
    s.add_argument("images", nargs="+", help="image files (PNG, JPEG, ...)")
    s.add_argument("--top-k", type=_positive, default=5, help="labels per image (default 5)")
    s.add_argument("--json", action="store_true", help="print one JSON document")


def _eval_args(s):
    _run_args(s)
    s.add_argument("--data", "--dataset", dest="dataset", required=True,
                   help="mnist, cifar10, or a folder root/<class>/*.png|jpg")
    s.add_argument("--data-dir", default=None,
                   help="where mnist/cifar10 files are (default: $EDGEBNN_DATA or "
                        "../shared/datasets)")
    s.add_argument("--split", choices=("test", "train"), default="test")
    s.add_argument("--limit", type=_positive, default=None, help="evaluate only N images")
    # plans keep every activation of a batch: 64 keeps ResNet-20-sized nets near 30 MiB
    s.add_argument("--batch-size", "--batch", dest="batch_size", type=_positive, default=64,
                   help="images per run (default 64)")
    s.add_argument("--quiet", action="store_true", help="no progress bar")


def _bench_args(s):
    _run_args(s)
    s.add_argument("--batch-size", type=_positive, default=32,
                   help="batch for the throughput line (default 32)")
    s.add_argument("--runs", type=_positive, default=200, help="timed runs per batch")
    s.add_argument("--warmup", type=int, default=10)


# name -> (one-line help, description, add arguments, run). Another command
# is one entry here (commands needing TensorFlow import it inside `run`).
def _info_args(s):
    _model_arg(s)
    s.add_argument("--bytes", action="store_true",
                   help="also print where the file's bytes go (weights, parameters, graph, "
                        "container)")


def cmd_repack(args):
    from .format import byte_breakdown, load_graph, save
    from .pretrained import resolve
    src = resolve(args.model)
    graph = load_graph(src)
    written = save(args.output, graph, overwrite=args.force, compact=args.compact,
                   float_params=args.float_params)
    before, after = os.path.getsize(src), byte_breakdown(written)["file"]
    print(f"wrote {args.output}: format v{written.file_info['version']}, {after:,} bytes "
          f"({before:,} before, {before / max(after, 1):.2f}x smaller); storage: "
          f"{_storage_note(written)}")
    if args.float_params != "f32":
        print(f"float parameters rounded to {args.float_params}: outputs differ from the "
              "original; measure with edgebnn eval")
    return 0


def _repack_args(s):
    _model_arg(s)
    s.add_argument("-o", "--output", required=True, help="the .ebnn file to write")
    s.add_argument("--compact", action="store_true",
                   help="format version 2: 1 bit per binary weight, one data tensor, "
                        "compressed graph (lossless; needs edgebnn >= this version to read)")
    s.add_argument("--float-params", choices=FLOAT_PARAMS, default="f32",
                   help=FLOAT_PARAMS_HELP + ": measure with edgebnn eval")
    s.add_argument("--force", action="store_true", help="overwrite an existing output file")


COMMANDS = {
    "info": ("layers, parameter bytes, compression, ISA",
             "Validate a model file and describe it.", _info_args, cmd_info),
    "repack": ("rewrite a model file in another storage (compact, float16, int8 ... int4)",
               "Re-encode a .ebnn file: format version 2 (--compact) and/or rounded float "
               "parameters (--float-params).", _repack_args, cmd_repack),
    "classify": ("top-k labels for images",
                 "Classify image files, printing the top-k labels.", _classify_args,
                 cmd_classify),
    "eval": ("accuracy on a dataset", "Accuracy on MNIST, CIFAR-10 or an image folder.",
             _eval_args, cmd_eval),
    "bench": ("latency p50/p90 and throughput",
              "Time Model.run on random inputs: batch 1 latency and batch-size throughput.",
              _bench_args, cmd_bench),
}


def build_parser():
    p = argparse.ArgumentParser(prog="edgebnn", description="Inspect and run .ebnn models.")
    p.add_argument("--version", action="version", version=f"edgebnn {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (short_help, description, add_args, run) in COMMANDS.items():
        s = sub.add_parser(name, help=short_help, description=description)
        add_args(s)
        s.set_defaults(func=run)
    _add_export_command(sub)
    _add_demo_commands(sub)
    return p


# ---------------------------------------------------------------- demos ---
def _add_demo_commands(sub):
    """demo, serve, camera: defined in the demos package, installed as
    edgebnn_demos (demos/ in the source tree); absent without it."""
    import importlib.util
    if importlib.util.find_spec("edgebnn_demos") is None:
        return
    from edgebnn_demos import commands
    commands.add(sub)


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, OSError, ImportError, DatasetError) as e:   # ModelError: ValueError
        msg = " ".join(str(e).split()) or type(e).__name__
        print(f"edgebnn: error: {msg}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
