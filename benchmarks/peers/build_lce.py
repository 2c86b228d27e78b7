"""Build the benchmark networks with Larq (QuantConv2D/QuantDense, ste_sign,
+1 padding) and convert them with Larq Compute Engine, at batch 1 and at
the throughput batch (LCE files have a fixed batch). Runs in the LCE venv
(TF_USE_LEGACY_KERAS=1: larq needs tf_keras).

    python build_lce.py OUT_DIR BATCH [NET ...]"""
import os
import sys

os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import nets  # noqa: E402


def larq_model(name, kwargs, batch, seed=0):
    import larq
    import tf_keras
    tf_keras.utils.set_random_seed(seed)
    fn = nets.NETWORKS[name][0]
    return nets.randomize_bn(fn(nets.KerasBuilder(tf_keras, larq, batch=batch), **kwargs), seed)


def main():
    from larq_compute_engine import convert_keras_model
    out, batch = sys.argv[1], int(sys.argv[2])
    names = sys.argv[3:] or list(nets.NETWORKS)
    os.makedirs(out, exist_ok=True)
    for name in names:
        variants = [(name, {})]
        if name in nets.LCE_VARIANTS:
            variants.append(nets.LCE_VARIANTS[name])
        for label, kwargs in variants:
            one = larq_model(name, kwargs, 1)
            for b in (1, batch):
                model = one if b == 1 else larq_model(name, kwargs, b)
                model.set_weights(one.get_weights())    # same network at every batch
                path = os.path.join(out, f"{label}_lce{'' if b == 1 else f'_b{b}'}.tflite")
                with open(path, "wb") as f:
                    f.write(convert_keras_model(model))
                print(f"wrote {path} ({os.path.getsize(path)} bytes)", flush=True)


if __name__ == "__main__":
    main()
