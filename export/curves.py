"""Learning curves of edgebnn-train runs: a table of final / best test
accuracy and, with -o, a plot of test accuracy per epoch.

    python -m edgebnn_export.curves RUN_DIR [RUN_DIR ...] [-o curves.png]

RUN_DIR is a run directory or a kept checkpoint (anything with a log.csv;
its run.json, when present, names the line). Needs matplotlib only for -o.
Never overwrites an existing image unless --force.
"""
import argparse
import csv
import json
import sys
from pathlib import Path


class CurveError(ValueError):
    """A run directory without a readable log."""


def read_run(run_dir):
    """(label, epochs, test accuracies) of one run directory."""
    run_dir = Path(run_dir)
    log = run_dir / "log.csv"
    try:
        with open(log, newline="") as f:
            rows = list(csv.DictReader(f))
        epochs = [int(r["epoch"]) for r in rows]
        acc = [float(r["val_acc"]) for r in rows]
    except FileNotFoundError:
        raise CurveError(f"{run_dir}: no log.csv (not an edgebnn-train run)") from None
    except (KeyError, TypeError, ValueError) as e:
        raise CurveError(f"{log}: not an edgebnn-train log ({e})") from None
    if not rows:
        raise CurveError(f"{log}: no epochs logged yet")
    return describe(run_dir), epochs, acc


def describe(run_dir):
    """'resnet n=3 binary (bireal, teacher)' from run.json, else the folder name."""
    try:
        recipe = json.loads((run_dir / "run.json").read_text())["recipe"]
        model = recipe["model"]
    except (OSError, ValueError, KeyError, TypeError):
        return run_dir.name
    name = recipe.get("net", "?")
    if "n" in model:
        name += f" n={model['n']}"
    extras = [k for k in ("bireal",) if model.get(k)]
    if recipe.get("train", {}).get("teacher"):
        extras.append("teacher")
    label = f"{name} {model.get('scheme', '?')}"
    label += f" ({', '.join(extras)})" if extras else ""
    return f"{run_dir.name}: {label}"


def table(runs):
    lines = ["| run | epochs | test acc final | best (epoch) |",
             "| --- | ---: | ---: | ---: |"]
    for label, epochs, acc in runs:
        best = max(range(len(acc)), key=acc.__getitem__)
        lines.append(f"| {label} | {epochs[-1]} | {100 * acc[-1]:.2f} % | "
                     f"{100 * acc[best]:.2f} % ({epochs[best]}) |")
    return "\n".join(lines)


def plot(runs, path, title=None, overwrite=False):
    import matplotlib
    matplotlib.use("Agg")      # files only: no display on a server or a Pi
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(8, 5))
    for label, epochs, acc in runs:
        ax.plot(epochs, [100 * a for a in acc], label=label, linewidth=1.5)
    ax.set_xlabel("epoch")
    ax.set_ylabel("test accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    with open(path, "wb" if overwrite else "xb") as f:
        fig.savefig(f, format="png", dpi=100)
    plt.close(fig)


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m edgebnn_export.curves",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+", metavar="RUN_DIR")
    p.add_argument("-o", "--output", help="write a PNG plot here")
    p.add_argument("--title")
    p.add_argument("--force", action="store_true", help="replace an existing --output")
    args = p.parse_args(argv)
    try:
        runs = [read_run(r) for r in args.runs]
    except CurveError as e:
        p.exit(2, f"error: {e}\n")
    print(table(runs))
    if args.output:
        out = Path(args.output)
        if out.exists() and not args.force:
            p.exit(2, f"error: {out} exists; pass --force to replace it\n")
        plot(runs, out, args.title, overwrite=args.force)
        print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
