"""Machine description, the markdown report (docs/benchmarks.md) and the
ratio plot (docs/img/benchmarks.png) of benchmarks/peers.py."""
import os
import platform
import subprocess
import time


LABELS = {"edgebnn": "edgebnn", "tflite-fp32": "LiteRT fp32", "tflite-int8": "LiteRT int8",
          "lce": "LCE"}
FLAGS = ("avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vpopcntdq", "avx512_vnni",
         "avx_vnni", "avx512_bf16", "amx_tile", "amx_int8", "amx_bf16")
TARGETS_MS = {"lenet": 0.05, "resnet20": 0.2, "bireal18": 5.0, "conv14x14x256": 0.15}
NET_TEXT = {
    "lenet": "Binarized LeNet, 28x28x1: float conv 5x5x32, maxpool 2, BN, binary conv 5x5x64 "
             "(same, +1 padding), maxpool 2, BN, binary dense 1024, BN, float dense 10.",
    "resnet20": "Binarized ResNet-20 (n=3), 32x32x3: float 3x3x16 stem + BN, 3 stages of "
                "16/32/64 channels with 6 binary 3x3 convs each (3 blocks x 2), a shortcut "
                "around every binary conv (Bi-Real style); downsampling shortcuts are avgpool "
                "2x2 + float 1x1 conv + BN; global avgpool, float dense 10.",
    "bireal18": "Bi-Real-Net-18-like, 224x224x3: float 7x7/2 stem (64) + BN + maxpool 3/2, "
                "4 stages of 64/128/256/512 with 4 binary 3x3 convs each (a shortcut around "
                "every conv; downsampling shortcut avgpool 2x2 + float 1x1 conv + BN), "
                "global avgpool, float dense 1000.",
    "conv14x14x256": "One binary 3x3 conv 14x14x256 -> 256 (same, +1 padding) + BN, "
                     "float input and output.",
}

NET_NOTES = {
    "lenet": ["For LCE the LeNet also runs as `lenet_dense_as_conv`: LCE has no binary dense "
              "op (its converter leaves `QuantDense` as float ops), so the binary dense 1024 "
              "becomes a reshape to 1x1x3136 and a binary 1x1 conv."],
    "bireal18": ["`bireal18` follows the Bi-Real-Net-18 topology (as in Larq Zoo's BiRealNet: "
                 "stem, per-conv shortcuts, avgpool + real 1x1 conv + BN downsampling "
                 "shortcuts). It differs only in what does not change inference cost: sign "
                 "instead of the training-time approximate sign, the magnitude-aware weight "
                 "scale is a per-filter alpha (edgebnn) or folded into BN (Keras twins), and "
                 "there is no final softmax. edgebnn supports every op it needs."],
}


def _uptime():
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True,
                              check=False).stdout.strip()
    except OSError:
        return "?"


def _load_average(uptime):
    try:
        return float(uptime.split("load average:")[1].split(",")[0])
    except (IndexError, ValueError):
        return None


def machine_info(load_before):
    if not load_before:
        return {"load_after": _uptime()}
    info = {"date": time.strftime("%Y-%m-%d %H:%M %Z"), "load_before": _uptime(),
            "python": platform.python_version(), "cores": os.cpu_count()}
    cpu, flags = platform.processor() or "?", set()
    try:
        with open("/proc/cpuinfo") as f:
            lines = f.read().splitlines()
        for line in lines:
            key, _, value = line.partition(":")
            key, value = key.strip(), value.strip()
            if key == "model name":
                cpu = value
            elif key in ("cpu family", "model") and value.isdigit():
                info[key.replace(" ", "_")] = int(value)
            elif line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    info["cpu"], info["flags"] = cpu, [f for f in FLAGS if f in flags]
    try:
        from edgebnn import _engine
        info["edgebnn_isa"], info["edgebnn_isas"] = _engine.get_isa(), _engine.isa_available()
    except ImportError:
        info["edgebnn_isa"], info["edgebnn_isas"] = "engine not built", []
    return info


