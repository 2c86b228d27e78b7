"""Training data: both splits of MNIST, CIFAR-10 or an image folder
(<root>/{train,test}/<class>/*), read with the runtime's readers
(edgebnn.datasets, the one place that parses dataset files) and returned
as uint8 images [n, h, w, c], int32 labels and the class names.

Every training run would decode the 60,000 CIFAR-10 JPEGs again (10 s
here), so the decoded arrays are cached as .npy outside the repository
(EDGEBNN_CACHE, default ~/.cache/edgebnn), keyed by the archive's content:
a re-copied dataset with a new mtime reuses the cache instead of adding
another 184 MB.
"""
import hashlib
import os
import tempfile
from pathlib import Path

import numpy as np

from edgebnn import datasets as readers

CIFAR10_CLASSES = readers.CIFAR10_CLASSES
MNIST_CLASSES = tuple(str(d) for d in range(10))


def default_data_dir():
    """EDGEBNN_DATA, else ../shared/datasets from the cwd or the repo root;
    None if there is none."""
    try:
        return Path(readers.data_root())
    except readers.DatasetError:
        return None


def cache_dir():
    path = Path(os.environ.get("EDGEBNN_CACHE",
                               Path.home() / ".cache" / "edgebnn"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def _file_digest(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


def _save_atomic(path, array):
    """Writes through a temporary file unique to this process, then renames:
    a crash never leaves half a cache, and two trainings filling the same
    cache at once do not trip over each other's temporary file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.stem,
                               suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.save(f, array)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _labels(y):
    return np.asarray(y, np.int32)


def _both_splits(read, root):
    (xa, ya), (xb, yb) = read(root, "train"), read(root, "test")
    return (xa, _labels(ya)), (xb, _labels(yb))


def load_mnist(root):
    return (*_both_splits(readers.load_mnist, root), MNIST_CLASSES)


def load_cifar10(root):
    """CIFAR-10 in any form edgebnn.datasets reads; when that is the JPEG
    tarball (slow to decode), through the cache."""
    form, tar = readers.cifar10_source(root)
    if form != "jpeg-tar":
        return (*_both_splits(readers.load_cifar10, root), CIFAR10_CLASSES)
    tag = f"cifar10-jpeg-sha256-{_file_digest(tar)}"
    names = [cache_dir() / f"{tag}-{part}.npy"
             for part in ("xtrain", "ytrain", "xtest", "ytest")]
    if all(n.exists() for n in names):
        arrays = [np.load(n) for n in names]
    else:
        (xa, ya), (xb, yb) = _both_splits(readers.load_cifar10, root)
        arrays = [xa, ya, xb, yb]
        for name, arr in zip(names, arrays):
            _save_atomic(name, arr)
    return (arrays[0], arrays[1]), (arrays[2], arrays[3]), CIFAR10_CLASSES


def load_folder(root, image_size=None):
    """<root>/{train,test}/<class>/*, classes sorted by name; image_size
    (h, w) resizes (needed when the images differ in size)."""
    root = Path(root)
    if not (root / "train").is_dir():
        raise readers.DatasetError(f"{root}: no train/ folder")
    classes = tuple(sorted(p.name for p in (root / "train").iterdir()
                           if p.is_dir()))
    if not classes:
        raise readers.DatasetError(f"{root}/train has no class folders")
    splits = []
    for split in ("train", "test"):
        x, y = readers.read_image_folder(root / split, classes,
                                         size=image_size)
        splits.append((x, _labels(y)))
    return splits[0], splits[1], classes


def load(dataset, root, image_size=None):
    if root is None:
        raise ValueError("no data directory: pass --data or set EDGEBNN_DATA")
    if dataset == "mnist":
        return load_mnist(root)
    if dataset == "cifar10":
        return load_cifar10(root)
    if dataset == "folder":
        return load_folder(root, image_size)
    raise ValueError(f"unknown dataset {dataset!r}")
