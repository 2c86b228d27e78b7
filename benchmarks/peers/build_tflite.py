"""Build the float twins of the benchmark networks in Keras (project
environment, current TensorFlow) and convert each to a float32 .tflite
and a full-integer int8 .tflite (int8 input and output, calibrated on
random inputs: the weights are random too).

    python benchmarks/peers/build_tflite.py OUT_DIR [NET ...]"""
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

import nets  # noqa: E402

CALIBRATION_SAMPLES = 16


def keras_twin(name, seed=0):
    import keras
    keras.utils.set_random_seed(seed)
    fn, kwargs, _ = nets.NETWORKS[name]
    return nets.randomize_bn(fn(nets.KerasBuilder(keras), **kwargs), seed)


def convert(model, int8):
    import tensorflow as tf
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    if int8:
        shape = [1, *model.input_shape[1:]]
        rng = np.random.default_rng(1)

        def representative():
            for _ in range(CALIBRATION_SAMPLES):
                yield [rng.standard_normal(shape).astype(np.float32)]
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = representative
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = tf.int8
        conv.inference_output_type = tf.int8
    return conv.convert()


def main():
    out = sys.argv[1]
    names = sys.argv[2:] or list(nets.NETWORKS)
    os.makedirs(out, exist_ok=True)
    for name in names:
        model = keras_twin(name)
        for kind, int8 in (("fp32", False), ("int8", True)):
            path = os.path.join(out, f"{name}_{kind}.tflite")
            with open(path, "wb") as f:
                f.write(convert(model, int8))
            print(f"wrote {path} ({os.path.getsize(path)} bytes)", flush=True)


if __name__ == "__main__":
    main()
