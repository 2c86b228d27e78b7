"""Train a (binarized) network: edgebnn-train --help (python -m edgebnn_export.train)

A run directory holds run.json (the full recipe: enough for the exporter to
rebuild the network with export.models.build(recipe['net'],
**recipe['model']) and restore a checkpoint), log.csv, ckpt/ (the last 2
epochs), best/ (best validation accuracy), model.keras (at the end).
Checkpoints are tf.train.Checkpoint(model, optimizer, epoch, best_acc).
"""
import argparse
import csv
import json
import math
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

DEFAULT_LR = {"adam": 1e-3, "sgd": 0.1, "momentum": 0.1}


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        prog="edgebnn-train",
        description="Train LeNet / ResNet(n) / AlexNet with float or "
                    "binarized (xnor, scalar, binary) layers.")
    g = p.add_argument_group("data")
    g.add_argument("--data", default=None,
                   help="datasets folder (default: $EDGEBNN_DATA, else "
                        "../shared/datasets from the cwd or the repo root)")
    g.add_argument("--dataset", choices=("mnist", "cifar10", "folder"),
                   default="mnist")
    g.add_argument("--image-size", type=int, nargs=2, metavar=("H", "W"),
                   help="resize folder images to H W")
    g.add_argument("--limit", type=int, default=None, metavar="N",
                   help="use only N training (and at most N test) samples")
    g.add_argument("--augment", choices=("none", "crop", "crop-flip"),
                   default=None, help="random crop of the zero-padded image "
                   "(+ horizontal flip); default: crop-flip for cifar10, "
                   "else none")
    g.add_argument("--crop-pad", type=int, default=4,
                   help="zero padding before the random crop (pixels)")
    g = p.add_argument_group("network")
    g.add_argument("--net", choices=("lenet", "resnet", "alexnet"),
                   default="lenet")
    g.add_argument("--n", type=int, default=3, help="ResNet blocks per stage")
    g.add_argument("--scheme", choices=("float", "xnor", "scalar", "binary"),
                   default="binary")
    g.add_argument("--width", type=float, default=1.0,
                   help="multiplier of every layer's channel count")
    g.add_argument("--padding", choices=("same", "same_one"), default="same",
                   help="'same' = zero padding after sign, 'same_one' = +1")
    g.add_argument("--binary-first", action="store_true",
                   help="binarize the first conv too (default: float)")
    g.add_argument("--binary-last", action="store_true",
                   help="binarize the last dense too (default: float)")
    g.add_argument("--no-k-scale", action="store_true",
                   help="binary scheme: drop the K input scale")
    g.add_argument("--clip-weights", action="store_true",
                   help="keep latent weights in [-1, 1]")
    g.add_argument("--weight-ste", choices=("clip", "identity"),
                   default="clip")
    g.add_argument("--dropout", type=float, default=0.5,
                   help="LeNet/AlexNet dropout rate")
    g.add_argument("--shortcut", choices=("avgpool", "conv"),
                   default="avgpool", help="ResNet downsampling shortcut")
    g.add_argument("--bireal", action="store_true",
                   help="ResNet: real-valued shortcut around every conv")
    g.add_argument("--channel-scale", action="store_true",
                   help="ResNet: learnable per-channel scale after each conv")
    g.add_argument("--bn-after-conv", action="store_true",
                   help="ResNet: BN after each conv instead of before sign")
    g = p.add_argument_group("optimisation")
    g.add_argument("--epochs", type=int, default=None,
                   help="total epochs (default 10; with --resume: keep)")
    g.add_argument("--batch-size", type=int, default=128)
    g.add_argument("--optimizer", choices=("adam", "sgd", "momentum"),
                   default="adam")
    g.add_argument("--lr", type=float, default=None,
                   help="initial learning rate (default: adam 1e-3, "
                        "sgd/momentum 0.1)")
    g.add_argument("--momentum", type=float, default=0.9)
    g.add_argument("--schedule", choices=("cosine", "step", "constant"),
                   default="cosine")
    g.add_argument("--lr-steps", default="0.5,0.75",
                   help="step schedule: fractions of training at which the "
                        "rate drops 10x")
    g.add_argument("--warmup-epochs", type=float, default=0.0)
    g.add_argument("--weight-decay", type=float, default=0.0,
                   help="decoupled decay of float conv/dense kernels only")
    g.add_argument("--teacher", default=None, metavar="SOURCE",
                   help="distil from this trained model (a run directory, checkpoint or "
                        ".keras file; its best checkpoint); allowed with --resume")
    g.add_argument("--distill-alpha", type=float, default=0.9,
                   help="weight of the teacher term (the labels get 1 - alpha)")
    g.add_argument("--distill-temperature", type=float, default=1.0)
    g.add_argument("--init-from", default=None, metavar="SOURCE",
                   help="start from a trained model's weights (a run directory, "
                        "checkpoint or .keras file; its best checkpoint), copied by "
                        "layer name where the shapes match: e.g. a binary run from "
                        "an xnor or float run of the same network (two-step training)")
    g = p.add_argument_group("run")
    g.add_argument("--out", required=True, help="run directory")
    g.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its last checkpoint")
    g.add_argument("--force", action="store_true",
                   help="delete an existing --out and start again")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--threads", type=int, default=0,
                   help="CPU threads for TensorFlow (0: its default)")
    g.add_argument("--verbose", type=int, choices=(0, 1, 2), default=None,
                   help="Keras progress: 1 bar, 2 line per epoch "
                        "(default: 1 on a terminal, else 2)")
    args = p.parse_args(argv)
    if args.resume and args.force:
        p.error("--resume and --force exclude each other")
    if args.resume and args.init_from:
        p.error("--init-from starts a run; a resumed run continues its own weights")
    for name in ("epochs", "batch_size", "limit", "n"):
        value = getattr(args, name)
        if value is not None and value < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.crop_pad < 0:
        p.error("--crop-pad must be >= 0")
    if args.width <= 0:
        p.error("--width must be > 0")
    if args.lr is not None and args.lr <= 0:
        p.error("--lr must be > 0")
    if not 0 <= args.distill_alpha <= 1 or args.distill_temperature <= 0:
        p.error("--distill-alpha must be in [0, 1] and --distill-temperature > 0")
    try:
        args.lr_steps = [float(s) for s in args.lr_steps.split(",") if s]
    except ValueError:
        p.error("--lr-steps must be comma-separated fractions")
    return p, args


