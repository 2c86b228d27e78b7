"""The float twin of an exported model as .tflite (for the benchmarks).

The twin has the graph's topology with ordinary float layers, built from
the UNFOLDED graph with plain TensorFlow ops (so Keras 3 and tf_keras
sources work alike):

- weights: the binarized EFFECTIVE weights, sign(W) * alpha (per filter or
  scalar), or the float weights of float layers -- not the latent ones;
- activations are NOT binarized: the implicit sign() of binary layers and
  explicit sign ops are dropped, the K input scale is dropped, and +1
  padding becomes zero padding. Its outputs are therefore not the BNN's;
  it is the same network shape computed in float32 / int8, which is what a
  latency comparison needs.

int8 is full-integer (int8 input and output, TFLITE_BUILTINS_INT8) with the
check's inputs as representative data; an op without an int8 kernel (LRN)
makes the converter keep float ops, which is reported.
"""

import numpy as np

from edgebnn.bits import unpack_signs


def _effective_weight(op):
    p = op.compute_params()
    w = p["weight"]
    if op.attrs["scheme"] != "float":
        w = unpack_signs(w, op.fan_in)
        if op.attrs["alpha"] != "none":
            w = w * p["alpha"].reshape((-1,) + (1,) * (w.ndim - 1))
    return w.astype(np.float32)


def twin_function(graph):
    """A tf.function computing the float twin of `graph`."""
    import tensorflow as tf

    def pad_mode(p):
        return "VALID" if p == "valid" else "SAME"

    def step(op, xs):
        a, t = op.attrs, op.type
        x = xs[0]
        if t == "conv2d":
            w = np.transpose(_effective_weight(op), (1, 2, 3, 0))      # -> [kh, kw, C, O]
            y = tf.nn.conv2d(x, tf.constant(w), [1, *a["strides"], 1], pad_mode(a["padding"]))
        elif t == "dense":
            y = tf.matmul(x, tf.constant(_effective_weight(op).T))
        if t in ("conv2d", "dense"):
            return y + tf.constant(op.compute_params()["bias"]) if a["use_bias"] else y
        if t == "batchnorm":
            p = {k: v.astype(np.float64) for k, v in op.compute_params().items()}
            s = p["gamma"] / np.sqrt(p["var"] + a["eps"])
            return x * tf.constant(s.astype(np.float32)) + tf.constant(
                (p["beta"] - p["mean"] * s).astype(np.float32))
        if t == "relu":
            return tf.nn.relu(x)
        if t == "hardtanh":
            return tf.clip_by_value(x, -1.0, 1.0)
        if t == "sign":
            return x
        if t in ("maxpool", "avgpool"):
            f = tf.nn.max_pool2d if t == "maxpool" else tf.nn.avg_pool2d
            return f(x, a["pool"], a["strides"], pad_mode(a["padding"]))
        if t == "global_avgpool":
            return tf.reduce_mean(x, axis=[1, 2])
        if t == "lrn":
            return tf.nn.local_response_normalization(x, a["depth_radius"], a["bias"],
                                                      a["alpha"], a["beta"])
        if t == "add":
            return x + xs[1]
        if t == "flatten":
            return tf.reshape(x, [-1, int(np.prod(graph.shape_of(op.inputs[0])))])
        if t == "softmax":
            return tf.nn.softmax(x)
        raise ValueError(f"op {op.name!r}: type {t!r} has no float twin")

    @tf.function(input_signature=[tf.TensorSpec([1] + graph.input.shape, tf.float32)])
    def twin(x):
        values = {graph.input.name: x}
        for op in graph.ops:
            values[op.name] = step(op, [values[n] for n in op.inputs])
        return values[graph.output]
    return twin


def write_tflite(graph, output, mode, samples, log=print):
    """Write <output stem>.<mode>.tflite; returns its path."""
    import tensorflow as tf
    fn = twin_function(graph)
    conv = tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function()])
    if mode == "int8":
        reps = np.asarray(samples, np.float32)[:200]

        def representative():
            for x in reps:
                yield [x[None]]
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = representative
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = tf.int8
        conv.inference_output_type = tf.int8
        try:
            data = conv.convert()
        except Exception as e:      # noqa: BLE001 -- converter errors vary
            log(f"int8: not every op has an int8 kernel ({type(e).__name__}); those stay float")
            conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8,
                                              tf.lite.OpsSet.TFLITE_BUILTINS]
            data = conv.convert()
    elif mode == "fp32":
        data = conv.convert()
    else:
        raise ValueError(f"tflite mode must be fp32 or int8, got {mode!r}")
    stem = output.removesuffix(".ebnn")
    path = f"{stem}.{mode}.tflite"
    with open(path, "wb") as f:
        f.write(data)
    return path


def run_tflite(path, x):
    """Outputs of a .tflite for float inputs x [N, ...] (quantizing for int8)."""
    import tensorflow as tf
    interp = tf.lite.Interpreter(model_path=path)
    interp.allocate_tensors()
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    res = []
    for sample in np.asarray(x, np.float32):
        v = sample[None]
        if inp["dtype"] == np.int8:
            scale, zero = inp["quantization"]
            v = np.clip(np.round(v / scale + zero), -128, 127).astype(np.int8)
        interp.set_tensor(inp["index"], v)
        interp.invoke()
        y = interp.get_tensor(out["index"]).astype(np.float32)
        if out["dtype"] == np.int8:
            scale, zero = out["quantization"]
            y = (y - zero) * scale
        res.append(y[0])
    return np.stack(res)


def twin_outputs(graph, x):
    """The twin's outputs in TensorFlow (float32), for checking the files."""
    fn = twin_function(graph)
    return np.stack([np.asarray(fn(s[None]))[0] for s in np.asarray(x, np.float32)])
