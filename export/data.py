"""Dataset loaders for training: MNIST (IDX gz), CIFAR-10 (JPEG image-folder
tarball) and any image folder (train/<class>/*, test/<class>/*).

Every loader returns uint8 images [n, h, w, c] and int32 labels plus the
class names; decoded CIFAR-10 is cached as .npy outside the repository
(EDGEBNN_CACHE, default ~/.cache/edgebnn). Numpy + Pillow only.
"""
import gzip
import io
import os
import struct
import tarfile
from pathlib import Path

import numpy as np

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog",
                   "frog", "horse", "ship", "truck")
MNIST_CLASSES = tuple(str(d) for d in range(10))
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp")


def default_data_dir():
    """EDGEBNN_DATA, else ../shared/datasets from the cwd or the repo root."""
    env = os.environ.get("EDGEBNN_DATA")
    if env:
        return Path(env)
    repo_root = Path(__file__).resolve().parent.parent
    for base in (Path.cwd(), repo_root):
        candidate = (base / ".." / "shared" / "datasets").resolve()
        if candidate.is_dir():
            return candidate
    return None


def cache_dir():
    path = Path(os.environ.get("EDGEBNN_CACHE",
                               Path.home() / ".cache" / "edgebnn"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def read_idx(path):
    """Reads an IDX file (optionally gzipped) into a uint8 array."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: truncated IDX header")
    dims = struct.unpack(">" + "I" * ndim, raw[4:header])
    count = int(np.prod(dims)) if dims else 1
    if len(raw) - header != count:
        raise ValueError(f"{path}: expected {count} data bytes, found "
                         f"{len(raw) - header}")
    return np.frombuffer(raw, np.uint8, offset=header).reshape(dims)


def load_mnist(root):
    """MNIST from <root>/mnist/*-idx?-ubyte.gz (or <root> itself)."""
    root = Path(root)
    folder = root / "mnist" if (root / "mnist").is_dir() else root

    def pick(stem):
        for name in (stem + ".gz", stem):
            if (folder / name).exists():
                return folder / name
        raise FileNotFoundError(f"{stem}(.gz) not found in {folder}")

    x_train = read_idx(pick("train-images-idx3-ubyte"))[..., None]
    y_train = read_idx(pick("train-labels-idx1-ubyte")).astype(np.int32)
    x_test = read_idx(pick("t10k-images-idx3-ubyte"))[..., None]
    y_test = read_idx(pick("t10k-labels-idx1-ubyte")).astype(np.int32)
    if len(x_train) != len(y_train) or len(x_test) != len(y_test):
        raise ValueError(f"{folder}: image and label counts differ")
    return (x_train, y_train), (x_test, y_test), MNIST_CLASSES


def _decode(data):
    from PIL import Image
    with Image.open(io.BytesIO(data)) as img:
        return np.asarray(img.convert("RGB"), dtype=np.uint8)


def _split_from_tar(tar_path, classes):
    """Decodes train/<class>/* and test/<class>/* members of a tarball."""
    index = {c: i for i, c in enumerate(classes)}
    out = {"train": ([], []), "test": ([], [])}
    with tarfile.open(tar_path, "r:*") as tar:
        members = sorted((m for m in tar if m.isfile()), key=lambda m: m.name)
        for m in members:
            parts = Path(m.name).parts
            parts = parts[parts.index("train") if "train" in parts
                          else parts.index("test") if "test" in parts
                          else len(parts):]
            if len(parts) != 3 or parts[1] not in index:
                continue
            if not parts[2].lower().endswith(IMAGE_SUFFIXES):
                continue
            images, labels = out[parts[0]]
            images.append(_decode(tar.extractfile(m).read()))
            labels.append(index[parts[1]])
    result = []
    for split in ("train", "test"):
        images, labels = out[split]
        if not images:
            raise ValueError(f"{tar_path}: no {split}/<class>/ images")
        result.append((np.stack(images), np.asarray(labels, np.int32)))
    return result


def load_cifar10(root):
    """CIFAR-10 from <root>/cifar10-jpeg.tar.gz, decoded once and cached."""
    root = Path(root)
    tar_path = root / "cifar10-jpeg.tar.gz" if root.is_dir() else root
    if not tar_path.exists():
        raise FileNotFoundError(f"{tar_path} not found")
    stat = tar_path.stat()
    tag = f"cifar10-jpeg-{stat.st_size}-{int(stat.st_mtime)}"
    cache = cache_dir()
    names = [cache / f"{tag}-{part}.npy" for part in
             ("xtrain", "ytrain", "xtest", "ytest")]
    if all(n.exists() for n in names):
        arrays = [np.load(n) for n in names]
    else:
        (xa, ya), (xb, yb) = _split_from_tar(tar_path, CIFAR10_CLASSES)
        arrays = [xa, ya, xb, yb]
        for name, arr in zip(names, arrays):
            tmp = name.with_suffix(".tmp.npy")
            np.save(tmp, arr)
            os.replace(tmp, name)  # atomic: a crash never leaves a half cache
    return (arrays[0], arrays[1]), (arrays[2], arrays[3]), CIFAR10_CLASSES


def load_folder(root, image_size=None):
    """Image folder <root>/{train,test}/<class>/*; classes sorted by name.
    image_size=(h, w) resizes (needed when the images differ in size)."""
    from PIL import Image
    root = Path(root)
    classes = sorted(p.name for p in (root / "train").iterdir() if p.is_dir())
    if not classes:
        raise ValueError(f"{root}/train has no class folders")
    splits = []
    for split in ("train", "test"):
        images, labels = [], []
        for label, name in enumerate(classes):
            folder = root / split / name
            if not folder.is_dir():
                continue
            for path in sorted(folder.iterdir()):
                if path.suffix.lower() not in IMAGE_SUFFIXES:
                    continue
                with Image.open(path) as img:
                    img = img.convert("RGB")
                    if image_size is not None:
                        img = img.resize((image_size[1], image_size[0]))
                    images.append(np.asarray(img, dtype=np.uint8))
                labels.append(label)
        if not images:
            raise ValueError(f"{root}/{split}: no images")
        if len({im.shape for im in images}) != 1:
            raise ValueError(f"{root}/{split}: images differ in size; "
                             "pass --image-size")
        splits.append((np.stack(images), np.asarray(labels, np.int32)))
    return splits[0], splits[1], tuple(classes)


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
