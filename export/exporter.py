"""Export a trained Keras model to an .ebnn file, proven equivalent first.

    edgebnn export SOURCE -o model.ebnn [options]      (or python -m edgebnn_export.exporter)

SOURCE is a Keras model file (.keras, .h5), a SavedModel directory (Keras 2
/ tf_keras only), a training run directory (run.json + best/ or ckpt/), or a
tf.train.Checkpoint directory / prefix whose run.json is beside it or given
with --recipe. Steps: load -> convert (export.convert) -> fold
(edgebnn.fold) -> layer-by-layer equivalence on N inputs
(export.equivalence) -> write the folded graph. A failed check writes no
file (and removes a stale one it was asked to replace).
"""
import argparse
import json
import os
import sys

import numpy as np

from edgebnn.compact import FLOAT_PARAMS
from edgebnn.format import FLOAT_PARAMS_HELP

from .convert import ExportError, convert

DATASET_DEFAULTS = {
    "mnist": {"mean": [0.1307], "std": [0.3081], "labels": [str(d) for d in range(10)]},
    "cifar10": {"mean": [0.4914, 0.4822, 0.4465], "std": [0.2470, 0.2435, 0.2616],
                "labels": ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog",
                           "horse", "ship", "truck"]},
}
DEFAULT_SAMPLES = {"real": 1000, "random": 64}


# ---------------------------------------------------------------- loading --
def _legacy_keras():
    return os.environ.get("TF_USE_LEGACY_KERAS", "") in ("1", "true", "True")


def _import_larq():
    try:
        import larq  # noqa: F401  (registers its layers and quantizers with tf_keras)

        from . import larq_import  # noqa: F401
    except ImportError:
        pass


def _load_model_file(path):
    """A .keras / .h5 file or a SavedModel directory -> Keras model."""
    from . import layers  # noqa: F401  (registers edgebnn's layers with Keras 3)
    if _legacy_keras() or os.path.isdir(path):
        _import_larq()
        try:
            import tf_keras
        except ImportError:
            tf_keras = None
        if tf_keras is not None:
            try:
                return tf_keras.models.load_model(path, compile=False)
            except Exception as e:          # noqa: BLE001 (reported below)
                legacy_error = e
        else:
            legacy_error = ImportError("tf_keras is not installed")
        if os.path.isdir(path):
            raise ExportError(f"{path}: cannot load this SavedModel as a Keras model "
                              f"({type(legacy_error).__name__}: {legacy_error}). Keras 3 "
                              "SavedModels keep no layers; export the .keras file or the "
                              "checkpoint with its run.json instead")
    import keras
    try:
        return keras.saving.load_model(path, compile=False)
    except Exception as e:                  # noqa: BLE001
        raise ExportError(f"{path}: cannot load the Keras model: {type(e).__name__}: "
                          f"{' '.join(str(e).split())[:600]}") from None


def _read_run(path):
    try:
        with open(path) as f:
            run = json.load(f)
    except (OSError, ValueError) as e:
        raise ExportError(f"{path}: cannot read the run recipe: {e}") from None
    if not isinstance(run, dict) or "recipe" not in run or "net" not in run["recipe"]:
        raise ExportError(f"{path}: not a run.json of python -m export.train (no recipe)")
    return run


def _checkpoint_prefix(path, which):
    import tensorflow as tf
    if which not in (None, "best", "last"):
        return which
    if os.path.isfile(path + ".index"):
        return path
    candidates = [path]
    if os.path.isfile(os.path.join(path, "run.json")):
        sub = ["best", "ckpt"] if which in (None, "best") else ["ckpt"]
        candidates = [os.path.join(path, s) for s in sub]
    for c in candidates:
        prefix = tf.train.latest_checkpoint(c) if os.path.isdir(c) else None
        if prefix:
            return prefix
    raise ExportError(f"no checkpoint found in {', '.join(candidates)}")


