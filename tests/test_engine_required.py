"""Running a model needs the compiled engine: without it Model, load and the
command say so clearly (and how to build it) instead of failing later."""
import numpy as np
import pytest

import edgebnn
import edgebnn.model
import model_zoo
from edgebnn.cli import main


@pytest.fixture
def no_engine(monkeypatch):
    monkeypatch.setattr(edgebnn.engine_backend, "load_engine", lambda: None)


def test_model_without_engine_is_a_clear_import_error(no_engine, tmp_path):
    graph = model_zoo.lenet(np.random.default_rng(0), "binary")
    with pytest.raises(ImportError, match=r"not built .*setup.py build_ext --inplace"):
        edgebnn.model.Model(graph)
    path = tmp_path / "m.ebnn"
    edgebnn.save(path, graph)
    with pytest.raises(ImportError, match="compiled engine"):
        edgebnn.load(path)


def test_cli_without_engine_is_one_line(no_engine, tmp_path, capsys):
    path = tmp_path / "m.ebnn"
    edgebnn.save(path, model_zoo.lenet(np.random.default_rng(0), "binary"))
    assert main(["bench", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("edgebnn: error: ") and "not built" in err and err.count("\n") == 1


def test_unknown_backend_is_rejected():
    graph = model_zoo.lenet(np.random.default_rng(0), "binary")
    with pytest.raises(ValueError, match="backend must be 'auto' or 'engine'"):
        edgebnn.model.Model(graph, backend="numpy")
