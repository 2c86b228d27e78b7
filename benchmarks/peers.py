"""edgebnn against TensorFlow Lite (LiteRT, float32 and full-integer int8)
and Larq Compute Engine on the same networks; writes docs/benchmarks.md
and docs/img/benchmarks.png.

    python benchmarks/peers.py [--quick]

Each runtime times in its own worker process (benchmarks/peers/worker_*.py):
LiteRT and LCE in virtual environments this script creates from
benchmarks/requirements-{litert,lce}.txt (LCE 0.16 needs TF 2.16 and
numpy 1.26; the project stays on current versions). Cases are interleaved
(edgebnn, fp32, int8, LCE, then again) so drift on a shared machine hits
every runtime alike. --pretrained DIR swaps in trained files and adds
accuracy (see docs/benchmarks.md)."""
import argparse
import hashlib
import json
import math
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PEERS = os.path.join(ROOT, "benchmarks", "peers")
sys.path[:0] = [PEERS, ROOT]

import nets  # noqa: E402
import report  # noqa: E402
from edgebnn.compact import FLOAT_PARAMS  # noqa: E402

VENVS = {"litert": "requirements-litert.txt", "lce": "requirements-lce.txt"}
LCE_OPTIONS = ("default", "indirect", "xnnpack", "indirect+xnnpack")
# runtime -> (worker, venv or None for the project's Python, file name pattern)
RUNTIMES = {
    "edgebnn": ("worker_edgebnn.py", None, "{net}.ebnn"),
    "tflite-fp32": ("worker_litert.py", "litert", "{net}_fp32.tflite"),
    "tflite-int8": ("worker_litert.py", "litert", "{net}_int8.tflite"),
    "lce": ("worker_lce.py", "lce", "{net}_lce.tflite"),
}
SETTINGS = {  # runs: timed batch-1 runs per case; select_runs: per LCE option
    "full": dict(runs=200, warmup=20, batch_runs=10, select_runs=100, eval_samples=2000),
    "quick": dict(runs=30, warmup=5, batch_runs=2, select_runs=15, eval_samples=200),
}


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def _digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def _stamp_matches(stamp, digest):
    if not os.path.exists(stamp):
        return False
    with open(stamp) as f:
        return f.read() == digest


def venv_python(args, name):
    """The venv's python, creating or refreshing the venv when its
    requirements file changed (a stamp holds the file's hash)."""
    folder = getattr(args, f"{name}_venv")
    req = os.path.join(ROOT, "benchmarks", VENVS[name])
    digest = _digest(req)
    py, stamp = os.path.join(folder, "bin", "python"), os.path.join(folder, ".edgebnn-stamp")
    if _stamp_matches(stamp, digest):
        return py
    log(f"setting up {folder} from {os.path.relpath(req, ROOT)} (one-time, a few minutes)")
    if not os.path.exists(py):
        subprocess.run([sys.executable, "-m", "venv", folder], check=True)
    subprocess.run([py, "-m", "pip", "install", "-q", "-r", req], check=True)
    with open(stamp, "w") as f:
        f.write(digest)
    return py


def build_models(args, pys, names, out):
    """Random-weight files for every runtime, rebuilt for a network when
    nets.py changed since its files were built (a stamp per network)."""
    os.makedirs(out, exist_ok=True)
    digest = (_digest(os.path.join(PEERS, "nets.py"))
              + _digest(os.path.join(PEERS, "build_edgebnn.py")) + args.ebnn_float_params)
    stamps = {n: os.path.join(out, f".{n}.stamp") for n in names}
    stale = {n for n in names if args.rebuild or not _stamp_matches(stamps[n], digest)}
    jobs = [("edgebnn", [sys.executable, os.path.join(PEERS, "build_edgebnn.py"), out,
                         "--float-params", args.ebnn_float_params],
             lambda n: [f"{n}.ebnn"]),
            ("tflite", [sys.executable, os.path.join(PEERS, "build_tflite.py"), out],
             lambda n: [f"{n}_fp32.tflite", f"{n}_int8.tflite"])]
    if pys.get("lce"):
        jobs.append(("lce", [pys["lce"], os.path.join(PEERS, "build_lce.py"), out,
                             str(args.batch)],
                     lambda n: [f"{v}_lce{s}.tflite" for v in [n] + ([nets.LCE_VARIANTS[n][0]]
                                                                      if n in nets.LCE_VARIANTS
                                                                      else [])
                                for s in ("", f"_b{args.batch}")]))
    for label, cmd, files in jobs:
        todo = [n for n in names
                if n in stale or not all(os.path.exists(os.path.join(out, f)) for f in files(n))]
        if not todo:
            continue
        log(f"building {label} models: {' '.join(todo)}")
        logfile = os.path.join(out, f"build-{label}.log")
        env = dict(os.environ, TF_USE_LEGACY_KERAS="1") if label == "lce" else None
        with open(logfile, "w") as f:
            r = subprocess.run(cmd + todo, stdout=f, stderr=subprocess.STDOUT, env=env,
                               check=False)
        if r.returncode != 0:
            raise SystemExit(f"building {label} models failed: see {logfile}")
    for n in names:
        with open(stamps[n], "w") as f:
            f.write(digest)


