#!/usr/bin/env python3
"""Executed ARM instructions per inference of .tflite models under LiteRT, in
the emulated Pi rootfs (what a Pi user would run instead of edgebnn), and of
.ebnn models under edgebnn (installed there by arm/pi_install_test.sh).

Counts come from qemu-user + the bgregion plugin (../shared/tools/pichroot,
pcount.sh): the guest runs N invokes between two marker syscalls and
per inference = region(N=2) - region(N=1), exact and repeatable. Instructions
are not cycles (see docs/ARM.md). Needs root and a prepared rootfs:

    sudo ../shared/tools/pichroot/03-chroot-python.sh arm64   # venv with ai-edge-litert
    sudo ../shared/tools/pichroot/05-count-setup.sh arm64     # plugin-capable qemu
    python benchmarks/arm_litert_counts.py --make-conv-model /tmp/conv14.tflite   # host, TF
    sudo python3 benchmarks/arm_litert_counts.py /tmp/conv14.tflite
    PYTHONPATH=. python3 benchmarks/arm_litert_counts.py --make-bconv-model /tmp/bconv14.ebnn
    python3 benchmarks/arm_litert_counts.py --make-resnet20 /tmp/resnet20   # host, TF
    sudo arm/pi_install_test.sh arm64                          # venv /opt/edgebnn-venv
    sudo python3 benchmarks/arm_litert_counts.py /tmp/conv14.tflite /tmp/bconv14.ebnn

Prints one table row per (model, cpu, mode); --profile adds each model's
per-function split (per inference = profile(N=2) - profile(N=1)).
"""
import argparse
import os
import re
import shutil
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOOLS = os.environ.get("PICHROOT_TOOLS",
                       os.path.join(REPO, "..", "shared", "tools", "pichroot"))


def make_conv_model(path, hw=14, cin=256, cout=256, k=3):
    """Float 3x3 'same' conv hw x hw x cin -> cout (1 image) as .tflite, fixed seed."""
    import numpy as np
    import tensorflow as tf
    rng = np.random.default_rng(0)
    conv = tf.keras.layers.Conv2D(cout, k, padding="same", use_bias=True)
    model = tf.keras.Sequential([tf.keras.Input((hw, hw, cin), batch_size=1), conv])
    conv.set_weights([rng.standard_normal((k, k, cin, cout)).astype("float32") * 0.05,
                      rng.standard_normal(cout).astype("float32") * 0.1])
    data = tf.lite.TFLiteConverter.from_keras_model(model).convert()
    with open(path, "wb") as f:
        f.write(data)
    macs = hw * hw * cin * cout * k * k
    print(f"wrote {path}: fp32 conv {hw}x{hw}x{cin}->{cout} {k}x{k} same, "
          f"{macs / 1e6:.1f} M MACs, {len(data)} bytes")


def make_bconv_model(path, hw=14, cin=256, cout=256, k=3):
    """The same conv as make_conv_model as an edgebnn binary conv (1-bit weights
    and activations, per-filter alpha, TF zero padding): float in, float out."""
    import numpy as np
    from edgebnn import GraphBuilder, save
    from edgebnn.bits import pack_signs
    rng = np.random.default_rng(0)
    b = GraphBuilder([hw, hw, cin], name="bconv14")
    b.add("conv2d", dict(filters=cout, kernel=[k, k], strides=[1, 1], padding="same_zero",
                         scheme="binary", alpha="per_filter", input_scaling="none",
                         use_bias=True),
          {"weight": pack_signs(rng.standard_normal((cout, k, k, cin))),
           "alpha": rng.uniform(0.05, 0.3, cout).astype(np.float32),
           "bias": rng.normal(0, 0.1, cout).astype(np.float32)})
    save(path, b.build(check_labels=False), overwrite=True)
    print(f"wrote {path}: binary conv {hw}x{hw}x{cin}->{cout} {k}x{k} same_zero, "
          f"{hw * hw * cin * cout * k * k / 1e6:.1f} M binary MACs")


