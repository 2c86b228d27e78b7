"""Training data (edgebnn_export.data): both splits through the runtime's
readers, and the decoded-CIFAR cache, on small files the tests write."""
import os
import tarfile

import numpy as np
import pytest
from PIL import Image

from edgebnn import datasets as readers
from edgebnn_export import data


def write_cifar_tar(root, per_class=2, seed=0):
    """A cifar10-jpeg.tar.gz with every class, lossless PNGs so the test
    knows each pixel. Returns {split: (images, labels)} in reader order."""
    rng = np.random.default_rng(seed)
    want = {}
    root.mkdir(parents=True, exist_ok=True)
    src = root / "src"
    for split in ("train", "test"):
        xs, ys = [], []
        for label, cls in enumerate(data.CIFAR10_CLASSES):
            (src / split / cls).mkdir(parents=True)
            for i in range(per_class):
                img = rng.integers(0, 256, (4, 5, 3), dtype=np.uint8)
                Image.fromarray(img).save(src / split / cls / f"{i}.png")
                xs.append(img)
                ys.append(label)
        want[split] = (np.stack(xs), np.asarray(ys, np.int32))
    with tarfile.open(root / "cifar10-jpeg.tar.gz", "w:gz") as tar:
        tar.add(src / "train", arcname="train")
        tar.add(src / "test", arcname="test")
    return want


def test_cifar10_cache_is_exact_and_keyed_by_content(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("EDGEBNN_CACHE", str(cache))
    want = write_cifar_tar(tmp_path / "d")
    for attempt in range(2):          # decode + fill the cache, then read it
        (xa, ya), (xb, yb), classes = data.load_cifar10(tmp_path / "d")
        assert classes == data.CIFAR10_CLASSES
        np.testing.assert_array_equal(xa, want["train"][0])
        np.testing.assert_array_equal(ya, want["train"][1])
        np.testing.assert_array_equal(xb, want["test"][0])
        np.testing.assert_array_equal(yb, want["test"][1])
        assert ya.dtype == np.int32
    entries = sorted(os.listdir(cache))
    assert len(entries) == 4 and not any(e.endswith(".tmp") for e in entries)
    # a re-copied dataset (new mtime, same bytes) reuses the cache
    tar = tmp_path / "d" / "cifar10-jpeg.tar.gz"
    os.utime(tar, (1, 1))
    data.load_cifar10(tmp_path / "d")
    assert sorted(os.listdir(cache)) == entries
    # different bytes: a new entry, never the stale arrays
    other = write_cifar_tar(tmp_path / "e", seed=1)
    (xa, _), _, _ = data.load_cifar10(tmp_path / "e")
    np.testing.assert_array_equal(xa, other["train"][0])
    assert len(os.listdir(cache)) == 8


def test_cache_write_leaves_nothing_half_written(tmp_path, monkeypatch):
    target = tmp_path / "a.npy"
    target.write_bytes(b"previous")
    monkeypatch.setattr(np, "save", lambda f, arr: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError, match="disk full"):
        data._save_atomic(target, np.zeros(3))
    assert os.listdir(tmp_path) == ["a.npy"]
    assert target.read_bytes() == b"previous"


def test_mnist_both_splits(tmp_path):
    import gzip
    import struct
    rng = np.random.default_rng(0)
    want = {}
    for stem, n in (("train", 5), ("t10k", 3)):
        x = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        y = rng.integers(0, 10, n, dtype=np.uint8)
        with gzip.open(tmp_path / f"{stem}-images-idx3-ubyte.gz", "wb") as f:
            f.write(struct.pack(">IIII", 2051, n, 28, 28) + x.tobytes())
        with gzip.open(tmp_path / f"{stem}-labels-idx1-ubyte.gz", "wb") as f:
            f.write(struct.pack(">II", 2049, n) + y.tobytes())
        want[stem] = (x[..., None], y.astype(np.int32))
    (xa, ya), (xb, yb), classes = data.load("mnist", tmp_path)
    np.testing.assert_array_equal(xa, want["train"][0])
    np.testing.assert_array_equal(ya, want["train"][1])
    np.testing.assert_array_equal(xb, want["t10k"][0])
    np.testing.assert_array_equal(yb, want["t10k"][1])
    assert ya.dtype == np.int32 and len(classes) == 10


def test_folder_needs_the_same_classes_in_test(tmp_path):
    for split, classes in (("train", ("a", "b")), ("test", ("a",))):
        for c in classes:
            (tmp_path / split / c).mkdir(parents=True)
            Image.new("RGB", (3, 2)).save(tmp_path / split / c / "0.png")
    with pytest.raises(readers.DatasetError, match="no folder for class 'b'"):
        data.load("folder", tmp_path)
    with pytest.raises(readers.DatasetError, match="no train/ folder"):
        data.load("folder", tmp_path / "test")
    with pytest.raises(ValueError, match="unknown dataset"):
        data.load("imagenet", tmp_path)