def run_worker(args, pys, runtime, model, threads, s, extra=(), batch=True, eval_path=None):
    worker, venv, _ = RUNTIMES["lce" if runtime.startswith("lce") else runtime]
    py = pys[venv] if venv else sys.executable
    cmd = [py, os.path.join(PEERS, worker), "--model", model, "--threads", str(threads),
           "--runs", str(s["runs"]), "--warmup", str(s["warmup"]),
           "--batch", str(args.batch if batch else 0), "--batch-runs", str(s["batch_runs"]),
           *extra]
    if eval_path:
        cmd += ["--eval", eval_path]
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", TF_CPP_MIN_LOG_LEVEL="2")
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout, env=env,
                           check=False)
    except subprocess.TimeoutExpired:
        return {"ok": False, "error": f"timed out after {args.timeout} s"}
    for line in r.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    tail = (r.stderr or r.stdout).strip().splitlines()[-3:]
    return {"ok": False, "error": f"exit {r.returncode}: {' | '.join(tail)}"}


def pretrained_file(args, net, kind):
    """A trained file for (net, kind) from --pretrained, or None. kind: ebnn,
    fp32, int8, lce or lce_bN; names NET.ebnn and NET_KIND.tflite or
    NET.KIND.tflite, where NET is renamed by --pretrained-as."""
    if not args.pretrained:
        return None
    stem = dict(args.pretrained_as).get(net, net)
    names = [f"{stem}.ebnn"] if kind == "ebnn" else [f"{stem}_{kind}.tflite",
                                                     f"{stem}.{kind}.tflite"]
    for name in names:
        path = os.path.join(args.pretrained, name)
        if os.path.exists(path):
            return path
    return None


def model_path(args, runtime, net):
    """(file, trained?) that a runtime times for a network."""
    kind = {"edgebnn": "ebnn", "tflite-fp32": "fp32", "tflite-int8": "int8"}[runtime]
    trained = pretrained_file(args, net, kind)
    if trained:
        return trained, True
    return os.path.join(args.models, RUNTIMES[runtime][2].format(net=net)), False


def lce_file(args, net):
    """(batch-1 file, batch-N file, trained?) for LCE: both trained or both random."""
    one, many = pretrained_file(args, net, "lce"), pretrained_file(args, net, f"lce_b{args.batch}")
    if one and many:
        return one, many, True
    return (os.path.join(args.models, f"{net}_lce.tflite"),
            os.path.join(args.models, f"{net}_lce_b{args.batch}.tflite"), False)