def make_resnet20(prefix, k_scale=True):
    """Untrained binarized CIFAR ResNet-20 (edgebnn_export.models.resnet(n=3)), random
    weights and random batch-norm statistics (fixed seed), exported by `edgebnn export` to
    PREFIX.ebnn with its float twins PREFIX.fp32.tflite / PREFIX.int8.tflite. Needs TF.
    k_scale=False: no XNOR-Net K map (the twins are the same graphs either way)."""
    import numpy as np
    import keras
    from edgebnn_export.models import resnet
    keras.utils.set_random_seed(0)                 # the layers' initialisers
    rng = np.random.default_rng(0)
    model = resnet(n=3, scheme="binary", k_scale=k_scale)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            shape = layer.get_weights()[0].shape   # gamma, beta, moving mean, moving var
            layer.set_weights([rng.uniform(0.5, 1.5, shape), rng.normal(0, 0.2, shape),
                               rng.normal(0, 0.2, shape), rng.uniform(0.5, 2.0, shape)])
    model.save(prefix + ".keras")
    subprocess.run([sys.executable, "-m", "edgebnn", "export", prefix + ".keras",
                    "-o", prefix + ".ebnn", "--force", "--tflite", "fp32", "int8"],
                   check=True, cwd=REPO)


def mark(k):
    """No-op syscall the bgregion plugin reads as region start (1) / stop (2)."""
    try:
        os.lseek(-1, 0x51C0DE00 + k, 0)
    except OSError:
        pass


def guest_edgebnn(model, n):
    """Inside the rootfs: n runs of an .ebnn model, 1 thread, between markers."""
    import numpy as np
    import edgebnn
    import edgebnn._engine as engine
    m = edgebnn.load(model)
    m.threads = 1
    x = np.random.default_rng(12345).standard_normal(
        [1] + list(m.input_spec.shape)).astype(np.float32)
    y = m.run(x)  # warm-up: scratch buffers, cached maps (same in every run)
    mark(1)
    for _ in range(n):
        y = m.run(x)
    mark(2)
    print(f"model={os.path.basename(model)} n={n} backend={m.backend} isa={engine.get_isa()} "
          f"sum={float(np.asarray(y, np.float64).sum()):.6g}", file=sys.stderr)


def region_count(args, model_in_root, n, tbs=None):
    """(region instructions, output checksum) of one guest run with n invokes;
    tbs: host path for bgregion's per-translation-block dump (inside the rootfs)."""
    if model_in_root.endswith(".ebnn"):
        guest = [args.edgebnn_python, "/tmp/bench/arm_litert_counts.py",
                 "--guest-edgebnn", model_in_root, str(n)]
    else:
        guest = [args.python, "/tmp/bench/bench_litert.py", model_in_root, str(n),
                 args.mode, args.runtime]
    cmd = [os.path.join(TOOLS, "pcount.sh"), "-a", args.arch, "-c", args.cpu]
    if tbs:
        cmd += ["-p", "tbs=" + tbs]
    cmd += ["--"] + guest
    p = subprocess.run(cmd, capture_output=True, text=True)
    m = re.search(r"region_insns=(\d+) regions=(\d+)", p.stdout)
    if p.returncode or not m or m.group(2) != "1":
        sys.exit(f"pcount failed (rc={p.returncode}) for {model_in_root} n={n}:\n"
                 f"{p.stderr[-3000:]}\n{p.stdout}")
    s = re.search(r"sum=(\S+)", p.stderr)
    return int(m.group(1)), (s.group(1) if s else "?")


def symbol_counts(tbs_file, root):
    """{(library, symbol): instructions} of one tbs dump, via pichroot's symbolize.py."""
    out = subprocess.run([sys.executable, os.path.join(TOOLS, "symbolize.py"), tbs_file, root,
                          "100000"], capture_output=True, text=True, check=True).stdout
    counts = {}
    for line in out.splitlines():
        m = re.match(r"\s+sym\s+(\d+)\s+\S+%\s+(.*)\s+\[(.*)\]$", line)
        if m:
            counts[(m.group(3), m.group(2).strip())] = int(m.group(1))
    return counts


