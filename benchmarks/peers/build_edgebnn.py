"""Write the benchmark networks as .ebnn files with random weights, built
through edgebnn.graph.GraphBuilder (project environment).

    python benchmarks/peers/build_edgebnn.py OUT_DIR [NET ...]"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(os.path.dirname(HERE))]

import edgebnn  # noqa: E402
import nets  # noqa: E402


def main():
    out = sys.argv[1]
    names = sys.argv[2:] or list(nets.NETWORKS)
    os.makedirs(out, exist_ok=True)
    for name in names:
        fn, kwargs, _ = nets.NETWORKS[name]
        graph = fn(nets.EdgebnnBuilder(seed=0), **kwargs)
        path = os.path.join(out, f"{name}.ebnn")
        edgebnn.save(path, graph, overwrite=True)
        print(f"wrote {path} ({os.path.getsize(path)} bytes)", flush=True)


if __name__ == "__main__":
    main()