def recipe_from_args(args, data_dir):
    """Everything needed to repeat the run or rebuild the network."""
    model = {"scheme": args.scheme, "width": args.width,
             "float_first": not args.binary_first,
             "float_last": not args.binary_last, "padding": args.padding,
             "k_scale": not args.no_k_scale,
             "clip_weights": args.clip_weights, "weight_ste": args.weight_ste}
    if args.net == "resnet":
        model.update(n=args.n, shortcut=args.shortcut, bireal=args.bireal,
                     channel_scale=args.channel_scale,
                     bn_before_sign=not args.bn_after_conv)
    else:
        model["dropout"] = args.dropout
    augment = args.augment or (
        "crop-flip" if args.dataset == "cifar10" else "none")
    return {
        "net": args.net, "model": model,
        "data": {"dataset": args.dataset, "dir": str(data_dir),
                 "image_size": args.image_size, "limit": args.limit,
                 "augment": augment, "crop_pad": args.crop_pad},
        "train": {"epochs": args.epochs or 10, "batch_size": args.batch_size,
                  "optimizer": args.optimizer,
                  "lr": args.lr or DEFAULT_LR[args.optimizer],
                  "momentum": args.momentum, "schedule": args.schedule,
                  "lr_steps": args.lr_steps,
                  "warmup_epochs": args.warmup_epochs,
                  "weight_decay": args.weight_decay, "seed": args.seed,
                  "teacher": teacher_recipe(args),
                  "init_from": str(Path(args.init_from).resolve())
                  if args.init_from else None},
    }