def select_lce_options(args, pys, cases, s, out):
    """Fastest LCE kernel option per (LCE network, threads), from a short
    batch-1 run of each option. Chosen by the minimum time: other load on
    the machine only ever adds time, so the minimum is the least noisy
    estimate of what an option can do."""
    table, best = [], {}
    quick = dict(s, runs=s["select_runs"], warmup=max(3, s["warmup"] // 2))
    for net, threads in cases:
        one = lce_file(args, net)[0]
        timings, mins = {}, {}
        for opt in LCE_OPTIONS:
            r = run_worker(args, pys, "lce", one, threads, quick, ["--option", opt], batch=False)
            timings[opt] = r.get("median_ms") if r.get("ok") else None
            mins[opt] = r.get("min_ms") if r.get("ok") else None
            if not r.get("ok"):
                log(f"  LCE {net} {opt}: {r.get('error')}")
        ok = {k: v for k, v in mins.items() if v is not None}
        best[(net, threads)] = min(ok, key=ok.get) if ok else None
        table.append({"net": net, "threads": threads, "ms": timings, "min_ms": mins,
                      "best": best[(net, threads)]})
        log(f"  LCE {net} {threads} thr: " + ", ".join(
            f"{k} {v:.3f} ms" if v is not None else f"{k} failed" for k, v in timings.items()))
    return best, table


def eval_data(args, net, ebnn_path, out, n):
    """npz of (x model input float32, y) for a pretrained network, inputs
    normalised as the .ebnn file's input spec says (the exporter writes the
    same preprocessing the Keras model was trained with)."""
    import numpy as np
    import edgebnn
    from edgebnn import datasets
    from edgebnn.preprocess import normalize
    kind = nets.NETWORKS[net][2]
    if kind not in datasets.LOADERS:
        return None
    try:
        images, labels = datasets.LOADERS[kind](args.data, split="test")
    except (datasets.DatasetError, OSError) as e:
        log(f"  no {kind} test set for {net}: {e}")
        return None
    spec = edgebnn.load_graph(ebnn_path).input
    path = os.path.join(out, f"eval-{net}.npz")
    np.savez(path, x=normalize(images[:n], spec), y=labels[:n])
    return path


RUN_ARGS = ("quick", "networks", "threads", "batch", "reps", "pretrained", "pretrained_as",
            "ebnn_float_params")


def report_only(args):
    with open(args.report_only) as f:
        run = json.load(f)
    for k, v in run.get("args", {}).items():
        setattr(args, k, v)
    s = run.get("settings", SETTINGS["quick" if args.quick else "full"])
    cmd = run.get("cmd", "python benchmarks/peers.py" + (" --quick" if args.quick else ""))
    pys = {name: os.path.join(getattr(args, f"{name}_venv"), "bin", "python") for name in VENVS}
    pys = {k: v for k, v in pys.items() if os.path.exists(v)}
    report.write(args, cmd, run["machine"], s, run["results"], run["lce_options"],
                 run.get("notes", []), pys)
    log(f"wrote {os.path.relpath(args.doc, ROOT)} and {os.path.relpath(args.plot, ROOT)}")


def ebnn_contents(path):
    """Bytes of an .ebnn file by part (edgebnn.format.byte_breakdown) and
    how its parameters are stored: where the size goes."""
    import edgebnn
    from edgebnn.format import byte_breakdown, encodings_used
    graph = edgebnn.load_graph(path)
    kinds = byte_breakdown(graph)
    kinds["storage"] = f"v{graph.file_info['version']}: " + ", ".join(
        f"{n} {enc}" for enc, n in sorted(encodings_used(graph).items()))
    return kinds


def op_counts(args):
    """{file name: {op: count}} of every file the run times (one process
    with TensorFlow's flatbuffer analyzer; see peers/op_counts.py)."""
    files = []
    for net in args.networks:
        files += [model_path(args, r, net)[0] for r in ("edgebnn", "tflite-fp32", "tflite-int8")]
        if not args.no_lce:
            variants = [net] + ([nets.LCE_VARIANTS[net][0]] if net in nets.LCE_VARIANTS else [])
            files += [lce_file(args, v)[0] for v in variants]
    files = [f for f in files if os.path.exists(f)]
    out = os.path.join(args.models, "op-counts.json")
    r = subprocess.run([sys.executable, os.path.join(PEERS, "op_counts.py"), out, *files],
                       capture_output=True, text=True, check=False,
                       env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    if r.returncode != 0:
        log(f"op counts failed: {r.stderr.strip().splitlines()[-1:]}")
        return {}
    with open(out) as f:
        return json.load(f)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer runs: a smoke check")
    ap.add_argument("--networks", nargs="+", choices=list(nets.NETWORKS),
                    default=list(nets.NETWORKS))
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--batch", type=int, default=32, help="throughput batch size")
    ap.add_argument("--reps", type=int, default=2, help="times each case runs (spread)")
    ap.add_argument("--models", default=os.path.join(ROOT, "build", "peers-models"),
                    help="where the random-weight model files are built")
    ap.add_argument("--rebuild", action="store_true", help="rebuild the model files")
    ap.add_argument("--ebnn-float-params", choices=FLOAT_PARAMS,
                    default="int5", help="storage of the float layers in the random-weight "
                    ".ebnn files (build_edgebnn.py --float-params; default int5)")
    ap.add_argument("--pretrained", help="folder of trained files NET.ebnn, NET_fp32.tflite, "
                    "NET_int8.tflite, NET_lce.tflite, NET_lce_b32.tflite: used instead of the "
                    "random ones where present, and scored for accuracy")
    ap.add_argument("--pretrained-as", nargs="+", default=[], metavar="NET=STEM",
                    type=lambda v: tuple(v.split("=", 1)) if "=" in v else ap.error(
                        f"--pretrained-as wants NET=STEM, got {v!r}"),
                    help="file stem of a network in --pretrained, e.g. lenet=lenet_binary")
    ap.add_argument("--data", help="dataset root (default: $EDGEBNN_DATA or ../shared/datasets)")
    ap.add_argument("--litert-venv", default=os.path.join(os.path.dirname(ROOT), "venv-litert"))
    ap.add_argument("--lce-venv", default=os.path.join(os.path.dirname(ROOT), "venv-lce"))
    ap.add_argument("--no-lce", action="store_true", help="skip Larq Compute Engine")
    ap.add_argument("--timeout", type=int, default=900, help="seconds per worker")
    ap.add_argument("--doc", help="page to write (default docs/benchmarks.md; with --quick "
                    "build/benchmarks-quick.md, so a smoke check never replaces real figures)")
    ap.add_argument("--plot", help="plot to write (default docs/img/benchmarks.png; with "
                    "--quick build/benchmarks-quick.png)")
    ap.add_argument("--json", help="also write the raw results here")
    ap.add_argument("--report-only", metavar="JSON",
                    help="rewrite the page and plot from a --json file of an earlier run")
    args = ap.parse_args()
    if args.quick:
        args.doc = args.doc or os.path.join(ROOT, "build", "benchmarks-quick.md")
        args.plot = args.plot or os.path.join(ROOT, "build", "benchmarks-quick.png")
    args.doc = args.doc or os.path.join(ROOT, "docs", "benchmarks.md")
    args.plot = args.plot or os.path.join(ROOT, "docs", "img", "benchmarks.png")
    if args.report_only:
        return report_only(args)
    s = SETTINGS["quick" if args.quick else "full"]
    started = time.time()
    machine = report.machine_info(load_before=True)

    pys, notes = {}, []
    for name in ("litert",) + (() if args.no_lce else ("lce",)):
        try:
            pys[name] = venv_python(args, name)
        except (subprocess.CalledProcessError, OSError) as e:
            notes.append(f"{name} skipped: its venv could not be set up ({e}).")
            log(notes[-1])
    build_models(args, pys, args.networks, args.models)

    machine["ebnn_contents"] = {net: ebnn_contents(model_path(args, "edgebnn", net)[0])
                                for net in args.networks}
    machine["op_counts"] = op_counts(args)
    lce_nets = []
    if "lce" in pys:
        for net in args.networks:
            lce_nets.append((net, "lce"))
            if net in nets.LCE_VARIANTS:
                lce_nets.append((nets.LCE_VARIANTS[net][0], "lce"))
    best, select_table = {}, []
    if lce_nets:
        log("choosing LCE's fastest kernel option per network and thread count")
        best, select_table = select_lce_options(
            args, pys, [(n, t) for n, _ in lce_nets for t in args.threads], s, args.models)

    evals = {}
    if args.pretrained:
        for net in args.networks:
            path, trained = model_path(args, "edgebnn", net)
            if trained:
                evals[net] = eval_data(args, net, path, args.models, s["eval_samples"])

    results = []
    for net in args.networks:
        runtimes = [(r, net) for r in ("edgebnn", "tflite-fp32", "tflite-int8")
                    if RUNTIMES[r][1] in (None, *pys)]
        runtimes += [(r, n) for n, r in lce_nets if n == net or n == nets.LCE_VARIANTS.get(
            net, ("",))[0]]
        for threads in args.threads:
            for rep in range(1, args.reps + 1):
                for runtime, file_net in runtimes:          # A B C D, then again
                    extra, trained = [], False
                    if runtime == "lce":
                        one, batch_file, trained = lce_file(args, file_net)
                        opt = best.get((file_net, threads))
                        if opt is None:
                            continue
                        path, extra = one, ["--option", opt, "--model-batch", batch_file]
                    else:
                        path, trained = model_path(args, runtime, net)
                    r = run_worker(args, pys, runtime, path, threads, s, extra,
                                   eval_path=evals.get(net) if trained and rep == 1 else None)
                    r.update(net=net, file_net=file_net, runtime=runtime, threads=threads,
                             rep=rep, file=os.path.relpath(path, ROOT),
                             file_bytes=os.path.getsize(path), pretrained=trained,
                             option=extra[1] if extra else None)
                    results.append(r)
                    log(report.one_line(r))
    machine.update(report.machine_info(load_before=False))
    machine["seconds"] = time.time() - started
    cmd = " ".join(["python benchmarks/peers.py"] + (["--quick"] if args.quick else [])
                   + ([f"--pretrained {args.pretrained}"] if args.pretrained else [])
                   + ([f"--pretrained-as {' '.join('='.join(p) for p in args.pretrained_as)}"]
                      if args.pretrained_as else []))
    if args.json:
        meta = {k: getattr(args, k) for k in RUN_ARGS}
        with open(args.json, "w") as f:
            json.dump({"machine": machine, "results": results, "lce_options": select_table,
                       "cmd": cmd, "settings": s, "notes": notes, "args": meta}, f, indent=1)
    report.write(args, cmd, machine, s, results, select_table, notes, pys)
    log(f"wrote {os.path.relpath(args.doc, ROOT)} and {os.path.relpath(args.plot, ROOT)}")


if __name__ == "__main__":
    main()