def _restore(run, prefix):
    """Rebuild the network from the recipe and restore its weights."""
    import tensorflow as tf

    from . import models
    recipe = run["recipe"]
    try:
        model = models.build(recipe["net"], **recipe["model"])
    except (TypeError, ValueError) as e:
        raise ExportError(f"cannot rebuild the network from the recipe: {e}") from None
    if not os.path.isfile(prefix + ".index"):
        raise ExportError(f"checkpoint {prefix}: {prefix}.index does not exist")
    try:
        status = tf.train.Checkpoint(model=model).restore(prefix)
        status.assert_existing_objects_matched()
        status.expect_partial()         # the optimizer's slots are not needed
        tf.train.load_checkpoint(prefix)            # reads every shard's index
    except Exception as e:     # noqa: BLE001 -- TF raises many kinds (IndexError, OpError, ...)
        msg = " ".join(str(e).split())[:500]
        raise ExportError(f"checkpoint {prefix} cannot be restored into the "
                          f"{recipe['net']} network of the recipe (truncated, corrupt or "
                          f"from another network): {type(e).__name__}: {msg}") from None
    return model


def load_source(source, checkpoint=None, recipe=None):
    """-> (Keras model, run.json dict or None)."""
    if not os.path.exists(source) and not os.path.isfile(source + ".index"):
        raise ExportError(f"{source}: no such file or directory")
    run_path = recipe
    is_dir = os.path.isdir(source)
    if is_dir and os.path.isfile(os.path.join(source, "saved_model.pb")):
        return _load_model_file(source), None
    ckpt_like = os.path.isfile(source + ".index") or (is_dir and (
        os.path.isfile(os.path.join(source, "checkpoint")) or
        os.path.isfile(os.path.join(source, "run.json"))))
    if ckpt_like:
        if run_path is None:
            here = source if is_dir else os.path.dirname(source)
            for cand in (os.path.join(here, "run.json"), os.path.join(here, "..", "run.json")):
                if os.path.isfile(cand):
                    run_path = cand
                    break
        if run_path is None:
            raise ExportError(f"{source} is a checkpoint but no run.json was found beside it; "
                              "pass --recipe RUN.json")
        run = _read_run(run_path)
        return _restore(run, _checkpoint_prefix(source, checkpoint)), run
    if is_dir:
        raise ExportError(f"{source}: a directory, but neither a run directory (run.json), "
                          "a checkpoint directory nor a SavedModel")
    beside = run_path or os.path.join(os.path.dirname(os.path.abspath(source)), "run.json")
    run = _read_run(beside) if os.path.isfile(beside) else None
    return _load_model_file(source), run


def load_trained(source, option):
    """The model of a trained source that a training option names (--teacher,
    --init-from): its best checkpoint; a refusal exits naming the option."""
    try:
        model, _ = load_source(str(source), "best")
    except ExportError as e:
        raise SystemExit(f"{option}: {e}") from None
    return model


# ------------------------------------------------- labels, preprocessing --
def input_spec(model_shape, run, dataset, args):
    """(preprocess dict or None, labels or None) from run.json, dataset
    defaults and the command-line overrides, in that order."""
    pre, labels = None, None
    defaults = DATASET_DEFAULTS.get(dataset or (run or {}).get("recipe", {}).get(
        "data", {}).get("dataset"))
    image = len(model_shape) == 3 and model_shape[2] in (1, 3)
    if image:
        pre = {"size": list(model_shape[:2]), "channels": model_shape[2], "scale": 1 / 255,
               "mean": [0.0] * model_shape[2], "std": [1.0] * model_shape[2], "invert": False}
        source = None
        if run and run.get("preprocess"):
            source = run["preprocess"]
        elif defaults and len(defaults["mean"]) == model_shape[2]:
            source = defaults
        if source is not None:
            pre.update(scale=float(source.get("scale", 1 / 255)),
                       mean=[float(v) for v in source["mean"]],
                       std=[float(v) for v in source["std"]])
    if run and run.get("classes"):
        labels = [str(c) for c in run["classes"]]
    elif defaults:
        labels = list(defaults["labels"])
    if args is not None:
        if args.labels:
            labels = _labels_option(args.labels)
        if pre is not None:
            for key in ("mean", "std"):
                v = getattr(args, key)
                if v is not None:
                    pre[key] = [float(s) for s in v.split(",")]
            if args.scale is not None:
                pre["scale"] = args.scale
            if args.invert:
                pre["invert"] = True
        if args.no_preprocess:
            pre = None
    return pre, labels


def _labels_option(text):
    if text.startswith("@"):
        with open(text[1:]) as f:
            return [line.strip() for line in f if line.strip()]
    return [s.strip() for s in text.split(",")]


