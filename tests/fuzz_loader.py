"""Long fuzzing run of the loader (plain random, reproducible by seed):

    python tests/fuzz_loader.py --cases 100000 [--seed 0]

Mutates valid LeNet/ResNet/AlexNet files (format versions 1 and 2) (truncation, bit flips, bad header
lengths, oversized counts, negative and overlapping offsets, wrong dtypes
and shapes, edited graph JSON) and checks that loading and folding either
succeed or raise ModelError, with bounded memory. Exits 1 on the first
other outcome and prints the seed that reproduces it."""
import argparse
import os
import sys
import tempfile
import time
import traceback

import numpy as np

sys.path[:0] = [os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                os.path.dirname(os.path.abspath(__file__))]

import model_zoo  # noqa: E402
from edgebnn import save  # noqa: E402
from edgebnn.fold import fold  # noqa: E402
from fuzz_cases import RandomPick, check_one, mutate  # noqa: E402


def seed_blobs():
    blobs = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, (net, scheme) in enumerate([("lenet", "binary"), ("resnet", "binary_k"),
                                           ("alexnet", "binary_weights"), ("lenet", "float")]):
            kw = {"size": 8} if net == "lenet" else {}
            path = os.path.join(tmp, f"{i}.ebnn")
            graph = getattr(model_zoo, net)(np.random.default_rng(i), scheme, **kw)
            save(path, graph)
            blobs.append(open(path, "rb").read())
            # the same network folded, in the compact version 2
            save(path, fold(graph), overwrite=True, compact=True,
                 float_params=("f32", "f16", "int8", "int5")[i % 4])
            blobs.append(open(path, "rb").read())
    return blobs


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=10000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    blobs = seed_blobs()
    counts = {"ok": 0, "error": 0}
    start = time.time()
    for case in range(args.cases):
        pick = RandomPick(args.seed * 1_000_003 + case)
        blob = mutate(pick.choice(blobs), pick)
        try:
            counts[check_one(blob)] += 1
        except Exception:
            traceback.print_exc()
            print(f"FAILED at case {case} (seed {args.seed})")
            return 1
    print(f"{args.cases} cases in {time.time() - start:.1f}s: {counts['ok']} loaded, "
          f"{counts['error']} rejected with ModelError, 0 other outcomes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