def one_line(r):
    name = _label(r)
    if not r.get("ok"):
        return f"{r['net']:<14} {name:<26} {r['threads']} thr  FAILED: {r.get('error')}"
    tput = f"{r['throughput']:9.1f} img/s" if "throughput" in r else ""
    acc = f"  acc {r['accuracy']:.4f}" if "accuracy" in r else ""
    return (f"{r['net']:<14} {name:<26} {r['threads']} thr rep {r['rep']}: "
            f"median {r['median_ms']:8.3f} ms  p90 {r['p90_ms']:8.3f} ms  {tput}  "
            f"rss {r['rss_peak_mib']:.0f} MiB{acc}")


def _label(r, option=True):
    """Series name (runtime, and the LCE variant); option=True adds LCE's
    kernel option."""
    label = LABELS[r["runtime"]]
    if r["runtime"] == "lce":
        if r["file_net"] != r["net"]:
            label += " dense as 1x1 conv"
        if option and r.get("option"):
            label += f" [{r['option']}]"
    return label


def _summaries(results):
    """(net, label, threads) -> combined numbers over the reps."""
    groups = {}
    for r in results:
        groups.setdefault((r["net"], _label(r, option=False), r["threads"], r["runtime"]),
                          []).append(r)
    out = {}
    for key, rs in groups.items():
        ok = [r for r in rs if r.get("ok")]
        s = {"runs": rs, "ok": ok, "file_bytes": rs[0]["file_bytes"], "runtime": key[3],
             "pretrained": rs[0]["pretrained"], "label": _label(rs[0])}
        if ok:
            s["median_ms"] = min(r["median_ms"] for r in ok)        # best of the reps
            s["p90_ms"] = max(r["p90_ms"] for r in ok)              # worst of the reps
            tp = [r["throughput"] for r in ok if "throughput" in r]
            s["throughput"] = max(tp) if tp else None
            s["rss_peak"] = max(r["rss_peak_mib"] for r in ok)
            s["rss_model"] = max(r["rss_peak_mib"] - r["rss_base_mib"] for r in ok)
            acc = [r["accuracy"] for r in ok if "accuracy" in r]
            s["accuracy"] = acc[0] if acc else None
        out[key[:3]] = s
    return out


def _fmt_pair(vals, fmt):
    return " / ".join(format(v, fmt) for v in vals) if vals else "-"


def _size(n):
    return f"{n / 1e6:.2f} MB" if n >= 1e6 else f"{n / 1e3:.1f} kB"


def _results_table(summ, net, threads_list):
    rows = ["| runtime | thr | batch-1 median ms (run 1 / run 2) | p90 ms | vs edgebnn | "
            "batch-32 img/s (run 1 / run 2) | vs edgebnn | peak RSS MiB (model part) | "
            "file | accuracy |", "|" + " --- |" * 10]
    for threads in threads_list:
        base = summ.get((net, "edgebnn", threads), {})
        for (n, series, t), s in summ.items():
            if n != net or t != threads:
                continue
            label = s["label"]
            if not s["ok"]:
                err = s["runs"][0].get("error", "?")
                rows.append(f"| {label} | {t} | FAILED: {err} |" + " |" * 7)
                continue
            med = [r["median_ms"] for r in s["ok"]]
            tps = [r["throughput"] for r in s["ok"] if "throughput" in r]
            lat_ratio = (f"{s['median_ms'] / base['median_ms']:.2f}x"
                         if base.get("median_ms") and label != "edgebnn" else "")
            tp_ratio = (f"{base['throughput'] / s['throughput']:.2f}x"
                        if base.get("throughput") and s.get("throughput")
                        and label != "edgebnn" else "")
            acc = f"{s['accuracy']:.4f}" if s.get("accuracy") is not None else (
                "random weights" if not s["pretrained"] else "-")
            rows.append(f"| {label} | {t} | {_fmt_pair(med, '.3f')} | {s['p90_ms']:.3f} | "
                        f"{lat_ratio} | {_fmt_pair(tps, '.0f')} | {tp_ratio} | "
                        f"{s['rss_peak']:.0f} ({s['rss_model']:.0f}) | "
                        f"{_size(s['file_bytes'])} | {acc} |")
    return "\n".join(rows)


