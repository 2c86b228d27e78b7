"""python -m edgebnn_export.compare: Keras and the exported file on the same
test images, on the shipped LeNet and the checkpoint it was exported from."""
import gzip
import os
import struct

import numpy as np
import pytest

pytest.importorskip("tensorflow")

import edgebnn  # noqa: E402
from edgebnn import datasets  # noqa: E402
from edgebnn.pretrained import shipped_path  # noqa: E402
from edgebnn_export import compare  # noqa: E402

pytestmark = pytest.mark.tf
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHECKPOINT = os.path.join(ROOT, "checkpoints", "lenet_binary")


def write_mnist_test(folder, images, labels):
    folder.mkdir()
    n = len(images)
    with gzip.open(folder / "t10k-images-idx3-ubyte.gz", "wb") as f:
        f.write(struct.pack(">IIII", 2051, n, 28, 28) + images[..., 0].tobytes())
    with gzip.open(folder / "t10k-labels-idx1-ubyte.gz", "wb") as f:
        f.write(struct.pack(">II", 2049, n) + labels.astype(np.uint8).tobytes())


@pytest.fixture(scope="module")
def mnist_300(tmp_path_factory):
    try:
        x, y = datasets.load_mnist(None, "test")
    except datasets.DatasetError as e:
        pytest.skip(f"no MNIST: {e}")
    folder = tmp_path_factory.mktemp("m") / "mnist"
    write_mnist_test(folder, x[:300], y[:300])
    return folder.parent, x[:300], y[:300]


def test_shipped_lenet_equals_its_checkpoint(mnist_300):
    if not os.path.isdir(CHECKPOINT):
        pytest.skip("checkpoints/ not in this tree")
    root, x, y = mnist_300
    lines = []
    kc, fc, differ = compare.compare(CHECKPOINT, shipped_path("lenet"), "mnist",
                                     str(root), log=lines.append)
    want = int(np.sum(edgebnn.load("lenet").predict(x) == y))
    assert fc == want and kc == want and len(differ) == 0
    assert f"Keras {kc} correct" in lines[0] and "top-1 differs on 0" in lines[0]


def test_errors_exit_with_a_message(mnist_300, tmp_path, capsys):
    if not os.path.isdir(CHECKPOINT):
        pytest.skip("checkpoints/ not in this tree")
    root = mnist_300[0]
    (tmp_path / "empty").mkdir()
    (tmp_path / "junk.ebnn").write_bytes(b"\xff" * 40)
    for argv, needle in (
            ([CHECKPOINT, shipped_path("lenet"), "--dataset", "mnist",
              "--data", str(tmp_path / "empty")], "t10k-images"),
            ([CHECKPOINT, str(tmp_path / "junk.ebnn"), "--dataset", "mnist",
              "--data", str(root)], "junk.ebnn"),
            ([str(tmp_path / "empty"), shipped_path("lenet"), "--dataset", "mnist",
              "--data", str(root)], "run directory")):
        with pytest.raises(SystemExit) as e:
            compare.main(argv)
        assert e.value.code == 2
        assert needle in capsys.readouterr().err
