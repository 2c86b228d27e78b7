"""Keep a finished training run small: its recipe, log and weights only.

    python -m edgebnn_export.keep RUN_DIR DEST [--checkpoint best|last]

A run directory of edgebnn-train holds two checkpoints with the optimizer's
slots (Adam: 3x the weights). DEST gets run.json, log.csv and one
model-only checkpoint in DEST/best/, which `edgebnn export DEST` and
`python -m edgebnn_export.compare DEST ...` read like the original run.
It cannot be resumed (no optimizer state); run.json says so. DEST must not
exist: nothing is overwritten.
"""
import argparse
import os
import shutil
import sys

from .exporter import ExportError, _checkpoint_prefix, _read_run, _restore
from .train import write_json


def keep(run_dir, dest, which="best"):
    """Write the slim copy of run_dir to dest; return the checkpoint prefix written."""
    if os.path.exists(dest):
        raise ExportError(f"{dest} exists; choose a new folder (nothing is overwritten)")
    run = _read_run(os.path.join(run_dir, "run.json"))
    if run.get("status") != "done":
        raise ExportError(f"{run_dir}: run status is {run.get('status')!r}, not 'done'; "
                          "finish it with --resume first")
    source = _checkpoint_prefix(run_dir, which)
    model = _restore(run, source)

    import tensorflow as tf
    os.makedirs(dest)
    tail = source.rsplit("-", 1)[-1]
    epoch = int(tail) if tail.isdigit() else 0
    manager = tf.train.CheckpointManager(tf.train.Checkpoint(model=model),
                                         os.path.join(dest, "best"), 1)
    prefix = manager.save(checkpoint_number=epoch)  # also writes the 'checkpoint' index
    run = dict(run, kept={"from": os.path.abspath(run_dir), "checkpoint": which,
                          "epoch": epoch, "weights_only": True,
                          "note": "model weights only: export it, do not --resume it"})
    write_json(os.path.join(dest, "run.json"), run)
    log = os.path.join(run_dir, "log.csv")
    if os.path.isfile(log):
        shutil.copy2(log, os.path.join(dest, "log.csv"))
    return prefix


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run_dir", help="finished edgebnn-train --out folder")
    p.add_argument("dest", help="new folder for the slim copy")
    p.add_argument("--checkpoint", default="best", choices=["best", "last"])
    args = p.parse_args(argv)
    try:
        prefix = keep(args.run_dir, args.dest, args.checkpoint)
    except ExportError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    size = sum(os.path.getsize(os.path.join(d, f))
               for d, _, fs in os.walk(args.dest) for f in fs)
    print(f"kept {prefix} ({size / 1e6:.2f} MB in {args.dest})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
