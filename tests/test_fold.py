"""Folding is exact: integer thresholds reproduce the float semantics at
every possible dot, and folded graphs (after a file round trip) compute what
the unfolded reference computes."""
import zlib

import numpy as np
import pytest

import model_zoo
import reference_executor as ref
from edgebnn import load_graph, save
from edgebnn.fold import fold, integer_thresholds
from numpy_oracle import NumpyExecutor


def _z_reference(dot, alpha, bias, bn):
    """The format's float semantics, written independently of fold.py."""
    y = dot * alpha
    if bias is not None:
        y = y + bias
    if bn is not None:
        y = bn["gamma"] * (y - bn["mean"]) / np.sqrt(bn["var"] + bn["eps"]) + bn["beta"]
    return y


@pytest.mark.parametrize("fan_in", [1, 3, 9, 64, 65, 9 * 63, 200 * 9])
@pytest.mark.parametrize("seed", range(3))
def test_thresholds_exhaustive(fan_in, seed):
    def f32(a):                     # parameters live in the file as float32
        return a.astype(np.float32).astype(np.float64)

    rng = np.random.default_rng(seed * 1000 + fan_in)
    n = 40
    alpha = f32(rng.uniform(0.01, 1.0, n) * rng.choice([-1, 1], n))
    bias = f32(rng.normal(0, 2, n)) if seed % 2 else None
    gamma = rng.uniform(0.1, 3, n) * rng.choice([-1, 1], n)
    gamma[:4] = 0.0                                  # constant channels
    mean = rng.normal(0, np.sqrt(fan_in), n) * np.abs(alpha)
    mean[4:6] = 10.0 * fan_in                        # threshold outside the range
    mean[6:8] = -10.0 * fan_in
    bn = {"gamma": f32(gamma), "beta": f32(rng.normal(0, 1, n)), "mean": f32(mean),
          "var": f32(rng.uniform(0, 4, n)), "eps": 1e-3}
    if seed == 2:
        # thresholds exactly on an integer dot: z == 0 there, sign gives +1
        bn["beta"][:] = 0.0
        bn["mean"][8:] = f32(rng.integers(-fan_in, fan_in + 1, n - 8) * alpha[8:])
    for use_bn in (bn, None):
        thr, flip = integer_thresholds(fan_in, alpha, bias, use_bn)
        dots = np.arange(-fan_in, fan_in + 1)[:, None]
        want = _z_reference(dots.astype(np.float64), alpha, bias, use_bn) < 0
        got = np.where(flip.astype(bool), dots > thr, dots < thr)
        assert thr.dtype == np.int32 and flip.dtype == np.uint8
        np.testing.assert_array_equal(got, want)


NETS = [(net, scheme) for net in ("lenet", "resnet", "alexnet") for scheme in model_zoo.SCHEMES]


@pytest.mark.parametrize("net,scheme", NETS)
def test_folded_matches_unfolded_reference(net, scheme, tmp_path):
    rng = np.random.default_rng(zlib.crc32(f"{net}/{scheme}".encode()))
    graph = getattr(model_zoo, net)(rng, scheme)
    path = tmp_path / "m.ebnn"
    save(path, graph)
    loaded = load_graph(path)
    folded = fold(loaded)
    assert not any(op.type in ("conv2d", "dense") for op in folded.ops)
    if scheme == "binary" and net != "resnet":
        assert any("thresholds" in op.params for op in folded.ops), "no integer-threshold op"
    x = rng.standard_normal([3] + graph.input.shape).astype(np.float32)
    want = ref.run(loaded, x)
    got = NumpyExecutor(folded).run(x)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)

    # a folded graph is a file too, and folding it again changes nothing
    save(tmp_path / "f.ebnn", folded)
    again = load_graph(tmp_path / "f.ebnn")
    assert fold(again).to_doc() == again.to_doc()
    np.testing.assert_array_equal(NumpyExecutor(again).run(x), got)


def test_bits_through_maxpool_and_k_scaling():
    """sign -> maxpool -> K-scaled binary conv: K of +-1 values is the
    window coverage, whether the values arrive packed or not."""
    rng = np.random.default_rng(7)
    net = model_zoo.Net(rng, [9, 9, 5])
    net.conv(7, 3, "binary")
    net.bn(spread=3.0)
    net.op("sign")
    net.pool("maxpool", 2, 2, "same")
    net.conv(6, 3, "binary_k", padding="same_zero")
    net.bn(spread=3.0)
    net.op("global_avgpool")
    graph = net.build(labels=False)
    folded = fold(graph)
    kinds = [(op.type, op.kind) for op in folded.ops]
    assert kinds[:2] == [("fused_conv2d", "bits"), ("maxpool", "bits")]
    x = rng.standard_normal((3, 9, 9, 5)).astype(np.float32)
    np.testing.assert_allclose(NumpyExecutor(folded).run(x), ref.run(graph, x),
                               rtol=1e-4, atol=1e-5)


