"""The exporter: Keras (export.layers / export.models) -> .ebnn, checked
layer by layer; errors it promises. Small random networks, random inputs."""
import json
import os

import numpy as np
import pytest

pytestmark = pytest.mark.tf
keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

import edgebnn
from edgebnn_export import layers as L
from edgebnn_export import models
from edgebnn_export.convert import ExportError, convert
from edgebnn_export.equivalence import Checker
from edgebnn_export.exporter import export, main

SMALL = {"lenet": dict(width=0.2, input_shape=(12, 12, 1), classes=5),
         "resnet": dict(n=1, width=0.5, input_shape=(8, 8, 3), classes=4),
         "alexnet": dict(width=0.06, input_shape=(35, 35, 3), classes=6)}


def randomize_bn(model, seed=0, zero_gamma=True):
    """Trained-looking batchnorms: negative and zero gammas, means that put
    the sign thresholds inside the dot range."""
    r = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, (L.BinaryConv2D, L.BinaryDense)) and layer.bias is not None:
            layer.bias.assign(r.normal(0, 0.3, layer.bias.shape))
        if isinstance(layer, keras.layers.BatchNormalization):
            c = layer.moving_mean.shape[0]
            gamma = r.uniform(0.5, 2, c) * r.choice([-1, 1], c)
            if zero_gamma:
                gamma[r.random(c) < 0.1] = 0
            layer.gamma.assign(gamma)
            layer.beta.assign(r.normal(0, 0.5, c))
            layer.moving_mean.assign(r.normal(0, 2, c))
            layer.moving_variance.assign(r.uniform(0.2, 2, c))
    return model


def inputs(model, n=16, seed=0):
    shape = tuple(int(d) for d in model.inputs[0].shape[1:])
    return np.random.default_rng(seed).standard_normal((n,) + shape).astype(np.float32)


def assert_file_matches(path, model, x):
    out = edgebnn.load(path).run(x)
    ref = np.asarray(model(x, training=False))
    assert np.mean(out.argmax(1) == ref.argmax(1)) >= 0.9
    assert np.abs(out - ref).max() < 1e-3 * max(1.0, np.abs(ref).max())


@pytest.mark.parametrize("scheme", ["float", "xnor", "scalar", "binary"])
@pytest.mark.parametrize("net", ["lenet", "resnet", "alexnet"])
def test_zoo_network_exports_equivalent(tmp_path, net, scheme):
    keras.utils.set_random_seed(3)
    model = randomize_bn(models.build(net, scheme=scheme, **SMALL[net]))
    src = tmp_path / "m.keras"
    model.save(src)
    out = tmp_path / "m.ebnn"
    report = export(str(src), str(out), samples=12, log=lambda s: None)
    assert report.passed and report.top1_agreement == 1.0
    assert all(not c.violations for c in report.ops)
    assert report.max_logit_diff < 1e-3
    graph = edgebnn.load_graph(str(out))
    assert all(op.type not in ("conv2d", "dense") for op in graph.ops), \
        "the file holds the folded graph"
    assert_file_matches(str(out), model, inputs(model, 12, seed=7))


@pytest.mark.parametrize("net,kw,bits", [
    ("lenet", dict(k_scale=False, padding="same_one"), True),
    ("lenet", dict(k_scale=False), True),
    # pre-activation BN follows an add, not a conv: it stays a float op
    ("resnet", dict(k_scale=False, shortcut="conv", bireal=True, channel_scale=True), False),
    ("resnet", dict(bn_before_sign=False, channel_scale=True), False),
    ("alexnet", dict(k_scale=False, float_first=False, float_last=False), True),
])
def test_binary_variants_pass(net, kw, bits):
    keras.utils.set_random_seed(5)
    model = randomize_bn(models.build(net, scheme="binary", **dict(SMALL[net], **kw)))
    checker = Checker(model, convert(model))
    report = checker.run(inputs(model, 16))
    assert report.passed, report.text()
    assert any(c.kind == "bits" for c in report.ops) == bits