def teacher_recipe(args):
    if not args.teacher:
        return None
    return {"source": str(Path(args.teacher).resolve()), "alpha": args.distill_alpha,
            "temperature": args.distill_temperature}


def prepare_out_dir(parser, args):
    out = Path(args.out)
    exists = out.exists() and any(out.iterdir())
    if args.resume:
        if not (out / "run.json").exists():
            parser.error(f"--resume: {out}/run.json not found")
        done = json.loads((out / "run.json").read_text()).get("epochs_done", 0)
        if done and not (out / "ckpt" / "checkpoint").exists():
            # e.g. a weights-only copy (edgebnn_export.keep): training again
            # from epoch 0 would overwrite what the folder holds
            parser.error(f"--resume: {out} has {done} epochs done but no ckpt/ "
                         "checkpoint to continue from")
        return out
    if exists and not args.force:
        parser.error(f"{out} exists and is not empty; use --resume to "
                     "continue it or --force to overwrite it")
    if exists:
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    return out


def write_json(path, obj):
    tmp = Path(str(path) + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2) + "\n")
    os.replace(tmp, path)


def configure_threads(threads):
    import tensorflow as tf
    if threads:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)


def load_data(recipe):
    from . import data as datasets
    d = recipe["data"]
    size = tuple(d["image_size"]) if d["image_size"] else None
    (x_train, y_train), (x_test, y_test), classes = datasets.load(
        d["dataset"], d["dir"], size)
    if d["limit"]:  # random subsets: the files may be sorted by class
        rng = np.random.default_rng(recipe["train"]["seed"])
        pick = rng.permutation(len(x_train))[:d["limit"]]
        x_train, y_train = x_train[pick], y_train[pick]
        pick = np.sort(rng.permutation(len(x_test))[:d["limit"]])
        x_test, y_test = x_test[pick], y_test[pick]
    return x_train, y_train, x_test, y_test, classes


def preprocess_spec(x_train):
    """Per-channel mean/std of the training images scaled to [0, 1]."""
    scaled = x_train.reshape(-1, x_train.shape[-1]).astype(np.float64) / 255
    return {"scale": 1 / 255, "mean": scaled.mean(0).tolist(),
            "std": scaled.std(0).tolist(),
            "formula": "(uint8 * scale - mean[c]) / std[c], NHWC"}


def make_dataset(x, y, spec, batch, shuffle, augment, seed, threads,
                 crop_pad=4):
    """augment: 'none', 'crop' or 'crop-flip' (He et al. on CIFAR: 4-pixel
    padding, random crop back to size, random horizontal flip). The padding
    is 0 after normalisation, i.e. the mean colour."""
    import tensorflow as tf
    mean = tf.constant(spec["mean"], tf.float32)
    std = tf.constant(spec["std"], tf.float32)
    h, w, c = x.shape[1:]

    def prep(img, label):
        img = (tf.cast(img, tf.float32) * spec["scale"] - mean) / std
        if augment in ("crop", "crop-flip"):
            img = tf.image.pad_to_bounding_box(img, crop_pad, crop_pad,
                                               h + 2 * crop_pad,
                                               w + 2 * crop_pad)
            img = tf.image.random_crop(img, (h, w, c))
        if augment == "crop-flip":
            img = tf.image.random_flip_left_right(img)
        return img, label

    ds = tf.data.Dataset.from_tensor_slices((x, y))
    if shuffle:
        ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    ds = ds.map(prep, num_parallel_calls=threads or tf.data.AUTOTUNE)
    ds = ds.batch(batch).prefetch(2)
    if threads:
        opts = tf.data.Options()
        opts.threading.private_threadpool_size = threads
        ds = ds.with_options(opts)
    return ds