def test_k_scaled_consumer_keeps_float_input():
    """Without an explicit sign a K-scaled consumer needs |x|: no bits."""
    rng = np.random.default_rng(8)
    net = model_zoo.Net(rng, [6, 6, 4])
    net.conv(5, 3, "binary")
    net.bn(spread=3.0)
    net.conv(5, 3, "binary_k")
    net.op("global_avgpool")
    graph = net.build(labels=False)
    folded = fold(graph)
    assert folded.ops[0].kind == "float"
    x = rng.standard_normal((3, 6, 6, 4)).astype(np.float32)
    np.testing.assert_allclose(NumpyExecutor(folded).run(x), ref.run(graph, x),
                               rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("explicit_sign,padding,k_scaled,pooled_bits", [
    (False, "same_zero", False, 2), (True, "valid", True, 2), (False, "same_one", False, 1),
    (True, "same_one", True, 1)])
def test_conv_maxpool_batchnorm_folds_to_bits(explicit_sign, padding, k_scaled, pooled_bits):
    """conv -> maxpool -> BN [-> sign] -> binary conv becomes a bits conv and a
    bits maxpool; channels with gamma < 0 travel inverted and the consumer's
    weights are inverted to match, which +1 padding cannot absorb, so such a
    consumer keeps the float path."""
    rng = np.random.default_rng(21)
    graph = model_zoo.larq_style(rng, explicit_sign, padding, k_scaled)
    assert any(op.params["gamma"].min() < 0 for op in graph.ops if op.type == "batchnorm")
    folded = fold(graph)
    bits_pools = [op for op in folded.ops if op.type == "maxpool" and op.kind == "bits"]
    assert len(bits_pools) == pooled_bits
    x = rng.standard_normal((3, 13, 13, 3)).astype(np.float32)
    np.testing.assert_allclose(NumpyExecutor(folded).run(x), ref.run(graph, x),
                               rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("channels,dense_scheme", [(5, "binary"), (65, "binary_k"), (64, "binary")])
def test_maxpool_batchnorm_flatten_moves_into_the_conv(channels, dense_scheme):
    """conv -> maxpool -> BN -> flatten -> binary dense: no batchnorm step is
    left; gamma < 0 channels travel negated with the dense weights inverted
    on their features (NHWC order), for sign and K-scaled denses alike."""
    rng = np.random.default_rng(channels)
    net = model_zoo.Net(rng, [7, 7, 3])
    net.conv(channels, 3, "binary", padding="same_one")
    net.pool("maxpool", 2, 2, "same")
    net.bn(spread=4.0)
    net.op("flatten")
    net.dense(9, dense_scheme)
    graph = net.build(labels=False)
    assert any(op.params["gamma"].min() < 0 for op in graph.ops if op.type == "batchnorm")
    folded = fold(graph)
    assert [op.type for op in folded.ops] == ["fused_conv2d", "maxpool", "flatten",
                                              "fused_dense"]
    x = rng.standard_normal((3, 7, 7, 3)).astype(np.float32)
    np.testing.assert_allclose(NumpyExecutor(folded).run(x), ref.run(graph, x),
                               rtol=1e-4, atol=1e-4)


def test_origin_names_every_source_op_once():
    graph = model_zoo.alexnet(np.random.default_rng(2), "binary")
    folded = fold(graph)
    covered = [name for op in folded.ops for name in folded.origin[op.name]]
    assert sorted(covered) == sorted(op.name for op in graph.ops)
    first = folded.ops[0]
    assert folded.origin[first.name][0] == graph.ops[0].name   # conv first, then bn/act


@pytest.mark.parametrize("channels,size,stride,padding,scheme", model_zoo.AWKWARD)
def test_awkward_shapes(channels, size, stride, padding, scheme):
    graph, x = model_zoo.awkward_case("", channels, size, stride, padding, scheme)
    np.testing.assert_allclose(NumpyExecutor(fold(graph)).run(x), ref.run(graph, x),
                               rtol=1e-4, atol=1e-4)


def test_float16_parameters(tmp_path):
    """Float parameters may be stored as F16: the file is smaller and every
    executor (and folding) reads the same numbers."""
    rng = np.random.default_rng(4)
    net = model_zoo.Net(rng, [6, 6, 3])
    b = net.b
    b.add("conv2d", dict(filters=5, kernel=[3, 3], strides=[1, 1], padding="same_zero",
                         scheme="float", alpha="none", input_scaling="none", use_bias=True),
          dict(weight=rng.standard_normal((5, 3, 3, 3)).astype(np.float16),
               bias=rng.standard_normal(5).astype(np.float16)))
    b.add("batchnorm", {"eps": 1e-3}, {k: v.astype(np.float16) for k, v in {
        "gamma": rng.uniform(-2, 2, 5), "beta": rng.normal(0, 1, 5),
        "mean": rng.normal(0, 1, 5), "var": rng.uniform(0.5, 2, 5)}.items()})
    b.add("conv2d", dict(filters=4, kernel=[3, 3], strides=[2, 2], padding="same_one",
                         scheme="binary", alpha="per_filter", input_scaling="none",
                         use_bias=False),
          dict(weight=model_zoo.pack_signs(rng.standard_normal((4, 3, 3, 5))),
               alpha=rng.uniform(0.1, 0.3, 4).astype(np.float16)))
    b.add("global_avgpool")
    graph = b.build()
    save(tmp_path / "h.ebnn", graph)
    loaded = load_graph(tmp_path / "h.ebnn")
    assert loaded.ops[0].params["weight"].dtype == np.float16
    x = rng.standard_normal((3, 6, 6, 3)).astype(np.float32)
    np.testing.assert_allclose(NumpyExecutor(fold(loaded)).run(x), ref.run(loaded, x),
                               rtol=1e-4, atol=1e-4)
