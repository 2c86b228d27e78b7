"""Dataset readers, on small files the tests write in each official format."""
import gzip
import os
import pathlib
import pickle
import struct
import tarfile

import numpy as np
import pytest
from PIL import Image

from edgebnn import datasets as ds


def write_idx(path, arr, magic=None, gz=False, extra=b""):
    head = struct.pack(">I", magic if magic is not None else 0x0800 | arr.ndim)
    head += struct.pack(f">{arr.ndim}I", *arr.shape)
    raw = head + arr.astype(np.uint8).tobytes() + extra
    (gzip.open if gz else open)(path, "wb").write(raw)


@pytest.fixture
def mnist_dir(tmp_path):
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, (7, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, 7).astype(np.uint8)
    d = tmp_path / "mnist"
    d.mkdir()
    write_idx(d / "t10k-images-idx3-ubyte.gz", imgs, gz=True)
    write_idx(d / "t10k-labels-idx1-ubyte", labels)
    return tmp_path, imgs, labels


def test_mnist_gzip_and_raw(mnist_dir):
    root, imgs, labels = mnist_dir
    x, y = ds.load_mnist(str(root), "test")
    assert x.shape == (7, 28, 28, 1) and x.dtype == np.uint8
    np.testing.assert_array_equal(x[..., 0], imgs)
    np.testing.assert_array_equal(y, labels)


@pytest.mark.parametrize("problem,needle", [
    ("magic", "magic"), ("truncated", "header says"), ("extra", "more"),
    ("dtype", "unsigned-byte"), ("count", "images vs"), ("label", "out of range"),
    ("bomb", "claim more data")])
def test_mnist_rejects_bad_files(mnist_dir, problem, needle):
    root, imgs, labels = mnist_dir
    d = root / "mnist"
    if problem == "magic":
        write_idx(d / "t10k-images-idx3-ubyte.gz", imgs, magic=2049, gz=True)
    elif problem == "truncated":
        raw = gzip.open(d / "t10k-images-idx3-ubyte.gz").read()[:-5]
        gzip.open(d / "t10k-images-idx3-ubyte.gz", "wb").write(raw)
    elif problem == "extra":
        write_idx(d / "t10k-labels-idx1-ubyte", labels, extra=b"\0")
    elif problem == "dtype":
        raw = bytearray(open(d / "t10k-labels-idx1-ubyte", "rb").read())
        raw[2] = 0x0D                                # float data
        open(d / "t10k-labels-idx1-ubyte", "wb").write(bytes(raw))
    elif problem == "bomb":       # tiny gzip whose header claims 4 GiB of pixels
        raw = struct.pack(">IIII", 2051, 1 << 16, 256, 256)
        gzip.open(d / "t10k-images-idx3-ubyte.gz", "wb").write(raw)
    elif problem == "count":
        write_idx(d / "t10k-labels-idx1-ubyte", labels[:5])
    else:
        bad = labels.copy()
        bad[0] = 10
        write_idx(d / "t10k-labels-idx1-ubyte", bad)
    with pytest.raises(ds.DatasetError, match=needle):
        ds.load_mnist(str(root), "test")


def _cifar_batch(n, seed):
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
    labels = [int(v) for v in rng.integers(0, 10, n)]
    return data, labels


def _expected_images(data):
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)


def write_cifar_pickle(path, data, labels, legacy_name=False):
    obj = {b"batch_label": b"testing batch 1 of 1", b"labels": labels, b"data": data,
           b"filenames": [f"img_{i}.png".encode() for i in range(len(labels))]}
    raw = pickle.dumps(obj, protocol=3)
    if legacy_name:       # the name Python-2-era numpy wrote into the official files
        raw = raw.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    pathlib.Path(path).write_bytes(raw)


@pytest.mark.parametrize("legacy", [False, True])
def test_cifar_python_format(tmp_path, legacy):
    d = tmp_path / "cifar-10-batches-py"
    d.mkdir()
    data, labels = _cifar_batch(5, 1)
    write_cifar_pickle(d / "test_batch", data, labels, legacy)
    x, y = ds.load_cifar10(str(tmp_path), "test")
    assert x.shape == (5, 32, 32, 3)
    np.testing.assert_array_equal(x, _expected_images(data))
    np.testing.assert_array_equal(y, labels)


class _Evil:
    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path(self.target),))


def test_cifar_pickle_refuses_other_globals(tmp_path):
    sentinel = tmp_path / "pwned"
    data, labels = _cifar_batch(2, 2)
    path = tmp_path / "test_batch"
    path.write_bytes(pickle.dumps({b"data": data, b"labels": labels,
                                   b"batch_label": _Evil(sentinel)}, protocol=3))
    with pytest.raises(ds.DatasetError, match="refused"):
        ds.read_cifar_pickle(path)
    assert not sentinel.exists()


def _official(**changes):
    obj = {b"batch_label": b"testing batch 1 of 1", b"labels": [0, 1],
           b"data": np.zeros((2, 3072), np.uint8), b"filenames": [b"a.png", b"b.png"]}
    for key, value in changes.items():
        if value is None:
            del obj[key.encode()]
        else:
            obj[key.encode()] = value
    return obj