def _awkward_model(channels, size, stride, padding, scheme, k_scale):
    x = inp = keras.Input((size[0], size[1], channels))
    x = L.BinaryConv2D(channels, 3, stride, "same" if padding == "same_one" and
                       scheme != "binary" else padding, scheme=scheme, k_scale=k_scale,
                       use_bias=channels % 2 == 1)(x)
    x = keras.layers.BatchNormalization()(x)
    x = L.BinaryConv2D(65, 3, 1, padding if padding != "valid" else "same", scheme="binary",
                       k_scale=k_scale)(x)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dense(3)(x)
    return randomize_bn(keras.Model(inp, x))


@pytest.mark.parametrize("channels,size,stride,padding,scheme,k_scale", [
    (1, (6, 6), 1, "same_one", "binary", False),
    (3, (5, 7), 2, "same", "binary", True),
    (63, (5, 7), 2, "valid", "xnor", False),
    (64, (1, 1), 1, "same", "binary", False),
    (65, (6, 6), 2, "same_one", "binary", True),
    (200, (5, 7), 1, "same", "scalar", False),
    (65, (3, 3), 1, "same_one", "binary", False),
])
def test_awkward_shapes(channels, size, stride, padding, scheme, k_scale):
    keras.utils.set_random_seed(channels)
    model = _awkward_model(channels, size, stride, padding, scheme, k_scale)
    report = Checker(model, convert(model)).run(inputs(model, 6))
    assert report.passed, report.text()


def _pool_then_bn_model(padding_next="same"):
    """Larq order: binary conv -> maxpool -> BN -> binary conv."""
    x = inp = keras.Input((9, 9, 3))
    x = keras.layers.Conv2D(8, 3, padding="same")(x)
    x = keras.layers.BatchNormalization()(x)
    x = L.BinaryConv2D(70, 3, 1, "same_one", scheme="binary", k_scale=False)(x)
    x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.BatchNormalization(name="neg_bn")(x)
    x = L.BinaryConv2D(9, 3, 1, padding_next, scheme="binary", k_scale=False)(x)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(4)(x)
    return randomize_bn(keras.Model(inp, x), zero_gamma=False)


@pytest.mark.parametrize("padding_next", ["same", "same_one", "valid"])
def test_negative_gamma_before_pool(padding_next):
    keras.utils.set_random_seed(11)
    model = _pool_then_bn_model(padding_next)
    gamma = np.asarray(model.get_layer("neg_bn").gamma)
    assert (gamma < 0).any() and (gamma > 0).any()
    checker = Checker(model, convert(model))
    report = checker.run(inputs(model, 16))
    assert report.passed, report.text()
    kinds = {c.op: c.kind for c in report.ops}
    # +1 padding cannot absorb inverted bits: folding keeps that BN float
    zero_pad = padding_next != "same_one"
    assert kinds["neg_bn"] == ("bits" if zero_pad else "float")
    assert bool(checker.negated) == zero_pad


def test_unsupported_layer_is_named(tmp_path, capsys):
    inp = keras.Input((6, 6, 1))
    x = keras.layers.Conv2D(4, 3)(inp)
    x = keras.layers.LeakyReLU(name="leaky")(x)
    x = keras.layers.Flatten()(x)
    model = keras.Model(inp, keras.layers.Dense(2)(x))
    with pytest.raises(ExportError, match=r"leaky \(LeakyReLU\).*Supported: .*BinaryConv2D"):
        convert(model)
    src = tmp_path / "m.keras"
    model.save(src)
    assert main([str(src), "-o", str(tmp_path / "m.ebnn")]) == 1
    assert "unsupported layer(s): leaky (LeakyReLU)" in capsys.readouterr().err
    assert not (tmp_path / "m.ebnn").exists()


def test_unsupported_activation_and_padding():
    inp = keras.Input((6, 6, 1))
    model = keras.Model(inp, keras.layers.Conv2D(4, 3, activation="tanh", name="c")(inp))
    with pytest.raises(ExportError, match="activation 'tanh' is not supported"):
        convert(model)
    model = keras.Model(inp, keras.layers.Conv2D(4, 3, dilation_rate=2, name="d")(inp))
    with pytest.raises(ExportError, match="dilated"):
        convert(model)