def sample_inputs(graph, data, dataset, samples, seed=0):
    """(float32 model inputs, labels or None, 'real' | 'random')."""
    shape = graph.input.shape
    if data is None and dataset is None:
        n = samples or DEFAULT_SAMPLES["random"]
        rng = np.random.default_rng(seed)
        return rng.standard_normal([n] + shape).astype(np.float32), None, "random"
    from edgebnn import datasets
    from edgebnn.preprocess import normalize
    if dataset not in datasets.LOADERS:
        raise ExportError(f"--dataset must be one of {sorted(datasets.LOADERS)}")
    n = samples or DEFAULT_SAMPLES["real"]
    kw = {"limit": n} if dataset == "cifar10" else {}
    try:
        x, y = datasets.LOADERS[dataset](data, "test", **kw)
    except (OSError, ValueError) as e:
        raise ExportError(f"reading {dataset}: {e}") from None
    x, y = x[:n], y[:n]
    if list(x.shape[1:]) != list(shape):
        raise ExportError(f"{dataset} images are {list(x.shape[1:])}, the model takes {shape}")
    if graph.input.preprocess is None:
        raise ExportError("real inputs need the input preprocessing (mean/std), which this "
                          "model has none of: drop --no-preprocess or pass --mean/--std")
    return normalize(x, graph.input), y, "real"


# ------------------------------------------------------------------ export --
def export(source, output, *, force=False, data=None, dataset=None, samples=None,
           checkpoint=None, recipe=None, args=None, tflite=(), backend="auto", log=print,
           compact=False, float_params="f32"):
    """Export SOURCE to OUTPUT after the equivalence check -> Report.
    Raises ExportError (file not written) on any refusal or failed check.
    compact: write format version 2 (lossless). float_params f16/int8/int6/int5/int4:
    round the float parameters when writing (lossy): the checked plan is
    float32, so the file is then compared with it and the difference logged
    (top-1 agreement, largest output difference, accuracy on labelled
    inputs) instead of required to match bit for bit."""
    from edgebnn import save
    from edgebnn.format import load_graph

    from .equivalence import Checker, _Stepper
    if os.path.exists(output) and not force:
        raise ExportError(f"{output} exists; pass --force to overwrite it")
    model, run = load_source(source, checkpoint, recipe)
    shape = [int(d) for d in model.inputs[0].shape[1:]]
    pre, labels = input_spec(shape, run, dataset, args)
    conversion = convert(model, labels=None, preprocess=pre)
    if labels is not None:
        out_shape = conversion.graph.by_name[conversion.graph.output].shape
        if out_shape != [len(labels)]:
            raise ExportError(f"{len(labels)} labels but the model's output has shape "
                              f"{out_shape}")
        conversion.graph.labels = labels
    if data is not None and dataset is None and run:
        dataset = run.get("recipe", {}).get("data", {}).get("dataset")
    x, y, kind = sample_inputs(conversion.graph, data, dataset, samples)
    checker = Checker(model, conversion, backend)
    report = checker.run(x, y, kind)
    log(report.text())
    if not report.passed:
        if os.path.exists(output) and force:
            os.remove(output)
        raise ExportError(report.failure_message())
    plan = checker.plan
    plan.labels = labels
    try:
        save(output, plan, overwrite=force, compact=compact, float_params=float_params)
    except ValueError as e:
        raise ExportError(f"cannot write {output}: {e}") from None
    written = _Stepper(_refold(load_graph(output)), backend)
    if float_params == "f32":
        # the written file must compute what was checked, bit for bit
        probe = x[:64]
        if not np.array_equal(written.run(probe), checker.stepper.run(probe)):
            os.remove(output)
            raise ExportError("the written file does not reproduce the checked plan")
    else:
        log(rounding_effect(written, checker.stepper, x, y, float_params))
    log(f"wrote {output} ({os.path.getsize(output):,} bytes, {len(plan.ops)} ops, folded, "
        f"format v{2 if compact else 1}, float params {float_params})")
    for mode in tflite:
        from .tflite import run_tflite, twin_outputs, write_tflite
        try:
            path = write_tflite(conversion.graph, output, mode, x, log=log)
        except Exception as e:      # noqa: BLE001 -- the TFLite converter raises many kinds
            raise ExportError(f"{output} was written, but the {mode} .tflite twin failed: "
                              f"{type(e).__name__}: {' '.join(str(e).split())[:400]}") from None
        probe = x[:32]
        twin, lite = twin_outputs(conversion.graph, probe), run_tflite(path, probe)
        log(f"wrote {path} (float twin, {mode}: effective binarized weights, activations not "
            f"binarized); vs the twin in TensorFlow on {len(probe)} inputs: top-1 agreement "
            f"{np.mean(twin.argmax(1) == lite.argmax(1)):.1%}, max |diff| "
            f"{np.abs(twin - lite).max():.3g}")
    return report