def make_optimizer(train, steps_per_epoch):
    import keras
    total = max(1, train["epochs"] * steps_per_epoch)
    lr = train["lr"]
    warmup = int(train["warmup_epochs"] * steps_per_epoch)
    if train["schedule"] == "cosine":
        if warmup:
            schedule = keras.optimizers.schedules.CosineDecay(
                0.0, max(1, total - warmup), warmup_target=lr,
                warmup_steps=warmup)
        else:
            schedule = keras.optimizers.schedules.CosineDecay(lr, total)
    elif train["schedule"] == "step":
        bounds = [int(f * total) for f in train["lr_steps"]]
        schedule = keras.optimizers.schedules.PiecewiseConstantDecay(
            bounds, [lr * 0.1 ** i for i in range(len(bounds) + 1)])
    else:
        schedule = lr
    decay = train["weight_decay"] or None
    if train["optimizer"] == "adam":
        return keras.optimizers.AdamW(schedule, weight_decay=decay or 0.0) \
            if decay else keras.optimizers.Adam(schedule)
    momentum = train["momentum"] if train["optimizer"] == "momentum" else 0.0
    return keras.optimizers.SGD(schedule, momentum=momentum,
                                weight_decay=decay)


def exclude_from_decay(optimizer, model):
    """Weight decay only on float conv/dense kernels (not binary latent
    weights, BN or biases)."""
    import keras
    decayed = []
    for layer in model.layers:
        if type(layer) in (keras.layers.Conv2D, keras.layers.Dense):
            decayed.append(id(layer.kernel))
    others = [v for v in model.trainable_variables if id(v) not in decayed]
    optimizer.exclude_from_weight_decay(var_list=others)


def append_csv_row(path, row):
    new = not path.exists()
    with open(path, "a", newline="") as f:
        w = csv.writer(f)
        if new:
            w.writerow(["epoch", "lr", "loss", "acc", "val_loss", "val_acc",
                        "seconds"])
        w.writerow(row)


