"""File sizes of the benchmark networks and the shipped models in every
storage edgebnn writes, against the fp32 .tflite of the same network (issue
#7's target: at most 1/25 of it), and where the bytes go.

    python benchmarks/file_sizes.py [--tflite-dir build/peers-models] [--breakdown int8]

The networks are built with random weights as benchmarks/peers/build_edgebnn.py
builds them (sizes do not depend on the weights' values, except that zlib
compresses the graph document only). The .tflite sizes are read from the
peer benchmark's folder (python benchmarks/peers.py builds them); without
it the ratio columns stay empty. No timing: this runs in seconds."""
import argparse
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path[:0] = [ROOT, os.path.join(HERE, "peers")]

import edgebnn  # noqa: E402
import nets  # noqa: E402
from edgebnn.fold import fold  # noqa: E402
from edgebnn.format import byte_breakdown, encodings_used  # noqa: E402
from edgebnn.pretrained import SHIPPED, shipped_path  # noqa: E402

# column -> (compact, float_params, fold first)
STORAGES = {"v1 f32": (False, "f32", False), "v2 f32": (True, "f32", True),
            "v2 f16": (True, "f16", True), "v2 int8": (True, "int8", True),
            "v2 int6": (True, "int6", True), "v2 int5": (True, "int5", True),
            "v2 int4": (True, "int4", True)}
TARGET = 25


def _kb(n):
    return f"{n / 1e3:,.1f} kB"


def write_all(graph, folder, stem, source_v1=None):
    """{storage: loaded Graph of the written file}."""
    out = {}
    for label, (compact, fp, folded) in STORAGES.items():
        path = os.path.join(folder, f"{stem}-{label.replace(' ', '-')}.ebnn")
        if label == "v1 f32" and source_v1:
            out[label] = edgebnn.load_graph(source_v1)
            continue
        g = fold(graph) if folded else graph
        out[label] = edgebnn.save(path, g, overwrite=True, compact=compact, float_params=fp)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tflite-dir", default=os.path.join(ROOT, "build", "peers-models"),
                    help="folder with NET_fp32.tflite (the peer benchmark's models)")
    ap.add_argument("--breakdown", choices=[s.split()[1] for s in STORAGES if s != "v1 f32"],
                    default="int8", help="storage whose byte breakdown is printed")
    args = ap.parse_args()
    rows, breakdown = [], []
    with tempfile.TemporaryDirectory() as tmp:
        cases = [(n, nets.NETWORKS[n][0](nets.EdgebnnBuilder(seed=0), **nets.NETWORKS[n][1]),
                  None) for n in nets.NETWORKS]
        cases += [(f"shipped {n}", edgebnn.load_graph(shipped_path(n)), shipped_path(n))
                  for n in sorted(SHIPPED) if os.path.isfile(shipped_path(n))]
        for name, graph, source in cases:
            files = write_all(graph, tmp, name.replace(" ", "_"), source)
            tfl = os.path.join(args.tflite_dir, f"{name}_fp32.tflite")
            fp32 = os.path.getsize(tfl) if os.path.isfile(tfl) else None
            cells = []
            for label, g in files.items():
                size = g.file_info["file_bytes"]
                ratio = f" ({fp32 / size:.1f}x)" if fp32 else ""
                cells.append(f"{_kb(size)}{ratio}")
            rows.append(f"| {name} | {_kb(fp32) if fp32 else '-'} | " + " | ".join(cells) + " |")
            for label in ("v1 f32", f"v2 {args.breakdown}"):
                p = byte_breakdown(files[label])
                used = ", ".join(f"{n} {e}" for e, n in sorted(encodings_used(files[label]).items()))
                breakdown.append(
                    f"| {name} | {label} ({used}) | {_kb(p['binary weights'])} | "
                    f"{_kb(p['binary bits'] / 8)} | {_kb(p['float weights'])} | "
                    f"{_kb(p['other params'])} | {_kb(p['graph'])} | {_kb(p['container'])} | "
                    f"{_kb(p['file'])} |")
    print(f"File size (fp32 .tflite / file; target >= {TARGET}x). v1 f32: format version 1 "
          "as written before (unfolded for the random nets); v2: folded graph, compact "
          "format, float parameters as named (f16 all float16; int8/int6/int5/int4 float "
          "conv/dense weights quantized per output channel, other float parameters float16).\n")
    print("| network | fp32 .tflite | " + " | ".join(STORAGES) + " |")
    print("|" + " --- |" * (len(STORAGES) + 2))
    print("\n".join(rows))
    print("\nWhere the bytes go:\n")
    print("| network | storage | binary weights | (1 bit each) | float weights | other params | "
          "graph document | container | file |")
    print("|" + " --- |" * 9)
    print("\n".join(breakdown))


if __name__ == "__main__":
    main()