def rounding_effect(written, checked, x, y, float_params, batch=256):
    """One line: how the file with rounded float parameters differs from the
    checked float32 plan on the check inputs."""
    outs = [(written.run(x[i:i + batch]), checked.run(x[i:i + batch]))
            for i in range(0, len(x), batch)]
    new = np.concatenate([a for a, _ in outs]).reshape(len(x), -1)
    ref = np.concatenate([b for _, b in outs]).reshape(len(x), -1)
    text = (f"float params {float_params}: on {len(x)} inputs, top-1 agreement with the "
            f"float32 plan {np.mean(new.argmax(1) == ref.argmax(1)):.2%}, largest output "
            f"difference {np.abs(new - ref).max():.3g}")
    if y is not None:
        text += (f"; accuracy {np.mean(new.argmax(1) == y):.4f} (float32 plan "
                 f"{np.mean(ref.argmax(1) == y):.4f})")
    return text


def _refold(graph):
    from edgebnn.fold import fold
    return fold(graph)


def build_parser():
    p = argparse.ArgumentParser(
        prog="edgebnn export",
        description="Export a Keras model, a training checkpoint (+ run.json) or a Larq "
                    "model to an .ebnn file, after checking it layer by layer against Keras.")
    p.add_argument("source", help=".keras/.h5 file, SavedModel dir (tf_keras), run directory, "
                                  "or checkpoint dir/prefix")
    p.add_argument("-o", "--output", required=True, help="the .ebnn file to write")
    p.add_argument("--force", action="store_true", help="overwrite an existing output file")
    p.add_argument("--data", default=None, help="datasets folder (real inputs for the check)")
    p.add_argument("--dataset", choices=("mnist", "cifar10"), default=None,
                   help="use N test images of this dataset for the check (else random inputs)")
    p.add_argument("--samples", type=int, default=None,
                   help=f"inputs checked (default {DEFAULT_SAMPLES['real']} real, "
                        f"{DEFAULT_SAMPLES['random']} random)")
    p.add_argument("--checkpoint", default=None,
                   help="run directory: 'best' (default) or 'last', or a checkpoint prefix")
    p.add_argument("--recipe", default=None, help="run.json for a checkpoint source")
    p.add_argument("--labels", default=None, help="comma-separated class names, or @FILE")
    p.add_argument("--mean", default=None, help="per-channel mean, comma-separated")
    p.add_argument("--std", default=None, help="per-channel std, comma-separated")
    p.add_argument("--scale", type=float, default=None, help="pixel scale (default 1/255)")
    p.add_argument("--invert", action="store_true", help="input pixels are 255 - v")
    p.add_argument("--no-preprocess", action="store_true",
                   help="write no preprocessing (the model takes raw float input)")
    p.add_argument("--tflite", choices=("fp32", "int8"), nargs="+", default=[],
                   help="also write the float twin as .tflite (fp32 and/or full-integer int8)")
    p.add_argument("--compact", action="store_true",
                   help="write format version 2: 1 bit per binary weight, one data tensor, "
                        "compressed graph (lossless; older edgebnn releases cannot read it)")
    p.add_argument("--float-params", choices=FLOAT_PARAMS, default="f32",
                   help=FLOAT_PARAMS_HELP + ": the export log reports their effect on "
                        "the check inputs")
    p.add_argument("--backend", choices=("auto", "numpy"), default="auto",
                   help="ops are checked one by one in numpy; the whole file runs on the "
                        "compiled engine (auto, when built) or in numpy too")
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.samples is not None and args.samples < 1:
        print("edgebnn export: error: --samples must be >= 1", file=sys.stderr)
        return 2
    try:
        report = export(args.source, args.output, force=args.force, data=args.data,
                        dataset=args.dataset, samples=args.samples,
                        checkpoint=args.checkpoint, recipe=args.recipe, args=args,
                        tflite=args.tflite, backend=args.backend, compact=args.compact,
                        float_params=args.float_params)
    except (ExportError, OSError) as e:
        print(f"edgebnn export: error: {' '.join(str(e).split())}", file=sys.stderr)
        return 1
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