def _targets(summ, networks):
    rows = ["| check | target | measured | met |", "| --- | --- | --- | --- |"]
    for net in networks:
        s = summ.get((net, "edgebnn", 1), {})
        if net in TARGETS_MS and s.get("median_ms") is not None:
            ok = s["median_ms"] <= TARGETS_MS[net]
            rows.append(f"| {net} edgebnn 1 thread, batch-1 median | <= {TARGETS_MS[net]} ms | "
                        f"{s['median_ms']:.3f} ms | {'yes' if ok else 'NO'} |")
    for net in networks:
        one, two = summ.get((net, "edgebnn", 1), {}), summ.get((net, "edgebnn", 2), {})
        if net == "bireal18" and one.get("median_ms") and two.get("median_ms"):
            sp = one["median_ms"] / two["median_ms"]
            rows.append(f"| {net} 2 threads vs 1 (batch-1 latency) | >= 1.7x | {sp:.2f}x | "
                        f"{'yes' if sp >= 1.7 else 'NO'} |")
    for net in networks:
        e, f = summ.get((net, "edgebnn", 1), {}), summ.get((net, "LiteRT fp32", 1), {})
        if e.get("file_bytes") and f.get("file_bytes"):
            ratio = f["file_bytes"] / e["file_bytes"]
            rows.append(f"| {net} file size, fp32 .tflite / .ebnn | >= 25x | {ratio:.1f}x | "
                        f"{'yes' if ratio >= 25 else 'NO'} |")
    return "\n".join(rows)


def _contents_table(contents, summ):
    """Bytes per part of each .ebnn file, and the best ratio to the fp32
    .tflite any file could reach that stores the float layers' weights as
    this file does and each binary weight in one bit (nothing else)."""
    if not contents:
        return ""
    rows = ["| .ebnn file | storage | binary weights | float weights | other params "
            "(BN, scales) | graph + container | file | fp32 .tflite / file | fp32 .tflite / "
            "(float weights + 1 bit per binary weight) |",
            "|" + " --- |" * 9]
    for net, c in contents.items():
        fp32 = summ.get((net, "LiteRT fp32", 1), {}).get("file_bytes")
        floor = c["float weights"] + c.get("binary bits", 0) / 8
        ceiling = f"{fp32 / floor:.1f}x" if fp32 and floor else "-"
        ratio = f"{fp32 / c['file']:.1f}x" if fp32 else "-"
        rest = c["file"] - c["binary weights"] - c["float weights"] - c["other params"]
        rows.append(f"| {net} | {c.get('storage', '-')} | {_size(c['binary weights'])} | "
                    f"{_size(c['float weights'])} | {_size(c['other params'])} | "
                    f"{_size(rest)} | {_size(c['file'])} | {ratio} | {ceiling} |")
    return "\n".join(rows)


def _ops_table(counts):
    if not counts:
        return "(op counts not available)"
    rows = ["| file | ops executed (count) |", "| --- | --- |"]
    for name, c in counts.items():
        rows.append(f"| {name} | " + ", ".join(f"{op} {n}" for op, n in c.items()) + " |")
    return "\n".join(rows)


def _lce_table(select_table):
    if not select_table:
        return "(LCE not run)"
    opts = list(select_table[0]["ms"])
    rows = ["| LCE file | thr | " + " | ".join(opts) + " | fastest |",
            "|" + " --- |" * (len(opts) + 3)]
    for row in select_table:
        cells = [f"{row['ms'][o]:.3f} ({row['min_ms'][o]:.3f})" if row["ms"][o] is not None
                 else "failed" for o in opts]
        rows.append(f"| {row['net']} | {row['threads']} | " + " | ".join(cells)
                    + f" | {row['best']} |")
    return "\n".join(rows)


