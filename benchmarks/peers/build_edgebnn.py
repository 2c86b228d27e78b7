"""Write the benchmark networks as .ebnn files with random weights, built
through edgebnn.graph.GraphBuilder (project environment).

    python benchmarks/peers/build_edgebnn.py OUT_DIR [NET ...] [--float-params f32|f16|int8|int6|int5|int4]

Each file holds the folded graph (what `edgebnn export` writes and what the
engine runs either way) in the compact format version 2. Float parameters
are stored as --float-params says (default int5: float conv/dense weights
of at least 1024 values as 5-bit integers with a scale per output channel,
other float parameters float16 -- the storage that brings every benchmark
network to 1/25 of its fp32 .tflite; docs/FORMAT.md section 8 measures its
accuracy cost on the shipped models; the
engine widens them to float32 once, at load, so timing is unaffected).
--float-params f32 with --v1 writes the version-1 files of earlier runs."""
import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(os.path.dirname(HERE))]

import edgebnn  # noqa: E402
import nets  # noqa: E402
from edgebnn.fold import fold  # noqa: E402

FLOAT_PARAMS = "int5"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("nets", nargs="*", metavar="NET", help=f"any of {list(nets.NETWORKS)}")
    ap.add_argument("--float-params", choices=edgebnn.format.FLOAT_PARAMS, default=FLOAT_PARAMS)
    ap.add_argument("--v1", action="store_true", help="format version 1, unfolded (as before)")
    args = ap.parse_intermixed_args()
    unknown = set(args.nets) - set(nets.NETWORKS)
    if unknown:
        ap.error(f"unknown networks {sorted(unknown)}")
    os.makedirs(args.out, exist_ok=True)
    for name in args.nets or list(nets.NETWORKS):
        fn, kwargs, _ = nets.NETWORKS[name]
        graph = fn(nets.EdgebnnBuilder(seed=0), **kwargs)
        path = os.path.join(args.out, f"{name}.ebnn")
        if args.v1:
            edgebnn.save(path, graph, overwrite=True, float_params=args.float_params)
        else:
            edgebnn.save(path, fold(graph), overwrite=True, compact=True,
                         float_params=args.float_params)
        print(f"wrote {path} ({os.path.getsize(path)} bytes)", flush=True)


if __name__ == "__main__":
    main()
