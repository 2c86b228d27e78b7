"""The engine executor computes what the numpy fallback and the unfolded
reference compute, for every zoo net and scheme, every ISA the machine has
and 1..4 threads. Skipped (with the reason) where the engine is not built."""
import zlib

import numpy as np
import pytest

import model_zoo
import reference_executor as ref
from edgebnn.engine_backend import EngineExecutor, load_engine
from edgebnn.fold import fold
from edgebnn.numpy_backend import NumpyExecutor

ENGINE = load_engine()
pytestmark = pytest.mark.skipif(ENGINE is None, reason="edgebnn._engine is not built "
                                "(python setup.py build_ext --inplace)")

NETS = [(net, scheme) for net in ("lenet", "resnet", "alexnet") for scheme in model_zoo.SCHEMES]


def _graph(net, scheme):
    rng = np.random.default_rng(zlib.crc32(f"engine/{net}/{scheme}".encode()))
    if net == "larq":
        graph = model_zoo.larq_style(rng, explicit_sign=scheme == "sign",
                                     padding="valid" if scheme == "sign" else "same_zero")
    else:
        graph = getattr(model_zoo, net)(rng, scheme)
    x = rng.standard_normal([3] + graph.input.shape).astype(np.float32)
    return graph, x


@pytest.mark.parametrize("net,scheme", NETS + [("larq", "sign"), ("larq", "nosign")])
def test_engine_matches_fallback_and_reference(net, scheme):
    graph, x = _graph(net, scheme)
    folded = fold(graph)
    eng = EngineExecutor(folded, ENGINE)
    got = eng.run(x)
    np.testing.assert_allclose(got, NumpyExecutor(folded).run(x), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(got, ref.run(graph, x), rtol=1e-4, atol=1e-4)
    for threads in (2, 3, 4):
        np.testing.assert_array_equal(eng.run(x, threads=threads), got)


@pytest.mark.parametrize("isa", ["ref", "generic", "avx2", "avx512", "neon"])
def test_every_isa(isa):
    if isa not in ENGINE.isa_available():
        pytest.skip(f"ISA {isa} not available on this machine/build")
    before = ENGINE.get_isa()
    try:
        ENGINE.set_isa(isa)
        for net, scheme in (("alexnet", "binary"), ("larq", "nosign"), ("resnet", "binary_k")):
            graph, x = _graph(net, scheme)
            got = EngineExecutor(fold(graph), ENGINE).run(x)
            np.testing.assert_allclose(got, ref.run(graph, x), rtol=1e-4, atol=1e-4)
    finally:
        ENGINE.set_isa(before)


@pytest.mark.parametrize("channels,size,stride,padding,scheme", model_zoo.AWKWARD)
def test_engine_awkward_shapes(channels, size, stride, padding, scheme):
    rng = np.random.default_rng(zlib.crc32(f"e{channels}{size}{stride}{padding}{scheme}".encode()))
    head = ("sign", "relu", "none")[channels % 3]
    graph = model_zoo.awkward_chain(rng, channels, size, stride, padding, scheme, head)
    x = rng.standard_normal([3] + graph.input.shape).astype(np.float32)
    folded = fold(graph)
    got = EngineExecutor(folded, ENGINE).run(x, threads=2)
    np.testing.assert_allclose(got, NumpyExecutor(folded).run(x), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(got, ref.run(graph, x), rtol=1e-4, atol=1e-4)