@pytest.mark.parametrize("obj,needle", [
    ([1, 2], "not a dict"),
    (_official(filenames=None), "keys"),
    (dict(_official(), extra=1), "keys"),
    (_official(data=np.zeros((2, 3071), np.uint8)), "uint8 array"),
    (_official(data=np.zeros((2, 3072), np.int16)), "uint8 array"),
    (_official(labels=[0, 10]), "labels"),
    (_official(labels=[0]), "labels"),
    (_official(labels=[0, True]), "labels"),
    (_official(filenames=[b"a.png"]), "filenames"),
    (_official(batch_label=7), "batch_label"),
])
def test_cifar_pickle_layout_checked(tmp_path, obj, needle):
    path = tmp_path / "b"
    path.write_bytes(pickle.dumps(obj, protocol=3))
    with pytest.raises(ds.DatasetError, match=needle):
        ds.read_cifar_pickle(path)
    path.write_bytes(pickle.dumps(obj, protocol=3)[:-7])
    with pytest.raises(ds.DatasetError):
        ds.read_cifar_pickle(path)


def test_cifar_binary_format(tmp_path):
    d = tmp_path / "cifar-10-batches-bin"
    d.mkdir()
    data, labels = _cifar_batch(4, 3)
    rec = np.concatenate([np.asarray(labels, np.uint8)[:, None], data], axis=1)
    (d / "test_batch.bin").write_bytes(rec.tobytes())
    x, y = ds.load_cifar10(str(tmp_path), "test")
    np.testing.assert_array_equal(x, _expected_images(data))
    np.testing.assert_array_equal(y, labels)
    (d / "test_batch.bin").write_bytes(rec.tobytes()[:-1])
    with pytest.raises(ds.DatasetError, match="3073-byte records"):
        ds.load_cifar10(str(tmp_path), "test")


def _write_folder(root, classes, per_class, ext):
    rng = np.random.default_rng(4)
    want = []
    for label, cls in enumerate(classes):
        (root / cls).mkdir(parents=True)
        for i in range(per_class):
            if ext == ".png":   # lossless: any pixels
                img = rng.integers(0, 256, (6, 5, 3), dtype=np.uint8)
            else:               # lossy: flat colours survive JPEG nearly exactly
                img = np.broadcast_to(rng.integers(0, 256, 3, dtype=np.uint8), (6, 5, 3))
            Image.fromarray(img).save(root / cls / f"{i:04d}{ext}")
            want.append((img, label))
    return want


def test_image_folder_png_exact(tmp_path):
    want = _write_folder(tmp_path / "imgs", ["cat", "ant"], 2, ".png")
    x, y = ds.read_image_folder(tmp_path / "imgs", classes=["cat", "ant"])
    np.testing.assert_array_equal(x, np.stack([w for w, _ in want]))   # PNG is lossless
    np.testing.assert_array_equal(y, [0, 0, 1, 1])
    x, y = ds.read_image_folder(tmp_path / "imgs")          # sorted: ant, cat
    np.testing.assert_array_equal(y, [0, 0, 1, 1])
    np.testing.assert_array_equal(x[0], want[2][0])
    g, _ = ds.read_image_folder(tmp_path / "imgs", channels=1, size=(3, 4))
    assert g.shape == (4, 3, 4, 1)


def test_image_folder_from_tar_like_shared_cifar(tmp_path):
    src = tmp_path / "src"
    want = _write_folder(src / "test", list(ds.CIFAR10_CLASSES[:3]), 2, ".jpg")
    _write_folder(src / "train", list(ds.CIFAR10_CLASSES[:3]), 1, ".jpg")
    root = tmp_path / "data"
    root.mkdir()
    with tarfile.open(root / "cifar10-jpeg.tar.gz", "w:gz") as tar:
        tar.add(src / "test", arcname="test")
        tar.add(src / "train", arcname="train")
    x, y = ds.read_image_folder(f"{root / 'cifar10-jpeg.tar.gz'}:test",
                                classes=ds.CIFAR10_CLASSES[:3])
    assert x.shape == (6, 6, 5, 3)
    np.testing.assert_array_equal(y, [0, 0, 1, 1, 2, 2])
    # JPEG is lossy: close, not equal
    assert np.abs(x.astype(int) - np.stack([w for w, _ in want]).astype(int)).max() <= 8
    with pytest.raises(ds.DatasetError, match="no images for classes"):
        ds.load_cifar10(str(root), "test")          # only 3 of the 10 classes present


def test_data_root_resolution(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEBNN_DATA", str(tmp_path))
    assert ds.data_root() == str(tmp_path)
    assert ds.data_root(str(tmp_path / "..")) == os.path.abspath(tmp_path / "..")
    monkeypatch.setenv("EDGEBNN_DATA", str(tmp_path / "missing"))
    with pytest.raises(ds.DatasetError, match="EDGEBNN_DATA"):
        ds.data_root()


SHARED = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "datasets")


@pytest.mark.skipif(not os.path.isdir(os.path.join(SHARED, "mnist")),
                    reason="shared MNIST not present (../shared/datasets)")
def test_shared_mnist_reads():
    x, y = ds.load_mnist(SHARED, "test")
    assert x.shape == (10000, 28, 28, 1) and np.bincount(y).min() > 800


def test_cifar10_source_order_of_preference(tmp_path):
    with pytest.raises(ds.DatasetError, match="no CIFAR-10"):
        ds.cifar10_source(str(tmp_path))
    steps = [("cifar10", "folder"), ("cifar10-jpeg.tar.gz", "jpeg-tar"),
             ("cifar-10-batches-bin", "binary"), ("cifar-10-batches-py", "python")]
    for name, form in steps:                     # each new form is preferred
        if name.endswith(".gz"):
            (tmp_path / name).write_bytes(b"")
        else:
            (tmp_path / name).mkdir()
        assert ds.cifar10_source(str(tmp_path)) == (form, str(tmp_path / name))