def _versions(pys):
    out = {}
    probes = {"litert": ("ai-edge-litert", "numpy"),
              "lce": ("larq-compute-engine", "larq", "tensorflow", "tf_keras", "numpy")}
    for venv, pkgs in probes.items():
        if venv not in pys:
            continue
        code = ("import importlib.metadata as m; print(' '.join(p + ' ' + m.version(p) for p in "
                f"{pkgs!r}))")
        r = subprocess.run([pys[venv], "-c", code], capture_output=True, text=True, check=False)
        out[venv] = r.stdout.strip() or "?"
    try:
        import importlib.metadata as m
        import numpy
        out["project"] = f"numpy {numpy.__version__}, tensorflow {m.version('tensorflow-cpu')} " \
                         "(builds the .tflite files)"
    except Exception:                     # noqa: BLE001 - versions are informational only
        out["project"] = "?"
    return out


def plot(summ, networks, threads_list, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import ticker
    others = sorted({label for (n, label, t) in summ if label != "edgebnn"},
                    key=lambda s: (not s.startswith("LiteRT"), s))
    fig, axes = plt.subplots(len(threads_list), 2, figsize=(13, 4.2 * len(threads_list)),
                             squeeze=False)
    width = 0.8 / max(1, len(others))
    for row, threads in enumerate(threads_list):
        for col, (key, title) in enumerate((("median_ms", "batch-1 latency"),
                                            ("throughput", "batch-32 time per image"))):
            ax = axes[row][col]
            for i, label in enumerate(others):
                xs, ys = [], []
                for j, net in enumerate(networks):
                    s, b = summ.get((net, label, threads), {}), summ.get(
                        (net, "edgebnn", threads), {})
                    if s.get(key) and b.get(key):
                        ratio = s[key] / b[key] if key == "median_ms" else b[key] / s[key]
                        xs.append(j + (i - (len(others) - 1) / 2) * width)
                        ys.append(ratio)
                ax.bar(xs, ys, width, label=label)
            ax.axhline(1.0, color="black", linewidth=1)
            ax.set_yscale("log")
            plain = ticker.FuncFormatter(lambda v, _: f"{v:g}")
            ax.yaxis.set_major_formatter(plain)
            ax.yaxis.set_minor_formatter(ticker.FuncFormatter(
                lambda v, _: f"{v:g}" if f"{v:.0e}"[0] in "25" else ""))
            ax.set_xticks(range(len(networks)), networks)
            ax.set_ylabel("peer time / edgebnn time")
            ax.set_title(f"{title}, {threads} thread{'s' if threads > 1 else ''} "
                         "(> 1: edgebnn faster)")
            ax.grid(axis="y", which="both", alpha=0.3)
        axes[row][0].legend(fontsize=8)
    fig.tight_layout()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def write(args, cmd, machine, settings, results, select_table, notes, pys):
    summ = _summaries(results)
    load = _load_average(machine["load_before"])
    if load is not None and load > 0.5 * machine["cores"]:
        notes = list(notes) + [
            f"The machine was busy (1-minute load average {load:.1f} on {machine['cores']} "
            "cores when the run started): other processes took CPU time during these runs, so "
            "the figures are preliminary. Two-thread figures suffer most: when another process "
            "holds one core, a worker thread descheduled in the middle of a layer stalls the "
            "other at the next barrier (the p90 column shows it). edgebnn's OpenMP threads "
            "spin while they wait by default; on a busy machine `OMP_WAIT_POLICY=PASSIVE` "
            "(set before the process starts) avoids most of that stall."]
    plot(summ, args.networks, args.threads, args.plot)
    versions = _versions(pys)
    quick = " (--quick: few runs, a smoke check, not figures to quote)" if args.quick else ""
    lines = [
        "# Benchmarks: edgebnn vs TensorFlow Lite (LiteRT) and Larq Compute Engine",
        "",
        f"Generated by `{cmd}` on {machine['date']} in {machine['seconds'] / 60:.1f} min"
        f"{quick}. Do not edit by hand: rerun the command.",
        "",
        "## Machine",
        "",
        f"- CPU: {machine['cpu']} (family {machine.get('cpu_family', '?')}, model "
        f"{machine.get('model', '?')}), {machine['cores']} logical cores; ISA features: "
        f"{', '.join(machine['flags']) or 'none of interest'}",
        f"- edgebnn kernel path: **{machine['edgebnn_isa']}** (available: "
        f"{', '.join(machine['edgebnn_isas'])})",
        f"- load before: `{machine['load_before']}`",
        f"- load after: `{machine['load_after']}`",
        f"- LiteRT venv: {versions.get('litert', '-')}; LCE venv: {versions.get('lce', '-')}; "
        f"project: {versions.get('project')}; Python {machine['python']}",
        "",
        "Int8 on this CPU is unusually fast: AVX-512 VNNI (and AMX, where the flags above list "
        "it) give XNNPACK's int8 kernels hardware a Raspberry Pi's Cortex-A72 does not have. "
        "Larq Compute Engine's optimized kernels target Arm (its interpreter's docstring warns "
        "that on x86 it falls back on reference kernels; the option table below shows how "
        "much the kernel choice matters here), so LCE figures from this machine say little "
        "about LCE on a Pi.",
        "",
        "## Method",
        "",
        f"- Each case is one worker process (`benchmarks/peers/worker_*.py`) that loads the "
        f"file, warms up ({settings['warmup']} runs) and times {settings['runs']} batch-1 runs "
        f"(median and p90) and the best of {settings['batch_runs']} batch-{args.batch} runs "
        "(throughput). Inputs are random float32 (int8 models: quantized once, outside the "
        "timed runs).",
        f"- Order: per network and thread count, edgebnn, LiteRT fp32, LiteRT int8, LCE, then "
        f"the same again ({args.reps} runs of every case), so drift on the shared machine hits "
        "all runtimes alike. `median` and the ratios use the better of the runs' medians; "
        "`p90` the worse.",
        "- Peak RSS is the worker's `ru_maxrss` (Python + numpy + runtime + model + "
        "activations); in brackets the part above the baseline taken after importing the "
        "runtime, before loading the model (0 where importing the runtime peaked higher than "
        "running the model ever did).",
        "- Ratios: peer time / edgebnn time (> 1: edgebnn is faster); for throughput, "
        "edgebnn images/s / peer images/s.",
        "- edgebnn runs through the public API only (`edgebnn.load`, `Model.threads`, "
        "`Model.run`), float32 input. LiteRT: `ai_edge_litert.interpreter.Interpreter("
        "num_threads=...)`, XNNPACK applied by default; the float32 and full-integer int8 "
        "(`TFLITE_BUILTINS_INT8`, int8 input/output, calibrated on random inputs) files are "
        "the network's float twin (plain Conv2D/Dense, BN, ReLU where the binary net "
        "binarizes) converted by `tf.lite.TFLiteConverter` of the project's TensorFlow. "
        "LCE: the same network in Larq (`QuantConv2D`/`QuantDense`, `ste_sign` on inputs and "
        "weights, `pad_values=1`) converted by `larq_compute_engine.convert_keras_model`, run "
        "in LCE's interpreter with the fastest of its kernel options (below); LCE files have "
        "a fixed batch, so batch-32 throughput uses a second file converted at batch 32.",
        "- Weights are random (timing does not depend on them); accuracy appears only for "
        "files passed with `--pretrained`.",
        "",
        "## Networks",
        "",
    ]
    for net in args.networks:
        lines.append(f"- **{net}**: {NET_TEXT[net]}")
        lines += [f"- {t}" for t in NET_NOTES.get(net, ())]
    lines += [
        "",
        "## Results",
        "",
        f"![ratios against edgebnn]({os.path.relpath(args.plot, os.path.dirname(args.doc))})",
        "",
    ]
    for net in args.networks:
        lines += [f"### {net}", "", _results_table(summ, net, args.threads), ""]
    lines += ["## Targets (edgebnn)", "", _targets(summ, args.networks), "",
              "Where an .ebnn file's bytes go. The random-weight files are written by "
              "`benchmarks/peers/build_edgebnn.py`: the folded graph in the compact format "
              "version 2 (binary weights 1 bit each, compressed graph) with the float "
              f"parameters stored as `--ebnn-float-params {getattr(args, 'ebnn_float_params', None) or 'int5'}` "
              "says (intN: the float layers' weights of at least 1024 values -- stem, 1x1 "
              "downsampling shortcuts, classifier -- N-bit with a scale per output channel, "
              "the other float parameters float16; the engine widens them to float32 at load, so the "
              "timings do not depend on it; its accuracy effect on the shipped models "
              "is measured in docs/FORMAT.md section 8). Pretrained files (--pretrained) are timed as they are. Storage codes: "
              "B1 1-bit weights, Q8/Q6/Q5/Q4 8/6/5/4-bit integers + scales, F16/F32 floats, I32/U8 "
              "thresholds and flips, U64 bits in 64-bit words (version 1). The last column is "
              "the ratio no file with the same float-layer storage can beat (no header, no "
              "batch-norm parameters):", "",
              _contents_table(machine.get("ebnn_contents"), summ), "",
              "## Same network in every runtime",
              "",
              "Ops each file executes: the folded plan of the .ebnn file (conv/dense with its "
              "BN and activation fused), and the operator list of each .tflite file (TFLite "
              "fuses BN and ReLU into CONV_2D; LCE's binary convs are `LceBconv2d`, fed by "
              "`LceQuantize` where the input is not already bit-packed; Keras 3's Flatten "
              "adds SHAPE/STRIDED_SLICE/PACK to the LiteRT LeNet, a few microseconds).",
              "",
              _ops_table(machine.get("op_counts")),
              "",
              "## LCE kernel options",
              "",
              "Batch-1 median (min) ms of a short run per option, options interleaved; the "
              "option with the lowest min (least disturbed by other load) is used above.",
              "", _lce_table(select_table), ""]
    if notes:
        lines += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]
    lines += [
        "## Pretrained models (accuracy)",
        "",
        "`python benchmarks/peers.py --pretrained DIR` takes, per network, any of "
        "`NET.ebnn`, `NET_fp32.tflite`, `NET_int8.tflite`, `NET_lce.tflite` and "
        f"`NET_lce_b{args.batch}.tflite` from DIR instead of the random-weight files, and "
        f"scores each trained file on the first {settings['eval_samples']} test images "
        "(MNIST for lenet, CIFAR-10 for resnet20; from `--data`, `$EDGEBNN_DATA` or "
        "`../shared/datasets`), every runtime fed the same float input normalised as the "
        ".ebnn file's input spec says. Needs `NET.ebnn` in DIR for the test set. Files may "
        "also be named `NET.fp32.tflite` etc. (the exporter's names), and `--pretrained-as "
        "lenet=lenet_binary` maps a network to another file stem. Each file's accuracy is "
        "its own: the exporter's `--tflite` twins keep activations real-valued, so they do "
        "not compute the binarized network and score differently.",
        "",
        "## Reproduce",
        "",
        "    python setup.py build_ext --inplace -j 2",
        f"    {cmd}",
        "",
        "The script creates `../venv-litert` and `../venv-lce` (override with "
        "`--litert-venv`, `--lce-venv`) from `benchmarks/requirements-litert.txt` and "
        "`benchmarks/requirements-lce.txt`, builds the random-weight files into "
        "`build/peers-models/` (rebuilt when `benchmarks/peers/nets.py` changes), and "
        "rewrites this page and the plot (`--quick` writes `build/benchmarks-quick.md` and "
        "`.png` instead, so a smoke check never replaces these figures). `--json FILE` keeps "
        "the raw results; `--report-only FILE` re-renders the page from them.",
        "",
    ]
    with open(args.doc, "w") as f:
        f.write("\n".join(lines))
