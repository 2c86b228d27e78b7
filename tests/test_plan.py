"""Compiled plans (edgebnn.plan through Model) compute what the numpy oracle
of the folded ops and the unfolded float64 reference compute, for every zoo
net and scheme, every ISA the machine has and 1..4 threads (bit-identical
across thread counts); concurrent callers, uint8 input, the layer-by-layer
debug API and the profiler. Skipped (with the reason) without the engine."""
import threading
import zlib

import numpy as np
import pytest

import model_zoo
import reference_executor as ref
from edgebnn.engine_backend import load_engine
from edgebnn.fold import fold
from edgebnn.model import Model
from edgebnn.preprocess import normalize
from numpy_oracle import NumpyExecutor

ENGINE = load_engine()
pytestmark = pytest.mark.skipif(ENGINE is None, reason="edgebnn._engine is not built "
                                "(python setup.py build_ext --inplace)")

NETS = [(net, scheme) for net in ("lenet", "resnet", "alexnet") for scheme in model_zoo.SCHEMES]


def _graph(net, scheme, batch=3):
    rng = np.random.default_rng(zlib.crc32(f"engine/{net}/{scheme}".encode()))
    if net == "larq":
        graph = model_zoo.larq_style(rng, explicit_sign=scheme == "sign",
                                     padding="valid" if scheme == "sign" else "same_zero")
    elif net == "resnet-conv-shortcut":
        graph = model_zoo.resnet(rng, scheme, shortcut="conv")
    else:
        graph = getattr(model_zoo, net)(rng, scheme)
    x = rng.standard_normal([batch] + graph.input.shape).astype(np.float32)
    return graph, x


@pytest.mark.parametrize("net,scheme", NETS + [("larq", "sign"), ("larq", "nosign"),
                                               ("resnet-conv-shortcut", "binary")])
