"""Fuzzing the loader: every mutated file loads or raises ModelError, within
bounded memory; a short slice by default, a long one with -m slow."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import model_zoo
from edgebnn import save
from edgebnn.fold import fold
from fuzz_cases import HypothesisPick, check_one, mutate

_SEED_FILES = {}


def seed_file(tmp_path_factory, kind):
    if kind not in _SEED_FILES:
        net, scheme, storage = kind
        graph = getattr(model_zoo, net)(np.random.default_rng(5), scheme,
                                        **({"size": 8} if net == "lenet" else {}))
        path = tmp_path_factory.mktemp("fuzz") / "seed.ebnn"
        save(path, fold(graph) if storage else graph, compact=bool(storage),
             float_params=storage or "f32")
        _SEED_FILES[kind] = path.read_bytes()
    return _SEED_FILES[kind]


# (net, scheme, None: version 1 | float params of a compact version-2 file)
KINDS = [("lenet", "binary", None), ("resnet", "binary_k", None),
         ("alexnet", "binary_weights", None), ("lenet", "binary", "f32"),
         ("resnet", "binary_k", "f16"), ("alexnet", "binary", "int8"),
         ("resnet", "binary", "int4"), ("lenet", "float", "int5")]


def _run(tmp_path_factory, data):
    pick = HypothesisPick(data)
    blob = seed_file(tmp_path_factory, pick.choice(KINDS))
    check_one(mutate(blob, pick))


@settings(max_examples=300, deadline=2000, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.data())
def test_fuzz_loader_quick(tmp_path_factory, data):
    _run(tmp_path_factory, data)


@pytest.mark.slow
@settings(max_examples=20000, deadline=5000,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.data())
def test_fuzz_loader_long(tmp_path_factory, data):
    _run(tmp_path_factory, data)


def test_seed_files_are_valid(tmp_path_factory):
    for kind in KINDS:
        assert check_one(seed_file(tmp_path_factory, kind)) == "ok"