def test_existing_output_needs_force(tmp_path, capsys):
    keras.utils.set_random_seed(1)
    model = models.build("lenet", scheme="binary", **SMALL["lenet"])
    src, out = tmp_path / "m.keras", tmp_path / "m.ebnn"
    model.save(src)
    out.write_bytes(b"keep me")
    assert main([str(src), "-o", str(out), "--samples", "4"]) == 1
    assert "exists; pass --force" in capsys.readouterr().err
    assert out.read_bytes() == b"keep me"
    assert main([str(src), "-o", str(out), "--samples", "4", "--force"]) == 0
    assert edgebnn.load(str(out)).labels is None


def _run_dir(tmp_path, width=0.2):
    recipe = {"net": "lenet", "model": dict(scheme="binary", width=width, input_shape=[12, 12, 1],
                                            classes=3, k_scale=False)}
    keras.utils.set_random_seed(2)
    model = randomize_bn(models.build("lenet", **recipe["model"]))
    run = tmp_path / "run"
    ckpt = tf.train.Checkpoint(model=model)
    tf.train.CheckpointManager(ckpt, str(run / "best"), 1).save(checkpoint_number=3)
    (run / "run.json").write_text(json.dumps({
        "recipe": recipe, "classes": ["a", "b", "c"],
        "preprocess": {"scale": 1 / 255, "mean": [0.25], "std": [0.5]}}))
    return run, model


def test_checkpoint_and_recipe(tmp_path):
    run, model = _run_dir(tmp_path)
    out = tmp_path / "m.ebnn"
    report = export(str(run), str(out), samples=8, log=lambda s: None)
    assert report.passed
    m = edgebnn.load(str(out))
    assert m.labels == ["a", "b", "c"]
    assert m.input_spec.preprocess["mean"] == [0.25] and m.input_spec.preprocess["std"] == [0.5]
    assert_file_matches(str(out), model, inputs(model, 8, seed=4))
    # raw pixels go through the file's preprocessing like Keras's input
    pix = np.random.default_rng(0).integers(0, 256, (5, 12, 12, 1), dtype=np.uint8)
    x = ((pix.astype(np.float32) * np.float32(1 / 255) - np.float32(0.25)) / np.float32(0.5))
    assert np.array_equal(m.predict(pix), np.asarray(model(x)).argmax(1))


