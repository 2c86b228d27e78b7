"""The pretrained models shipped in edgebnn/models/: they load by short
name, carry their labels and preprocessing, and reach on the full test set
exactly the accuracy the docs state (docs/RESULTS.md, README) -- the same
number TensorFlow gives for the checkpoint they were exported from."""
import os

import numpy as np
import pytest

import edgebnn
from edgebnn import datasets
from edgebnn.cli import main
from edgebnn.pretrained import SHIPPED, resolve, shipped_path

# name -> (dataset, labels[0], correct images of the 10,000 test images)
STATED = {"lenet": ("mnist", "0", 9901), "resnet": ("cifar10", "airplane", 7704)}


def shipped(name):
    path = shipped_path(name)
    if not os.path.isfile(path):
        pytest.skip(f"{SHIPPED[name]} is not in this installation")
    return path


def test_short_names_resolve_only_when_no_such_file(tmp_path, monkeypatch):
    assert resolve("lenet") == shipped_path("lenet")
    assert resolve("some/model.ebnn") == "some/model.ebnn"
    monkeypatch.chdir(tmp_path)
    (tmp_path / "lenet").write_bytes(b"")       # a user's own file wins
    assert resolve("lenet") == "lenet"


def test_load_takes_a_shipped_name_like_the_cli(tmp_path, monkeypatch):
    path = shipped("lenet")
    by_name, by_path = edgebnn.load("lenet"), edgebnn.load(path)
    x = np.random.default_rng(0).integers(0, 256, (3, 28, 28, 1), dtype=np.uint8)
    assert np.array_equal(by_name.predict(x), by_path.predict(x))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "lenet").write_bytes(b"not a model")    # a user's own file wins
    with pytest.raises(edgebnn.ModelError):
        edgebnn.load("lenet")


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_model_metadata(name, capsys):
    model = edgebnn.load(shipped(name))
    dataset, first_label, _ = STATED[name]
    assert len(model.labels) == 10 and model.labels[0] == first_label
    assert model.input_spec.shape == ([28, 28, 1] if dataset == "mnist" else [32, 32, 3])
    assert model.input_spec.preprocess is not None
    assert main(["info", name]) == 0
    out = capsys.readouterr().out
    compression = float(out.rsplit("compression ", 1)[1].split("x")[0])
    assert compression > 10, out


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_model_accuracy_is_the_stated_one(name):
    path = shipped(name)
    dataset, _, correct = STATED[name]
    if correct is None:
        pytest.fail(f"{name} is shipped but its accuracy is not stated in this test")
    try:
        x, y = (datasets.load_mnist if dataset == "mnist" else datasets.load_cifar10)()
    except datasets.DatasetError as e:
        pytest.skip(f"no {dataset} here: {e}")
    model = edgebnn.load(path)
    got = sum(int(np.sum(model.predict(x[i:i + 500]) == y[i:i + 500]))
              for i in range(0, len(x), 500))
    assert len(x) == 10000 and got == correct
