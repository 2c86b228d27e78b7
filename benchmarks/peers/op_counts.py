"""Op histogram of every model file of a run, so the page can show that
the runtimes execute the same network: for .tflite files the op list of
tf.lite.experimental.Analyzer (LCE's custom ops included), for .ebnn files
the folded plan edgebnn executes. Project environment.

    python op_counts.py OUT_JSON FILE ..."""
import collections
import contextlib
import io
import json
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(os.path.dirname(HERE))]
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def tflite_ops(path):
    import tensorflow as tf
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        tf.lite.experimental.Analyzer.analyze(model_path=path)
    return collections.Counter(re.findall(r"Op#\d+ (\w+)\(", buf.getvalue()))


def ebnn_ops(path):
    import edgebnn
    from edgebnn.fold import fold
    plan = fold(edgebnn.load_graph(path))
    names = []
    for op in plan.ops:
        if op.type.startswith("fused_"):
            names.append(f"{op.type[6:]} {op.attrs['scheme']}")
        else:
            names.append(op.type)
    return collections.Counter(names)


def main():
    out = {}
    for path in sys.argv[2:]:
        try:
            counts = ebnn_ops(path) if path.endswith(".ebnn") else tflite_ops(path)
            out[os.path.basename(path)] = dict(counts.most_common())
        except Exception as e:  # noqa: BLE001 - one unreadable file must not hide the others
            out[os.path.basename(path)] = {"error": str(e)[:200]}
    with open(sys.argv[1], "w") as f:
        json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