def print_split(name, root, tbs1, tbs2, total, top=12):
    """Per-function instructions per inference: profile(N=2) - profile(N=1)."""
    c1, c2 = symbol_counts(tbs1, root), symbol_counts(tbs2, root)
    diff = {k: c2.get(k, 0) - c1.get(k, 0) for k in set(c1) | set(c2)}
    rows = sorted(diff.items(), key=lambda kv: -kv[1])
    print(f"\nwhere {name}'s {total / 1e6:.2f} M instructions per inference go:")
    print("| function | library | insns/inference | share |")
    print("|---|---|---:|---:|")
    shown = 0
    for (lib, sym), c in rows[:top]:
        shown += c
        print(f"| {sym} | {lib} | {c:,} | {100 * c / total:.1f} % |")
    print(f"| (all other functions) | | {total - shown:,} | {100 * (total - shown) / total:.1f} % |")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("models", nargs="*", help=".tflite (LiteRT) or .ebnn (edgebnn) files")
    ap.add_argument("--make-conv-model", metavar="PATH",
                    help="write the float 14x14x256->256 3x3 conv reference model (needs TF)")
    ap.add_argument("--make-bconv-model", metavar="PATH",
                    help="write the same conv as an edgebnn binary .ebnn (needs edgebnn)")
    ap.add_argument("--make-resnet20", metavar="PREFIX",
                    help="write PREFIX.ebnn + PREFIX.{fp32,int8}.tflite: random binarized "
                         "ResNet-20 and its float twins (needs TF and edgebnn_export)")
    ap.add_argument("--no-k-scale", action="store_true",
                    help="--make-resnet20 without the XNOR-Net K scaling")
    ap.add_argument("--guest-edgebnn", nargs=2, metavar=("MODEL", "N"), help=argparse.SUPPRESS)
    ap.add_argument("--arch", default="arm64", choices=["arm64", "armhf"])
    ap.add_argument("--cpu", default="cortex-a72", help="qemu -cpu (Pi 4: cortex-a72)")
    ap.add_argument("--mode", default="xnnpack", choices=["xnnpack", "noxnn", "ref"])
    ap.add_argument("--runtime", default="litert", choices=["litert", "tflite_runtime"])
    ap.add_argument("--python", default="/opt/venv/bin/python",
                    help="python with LiteRT inside the rootfs")
    ap.add_argument("--profile", action="store_true",
                    help="also print each model's per-function split (bgregion tbs + symbolize.py)")
    ap.add_argument("--profile-top", type=int, default=12, metavar="N",
                    help="functions listed per model by --profile (default 12)")
    ap.add_argument("--edgebnn-python", default="/opt/edgebnn-venv/bin/python",
                    help="python with edgebnn inside the rootfs")
    args = ap.parse_args()
    if args.guest_edgebnn:
        guest_edgebnn(args.guest_edgebnn[0], int(args.guest_edgebnn[1]))
        return
    if args.make_conv_model:
        make_conv_model(args.make_conv_model)
    if args.make_bconv_model:
        make_bconv_model(args.make_bconv_model)
    if args.make_resnet20:
        make_resnet20(args.make_resnet20, k_scale=not args.no_k_scale)
    if not args.models:
        return
    root = os.path.join(os.environ.get("PICHROOT_BASE", "/tmp/pichroot"), args.arch)
    for model in args.models:
        py = args.edgebnn_python if model.endswith(".ebnn") else args.python
        if not os.path.exists(os.path.join(root, py.lstrip("/"))):
            sys.exit(f"no {py} in {root}: run 03-chroot-python.sh {args.arch} (LiteRT) "
                     f"or arm/pi_install_test.sh {args.arch} (edgebnn) first")
    for sub in ("tmp/models", "tmp/bench"):
        os.makedirs(os.path.join(root, sub), exist_ok=True)
    shutil.copy(os.path.join(TOOLS, "bench_litert.py"), os.path.join(root, "tmp/bench/"))
    shutil.copy(os.path.abspath(__file__), os.path.join(root, "tmp/bench/"))
    print(f"| model | arch | runtime | mode | qemu cpu | region N=1 | region N=2 "
          f"| insns/inference | output sum |")
    print("|---|---|---|---|---|---:|---:|---:|---|")
    splits = []
    for model in args.models:
        name = os.path.basename(model)
        shutil.copy(model, os.path.join(root, "tmp/models", name))
        tbs = [os.path.join(root, "tmp/bench", f"{name}.n{n}.tbs") if args.profile else None
               for n in (1, 2)]
        r1, _ = region_count(args, f"/tmp/models/{name}", 1, tbs[0] and tbs[0][len(root):])
        r2, checksum = region_count(args, f"/tmp/models/{name}", 2, tbs[1] and tbs[1][len(root):])
        runtime, mode = ("edgebnn", "engine") if name.endswith(".ebnn") else (args.runtime, args.mode)
        print(f"| {name} | {args.arch} | {runtime} | {mode} | {args.cpu} "
              f"| {r1:,} | {r2:,} | {(r2 - r1) / 1e6:.2f} M | {checksum} |", flush=True)
        if args.profile:
            splits.append((name, tbs, r2 - r1))
    for name, tbs, total in splits:
        print_split(name, root, tbs[0], tbs[1], total, args.profile_top)


if __name__ == "__main__":
    main()