def epoch_end_callback(model, out, state, manager, best_manager, run):
    """After every epoch: checkpoint (last 2 + best), CSV row, run.json."""
    import keras
    started = {}

    def on_epoch_begin(epoch, logs=None):
        started["t"] = time.time()

    def on_epoch_end(epoch, logs=None):
        logs = logs or {}
        seconds = time.time() - started.get("t", time.time())
        lr = float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))
        state["epoch"].assign(epoch + 1)
        val_acc = float(logs.get("val_accuracy", float("nan")))
        if val_acc > float(state["best_acc"].numpy()):
            state["best_acc"].assign(val_acc)
            best_manager.save(checkpoint_number=epoch + 1)
            run["best"] = {"epoch": epoch + 1, "val_acc": val_acc}
        manager.save(checkpoint_number=epoch + 1)
        append_csv_row(out / "log.csv", [
            epoch + 1, lr, logs.get("loss"), logs.get("accuracy"),
            logs.get("val_loss"), logs.get("val_accuracy"), round(seconds, 2)])
        run["epochs_done"] = epoch + 1
        run["last"] = {"val_acc": val_acc, "val_loss": logs.get("val_loss")}
        write_json(out / "run.json", run)

    return keras.callbacks.LambdaCallback(on_epoch_begin=on_epoch_begin,
                                          on_epoch_end=on_epoch_end)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    parser, args = parse_args(argv)
    out = prepare_out_dir(parser, args)
    from . import data as datasets
    if args.resume:
        run = json.loads((out / "run.json").read_text())
        recipe = run["recipe"]
        if args.epochs:
            recipe["train"]["epochs"] = args.epochs
        if args.teacher:    # a continuation may add (or change) the teacher
            recipe["train"]["teacher"] = teacher_recipe(args)
    else:
        data_dir = Path(args.data) if args.data else datasets.default_data_dir()
        if data_dir is None or not data_dir.exists():
            parser.error("no data directory: pass --data or set EDGEBNN_DATA")
        recipe = recipe_from_args(args, data_dir.resolve())
        run = {"format": "edgebnn-run/1", "command": ["edgebnn-train", *argv],
               "recipe": recipe, "status": "running", "epochs_done": 0}
    configure_threads(args.threads)

    import keras
    import tensorflow as tf
    from . import models

    train = recipe["train"]
    keras.utils.set_random_seed(train["seed"])
    try:
        x_train, y_train, x_test, y_test, classes = load_data(recipe)
    except (datasets.readers.DatasetError, OSError) as e:
        parser.error(f"data: {e}")
    spec = run.get("preprocess") or preprocess_spec(x_train)
    run["preprocess"] = spec
    run["classes"] = list(classes)
    run["input_shape"] = list(x_train.shape[1:])
    recipe["model"]["input_shape"] = list(x_train.shape[1:])
    recipe["model"]["classes"] = len(classes)

    model = models.build(recipe["net"], **recipe["model"])
    steps = math.ceil(len(x_train) / train["batch_size"])
    optimizer = make_optimizer(train, steps)
    if train["weight_decay"]:
        exclude_from_decay(optimizer, model)
    teach = train.get("teacher")
    if teach:
        from . import distill
        teacher = distill.load_teacher(teach["source"], len(classes))
        model.compile(optimizer=optimizer,
                      loss=distill.distill_loss(teach["alpha"], teach["temperature"]),
                      metrics=[distill.accuracy])
    else:
        model.compile(optimizer=optimizer,
                      loss=keras.losses.SparseCategoricalCrossentropy(
                          from_logits=True),
                      metrics=["accuracy"])
    optimizer.build(model.trainable_variables)  # so a restore can fill it
    if args.init_from:
        from .warmstart import warm_start
        warm_start(model, args.init_from)

    state = {"epoch": tf.Variable(0, dtype=tf.int64, trainable=False),
             "best_acc": tf.Variable(-1.0, dtype=tf.float64, trainable=False)}
    ckpt = tf.train.Checkpoint(model=model, optimizer=optimizer, **state)
    manager = tf.train.CheckpointManager(ckpt, str(out / "ckpt"), 2)
    best_manager = tf.train.CheckpointManager(ckpt, str(out / "best"), 1)
    if args.resume and manager.latest_checkpoint:
        ckpt.restore(manager.latest_checkpoint).assert_existing_objects_matched()
        print(f"resumed {manager.latest_checkpoint} at epoch "
              f"{int(state['epoch'].numpy())}", flush=True)
    run["status"] = "running"
    write_json(out / "run.json", run)

    threads = args.threads
    train_ds = make_dataset(x_train, y_train, spec, train["batch_size"], True,
                            recipe["data"]["augment"], train["seed"], threads,
                            recipe["data"].get("crop_pad", 4))
    test_ds = make_dataset(x_test, y_test, spec, 256, False, False, 0, threads)
    if teach:
        train_ds = distill.attach_teacher(train_ds, teacher)
        # the test batches never change: run the teacher on them once, not
        # every epoch (cache() keeps the first pass in memory, 120 MB on CIFAR)
        test_ds = distill.attach_teacher(test_ds, teacher).cache()
        print(f"distilling from {teach['source']} (alpha {teach['alpha']}, "
              f"temperature {teach['temperature']})", flush=True)
    start = int(state["epoch"].numpy())
    verbose = args.verbose if args.verbose is not None else (
        1 if sys.stdout.isatty() else 2)
    print(f"{recipe['net']} {recipe['model']['scheme']}: "
          f"{model.count_params()} parameters, {len(x_train)} train / "
          f"{len(x_test)} test samples, epochs {start}..{train['epochs']}",
          flush=True)
    callback = epoch_end_callback(model, out, state, manager, best_manager,
                                  run)
    model.fit(train_ds, validation_data=test_ds, epochs=train["epochs"],
              initial_epoch=start, callbacks=[callback], verbose=verbose, shuffle=False)
    model.save(out / "model.keras")
    run["status"] = "done"
    write_json(out / "run.json", run)
    print(f"done: {out} (last val_acc {run.get('last', {}).get('val_acc')})",
          flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