def test_truncated_and_wrong_checkpoint(tmp_path, capsys):
    run, _ = _run_dir(tmp_path)
    data = next(p for p in (run / "best").iterdir() if ".data-" in p.name)
    full = data.read_bytes()
    data.write_bytes(full[:len(full) // 2])
    assert main([str(run), "-o", str(tmp_path / "a.ebnn")]) == 1
    err = capsys.readouterr().err
    assert "cannot be restored" in err and "truncated" in err
    data.write_bytes(full)
    spec = json.loads((run / "run.json").read_text())
    spec["recipe"]["model"]["width"] = 0.5            # another network
    (run / "run.json").write_text(json.dumps(spec))
    assert main([str(run), "-o", str(tmp_path / "b.ebnn")]) == 1
    assert "cannot be restored" in capsys.readouterr().err
    assert not list(tmp_path.glob("*.ebnn"))
    (run / "run.json").unlink()
    assert main([str(run / "best"), "-o", str(tmp_path / "c.ebnn")]) == 1
    assert "no run.json" in capsys.readouterr().err


def test_checker_names_first_diverging_op():
    keras.utils.set_random_seed(4)
    model = randomize_bn(models.build("lenet", scheme="binary", k_scale=False, **SMALL["lenet"]))
    conversion = convert(model)
    # a wrong conversion (one weight sign) is caught at its layer
    w = conversion.graph.by_name["conv2"].params["weight"]
    w.setflags(write=True)
    w[0, 0, 0, 0] ^= np.uint64(1)
    report = Checker(model, conversion).run(inputs(model, 8))
    assert not report.passed
    assert report.first_failure.op == "conv2_bn"
    assert "does not match the layer" in report.failure_message()
    # a wrong runtime plan is caught at its op: a float output stage ...
    checker = Checker(model, convert(model))
    bias = checker.plan.by_name["conv2_bn"].params["bias"]
    bias.setflags(write=True)
    bias += 0.01
    report = checker.run(inputs(model, 8))
    assert report.first_failure.op == "conv2_bn"
    assert "exceeds the rounding bound" in report.failure_message()
    # ... and integer thresholds (a bit differs away from the threshold)
    model = randomize_bn(models.build("alexnet", scheme="binary", k_scale=False,
                                      **SMALL["alexnet"]))
    checker = Checker(model, convert(model))
    thr = checker.plan.by_name["conv3_bn"].params["thresholds"]
    thr.setflags(write=True)
    thr += 5
    report = checker.run(inputs(model, 8))
    assert report.first_failure.op == "conv3_bn"
    assert "outside the rounding bound" in report.failure_message()


def test_near_threshold_bits_are_flips_or_equal():
    """BN thresholds placed exactly on reachable dot values: any bit that
    differs must be reported as a flip within the bound, never a failure."""
    keras.utils.set_random_seed(6)
    model = models.build("lenet", scheme="binary", k_scale=False, **SMALL["lenet"])
    randomize_bn(model, zero_gamma=False)
    layer = model.get_layer("conv2")
    _, alpha = layer.signed_kernel()
    bn = model.get_layer("conv2_bn")
    c = bn.moving_mean.shape[0]
    dots = np.random.default_rng(0).integers(-20, 20, c) * 2 + 1
    bn.moving_mean.assign(dots * np.asarray(alpha) * np.float32(1.0000001))
    bn.beta.assign(np.zeros(c))
    report = Checker(model, convert(model)).run(inputs(model, 32))
    assert report.passed, report.text()
    for f in report.flips:
        assert abs(f.presign) <= f.bound
    own = {(f.op, f.sample, tuple(f.index)) for f in report.flips}
    for f in report.free_flips:
        assert f.cause in ("own flip", "within accumulated rounding", "after an earlier flip")
        if f.cause == "own flip":
            assert (f.op, f.sample, tuple(f.index)) in own


def test_tflite_float_twin(tmp_path):
    from edgebnn_export.tflite import run_tflite, twin_outputs
    keras.utils.set_random_seed(8)
    model = randomize_bn(models.build("lenet", scheme="binary", **SMALL["lenet"]))
    src, out = tmp_path / "m.keras", tmp_path / "m.ebnn"
    model.save(src)
    logs = []
    export(str(src), str(out), samples=40, tflite=("fp32", "int8"), log=logs.append)
    x = inputs(model, 8, seed=9)
    graph = convert(model).graph
    twin = twin_outputs(graph, x)
    fp32 = run_tflite(str(tmp_path / "m.fp32.tflite"), x)
    assert np.abs(fp32 - twin).max() < 1e-4 * max(1.0, np.abs(twin).max())
    int8 = run_tflite(str(tmp_path / "m.int8.tflite"), x)
    assert int8.shape == twin.shape
    # full-integer: int8 input and output tensors
    import tensorflow as tf
    interp = tf.lite.Interpreter(model_path=str(tmp_path / "m.int8.tflite"))
    assert interp.get_input_details()[0]["dtype"] == np.int8
    assert interp.get_output_details()[0]["dtype"] == np.int8
    assert any("m.int8.tflite" in line for line in logs)


def test_compact_and_float_params(tmp_path, capsys):
    """--compact is lossless (the bit-for-bit check still applies); rounded
    float parameters are written with their effect logged; int8 needs
    --compact."""
    keras.utils.set_random_seed(4)
    model = randomize_bn(models.build("resnet", scheme="binary", **SMALL["resnet"]))
    src = tmp_path / "m.keras"
    model.save(src)
    x = inputs(model, 8, seed=3)
    export(str(src), str(tmp_path / "v1.ebnn"), samples=16, log=lambda s: None)
    logs = []
    export(str(src), str(tmp_path / "v2.ebnn"), samples=16, compact=True, log=logs.append)
    assert any("format v2, float params f32" in line for line in logs)
    v1, v2 = edgebnn.load(str(tmp_path / "v1.ebnn")), edgebnn.load(str(tmp_path / "v2.ebnn"))
    assert v2.graph.file_info["version"] == 2
    assert np.array_equal(v1.run(x), v2.run(x))
    assert os.path.getsize(tmp_path / "v2.ebnn") < os.path.getsize(tmp_path / "v1.ebnn")
    for option in ("f16", "int8"):
        logs = []
        out = tmp_path / f"{option}.ebnn"
        export(str(src), str(out), samples=16, compact=True, float_params=option,
               log=logs.append)
        effect = [line for line in logs if line.startswith(f"float params {option}:")]
        assert effect and "top-1 agreement with the float32 plan" in effect[0], logs
        assert_file_matches(str(out), model, x) if option == "f16" else None
        assert np.all(np.isfinite(edgebnn.load(str(out)).run(x)))
    with pytest.raises(ExportError, match="compact"):
        export(str(src), str(tmp_path / "bad.ebnn"), samples=4, float_params="int8",
               log=lambda s: None)
    assert main([str(src), "-o", str(tmp_path / "cli.ebnn"), "--samples", "4", "--compact",
                 "--float-params", "f16"]) == 0
    assert "float params f16" in capsys.readouterr().out


def test_labels_and_preprocessing_options(tmp_path, capsys):
    keras.utils.set_random_seed(1)
    model = models.build("lenet", scheme="xnor", **SMALL["lenet"])
    src, out = tmp_path / "m.keras", tmp_path / "m.ebnn"
    model.save(src)
    assert main([str(src), "-o", str(out), "--samples", "4", "--labels", "a,b,c,d,e",
                 "--mean", "0.5", "--std", "0.25", "--invert", "--scale", "0.5"]) == 0
    m = edgebnn.load(str(out))
    assert m.labels == ["a", "b", "c", "d", "e"]
    assert m.input_spec.preprocess == {"size": [12, 12], "channels": 1, "scale": 0.5,
                                       "mean": [0.5], "std": [0.25], "invert": True}
    assert main([str(src), "-o", str(tmp_path / "n.ebnn"), "--labels", "a,b"]) == 1
    assert "2 labels but the model's output has shape [5]" in capsys.readouterr().err
    assert main([str(src), "-o", str(out), "--force", "--samples", "4", "--no-preprocess"]) == 0
    assert edgebnn.load(str(out)).input_spec.preprocess is None


@pytest.mark.parametrize("backend,executor", [("numpy", "numpy (folded"),
                                              ("auto", "numpy ops, file end to end on the engine")])
def test_both_executors_check(backend, executor):
    keras.utils.set_random_seed(12)
    model = randomize_bn(models.build("alexnet", scheme="binary", k_scale=False,
                                      **SMALL["alexnet"]))
    report = Checker(model, convert(model), backend=backend).run(inputs(model, 8))
    assert report.executor.startswith(executor)
    assert report.passed, report.text()


def test_top1_rule_applies_to_real_inputs_only():
    from edgebnn_export.equivalence import Report
    report = Report("real", 1000)
    report.top1_agreement, report.max_logit_diff = 0.998, 0.5
    assert not report.passed
    assert "top-1 agreement 99.8000% on real inputs is under 99.9%" in report.failure_message()
    report.top1_agreement = 0.999
    assert report.passed and report.failure_message() is None
    report = Report("random", 64)
    report.top1_agreement, report.max_logit_diff = 0.9, 0.5
    assert report.passed


def test_edgebnn_export_subcommand_help():
    import subprocess
    import sys
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    res = subprocess.run([sys.executable, "-m", "edgebnn", "export", "--help"], cwd=root,
                         capture_output=True, text=True, timeout=120, check=False)
    assert res.returncode == 0, res.stderr
    assert "usage: edgebnn export" in res.stdout and "--tflite" in res.stdout


def test_untrained_binary_logits_with_softmax():
    """Default BN and binary logits: exact ties between classes and softmax
    outputs down to 1e-30 (subnormals flushed by TensorFlow) still pass."""
    keras.utils.set_random_seed(13)
    model = keras.Sequential([
        keras.Input((10, 10, 1)),
        L.BinaryConv2D(16, 3, scheme="xnor"),
        keras.layers.BatchNormalization(),
        L.BinaryConv2D(32, 3, padding="same_one", scheme="binary", k_scale=False),
        keras.layers.MaxPooling2D(2),
        keras.layers.BatchNormalization(),
        keras.layers.Flatten(),
        L.BinaryDense(10, scheme="binary", k_scale=False),
        keras.layers.BatchNormalization(),
        keras.layers.Activation("softmax")])
    report = Checker(model, convert(model)).run(inputs(model, 64))
    assert report.passed, report.text()
    assert report.top1_agreement == 1.0
    assert report.top1_strict == 1.0 - report.ties / 64