def test_plan_matches_oracle_and_reference(net, scheme):
    graph, x = _graph(net, scheme)
    model = Model(graph)
    got = model.run(x)
    np.testing.assert_allclose(got, NumpyExecutor(model.plan).run(x), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(got, ref.run(graph, x), rtol=1e-4, atol=1e-4)
    for threads in (2, 3, 4):
        model.threads = threads
        np.testing.assert_array_equal(model.run(x), got)
    # batch 1 plans are separate plans: same numbers per sample
    model.threads = 1
    np.testing.assert_array_equal(model.run(x[1]), got[1:2])


def test_residual_adds_are_fused():
    graph, x = _graph("resnet", "binary")
    model = Model(graph)
    assert model._params.residual, "expected the resnet adds to fuse into a conv"
    unfused = model.run_layers(x)[graph.output]
    np.testing.assert_allclose(model.run(x), unfused, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("isa", ["ref", "generic", "avx2", "avx512", "neon"])
def test_every_isa(isa):
    if isa not in ENGINE.isa_available():
        pytest.skip(f"ISA {isa} not available on this machine/build")
    before = ENGINE.get_isa()
    try:
        ENGINE.set_isa(isa)
        for net, scheme in (("alexnet", "binary"), ("larq", "nosign"), ("resnet", "binary_k")):
            graph, x = _graph(net, scheme)
            got = Model(graph, threads=2).run(x)
            np.testing.assert_allclose(got, ref.run(graph, x), rtol=1e-4, atol=1e-4)
    finally:
        ENGINE.set_isa(before)


@pytest.mark.parametrize("channels,size,stride,padding,scheme", model_zoo.AWKWARD)
def test_plan_awkward_shapes(channels, size, stride, padding, scheme):
    graph, x = model_zoo.awkward_case("e", channels, size, stride, padding, scheme)
    model = Model(graph, threads=2)
    got = model.run(x)
    np.testing.assert_allclose(got, NumpyExecutor(model.plan).run(x), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(got, ref.run(graph, x), rtol=1e-4, atol=1e-4)


def test_uint8_input_is_preprocessed_in_the_plan():
    graph, _ = _graph("alexnet", "binary")
    assert graph.input.preprocess is not None
    model = Model(graph)
    pixels = np.random.default_rng(5).integers(0, 256, [2] + graph.input.shape, dtype=np.uint8)
    want = model.run(normalize(pixels, graph.input))
    np.testing.assert_array_equal(model.run(pixels), want)


def test_eight_python_threads_share_one_model():
    graph, _ = _graph("resnet", "binary_k")
    model = Model(graph, threads=1)
    rng = np.random.default_rng(9)
    inputs = [rng.standard_normal([1 + i % 3] + graph.input.shape).astype(np.float32)
              for i in range(8)]
    want = [model.run(x) for x in inputs]
    model.threads = 2
    results, errors = {}, []
    start = threading.Barrier(8)

    def worker(i):
        try:
            start.wait()
            for _ in range(20):
                got = model.run(inputs[i])
                if not np.array_equal(got, want[i]):
                    errors.append(f"thread {i}: wrong result")
                    return
            results[i] = True
        except Exception as e:      # noqa: BLE001 - reported below
            errors.append(f"thread {i}: {e!r}")

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert len(results) == 8


def test_run_layers_names_every_activation():
    graph, x = _graph("lenet", "binary")
    model = Model(graph)
    layers = model.run_layers(x)
    assert set(op.name for op in model.plan.ops) <= set(layers)
    oracle = NumpyExecutor(model.plan)
    for op in model.plan.ops:
        assert layers[op.name].shape == (3,) + tuple(op.shape)
    np.testing.assert_allclose(layers[graph.output], oracle.run(x), rtol=1e-4, atol=1e-4)
    bits = [op for op in model.plan.ops if op.kind == "bits"]
    assert bits and all(set(np.unique(layers[op.name])) <= {-1.0, 1.0} for op in bits)


def test_profile_times_every_step():
    graph, x = _graph("lenet", "binary", batch=1)
    model = Model(graph)
    steps = model.profile(x, repeats=3)
    assert len(steps) >= len([op for op in model.plan.ops if op.type != "flatten"])
    assert all(t >= 0 for _, t in steps) and sum(t for _, t in steps) > 0


def test_plan_rejects_bad_arguments():
    plan = ENGINE.Plan(1)
    with pytest.raises(ValueError, match="x2 must hold 6 values"):
        plan.rows("add", "a", np.zeros((2, 3), np.float32), np.zeros((3, 3), np.float32))
    with pytest.raises(ValueError, match="C-contiguous"):
        plan.rows("clamp", "c", np.zeros((3, 4), np.float32)[:, :2])
    with pytest.raises(ValueError, match=r"mean_abs needs x \[batch, features\]"):
        plan.rows("mean_abs", "m", np.zeros((2, 3, 4), np.float32))
    with pytest.raises(ValueError, match="per-channel"):
        plan.rows("affine", "b", np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match="dtype"):
        plan.rows("sign", "s", np.zeros((2, 3), np.float64))
    with pytest.raises(ValueError, match="kind"):
        plan.rows("nonsense", "n", np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match="threads"):
        ENGINE.Plan(0)
    x = np.array([[-2, 0, 3]], np.float32)
    y = plan.rows("sign", "s", x)
    assert len(plan) == 1 and plan.names == ["s (sign)"]      # failed adds left no step
    with pytest.raises(ValueError, match="nthreads"):
        plan.run(2)
    plan.run(1)
    np.testing.assert_array_equal(y, [[-1, 1, 1]])


def _distinct_bytes(arrays):
    owners = {}
    for v in arrays:
        while v.base is not None:
            v = v.base
        owners[id(v)] = v.nbytes
    return sum(owners.values())


def test_activations_share_memory_by_lifetime():
    from edgebnn.plan import build
    graph, x = _graph("resnet", "binary", batch=4)
    model = Model(graph)
    shared = build(model.plan, model._params, 4, 1)
    separate = build(model.plan, model._params, 4, 1, fuse_residual=False)
    assert _distinct_bytes(shared.values.values()) < 0.6 * _distinct_bytes(
        separate.values.values())
    np.copyto(shared.input, x)
    np.testing.assert_allclose(shared.run(1), ref.run(graph, x), rtol=1e-4, atol=1e-4)


def test_plan_checks_what_its_allocator_returns():
    plan = ENGINE.Plan(1)
    plan.allocator = lambda shape, dtype: np.empty(shape, np.float64)
    with pytest.raises(ValueError, match="allocated output must have dtype float32"):
        plan.rows("sign", "s", np.zeros((2, 3), np.float32))
    plan.allocator = lambda shape, dtype: np.empty((1,) + shape, dtype)
    with pytest.raises(ValueError, match="allocated output must have 2 dimensions"):
        plan.rows("sign", "s", np.zeros((2, 3), np.float32))
    assert len(plan) == 0


def test_conv_bn_sign_writes_bits_without_a_float_intermediate():
    """binary conv -> batchnorm -> sign is one step writing packed words
    (integer thresholds); no float activation of that layer exists."""
    from edgebnn import plan as plan_mod
    rng = np.random.default_rng(3)
    net = model_zoo.Net(rng, [8, 8, 5])
    net.conv(70, 3, "binary")
    net.bn(spread=3.0)
    net.op("sign")
    net.conv(8, 3, "binary")
    net.op("global_avgpool")
    graph = net.build(labels=False)
    folded = fold(graph)
    first = folded.ops[0]
    assert first.type == "fused_conv2d" and first.kind == "bits"
    compiled = plan_mod.build(folded, plan_mod.Params(folded, ENGINE), batch=2, threads=1,
                              fuse_residual=False)
    out = compiled.values[first.name]
    assert out.dtype == np.uint64 and out.shape == (2, 8, 8, 2)   # 70 channels -> 2 words
    assert not [v for v in compiled.values.values()
                if v.dtype == np.float32 and v.shape == (2, 8, 8, 70)]
    x = rng.standard_normal((2, 8, 8, 5)).astype(np.float32)
    np.testing.assert_allclose(Model(graph).run(x), ref.run(graph, x), rtol=1e-4, atol=1e-4)
