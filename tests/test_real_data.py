"""End to end on the real MNIST test set (skipped without ../shared):
nearest-centroid classifiers computed from the training set, in float and
in the binary scheme, written as .ebnn files and evaluated by the CLI. The
floors are far above chance (10%) and a little below the measured values
(float 0.820, binary 0.712), so a broken preprocessing, packing, flatten
order or folding step fails them."""
import os

import numpy as np
import pytest

from edgebnn import GraphBuilder, save
from edgebnn.bits import pack_signs
from edgebnn.cli import main
from edgebnn.datasets import load_mnist

SHARED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared",
                      "datasets")
pytestmark = pytest.mark.skipif(not os.path.isdir(os.path.join(SHARED, "mnist")),
                                reason="shared MNIST not present (../shared/datasets/mnist)")


def _centroids():
    x, y = load_mnist(SHARED, "train")
    x = x.reshape(len(x), -1) / 255.0
    return np.stack([x[y == k].mean(axis=0) for k in range(10)])


def _model(tmp_path, scheme):
    mu = _centroids()
    mean = 0.0 if scheme == "float" else 0.5
    pre = {"size": [28, 28], "channels": 1, "scale": 1 / 255, "mean": [mean], "std": [1.0],
           "invert": False}
    b = GraphBuilder([28, 28, 1], preprocess=pre, name=f"centroid-{scheme}")
    b.add("flatten")
    if scheme == "float":      # nearest centroid as a linear layer
        params = {"weight": mu.astype(np.float32),
                  "bias": (-0.5 * (mu ** 2).sum(axis=1)).astype(np.float32)}
    else:                      # sign(pixel - 0.5) against sign(centroid - 0.5)
        params = {"weight": pack_signs(mu - 0.5), "bias": np.zeros(10, np.float32)}
    b.add("dense", dict(units=10, scheme=scheme, alpha="none", input_scaling="none",
                        use_bias=True), params)
    b.add("softmax")
    path = tmp_path / f"{scheme}.ebnn"
    save(path, b.build(labels=[str(i) for i in range(10)]))
    return str(path)


@pytest.mark.parametrize("scheme,floor", [("float", 0.80), ("binary", 0.65)])
def test_mnist_centroids_end_to_end(tmp_path, capsys, scheme, floor):
    path = _model(tmp_path, scheme)
    assert main(["eval", path, "--data", "mnist", "--data-dir", SHARED, "--quiet"]) == 0
    out = capsys.readouterr().out
    acc = float(out.split()[1])
    assert floor <= acc < 1.0, out


@pytest.mark.skipif(not os.path.isfile(os.path.join(SHARED, "cifar10-jpeg.tar.gz")),
                    reason="shared CIFAR-10 tarball not present")
def test_shared_cifar10_tar_reads():
    from edgebnn.datasets import load_cifar10
    x, y = load_cifar10(SHARED, "test", limit=200)
    assert x.shape == (200, 32, 32, 3) and x.dtype == np.uint8
    assert set(y.tolist()) == set(range(10))        # a limited read spans every class
    assert 20 < x.mean() < 235                      # real pictures, not blank
