"""Dataset readers: MNIST (IDX, gzip or raw), CIFAR-10 in its official
"python" (restricted pickle) and "binary" forms, and image folders
(root/<class>/*.png|jpg, on disk or inside a tar such as the shared
cifar10-jpeg.tar.gz). All return (images uint8 [N, H, W, C], labels int64 [N]).

Where data lives: an explicit path (--data), else $EDGEBNN_DATA, else
../shared/datasets relative to the current directory or to this package's
repository root."""
import gzip
import io
import os
import pickle
import struct
import tarfile

import numpy as np

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog",
                   "horse", "ship", "truck")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
MAX_IMAGE_BYTES = 64 << 20


class DatasetError(ValueError):
    """A dataset file is missing or not in the expected format."""


def data_root(explicit=None):
    """The datasets folder; DatasetError if none of the candidates exists."""
    if explicit:
        candidates = [explicit]
    elif os.environ.get("EDGEBNN_DATA"):
        candidates = [os.environ["EDGEBNN_DATA"]]
    else:
        repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        candidates = [os.path.join("..", "shared", "datasets"),
                      os.path.join(repo, "..", "shared", "datasets")]
    for c in candidates:
        if os.path.isdir(c):
            return os.path.abspath(c)
    raise DatasetError(f"no dataset folder: tried {candidates} "
                       "(pass --data DIR or set EDGEBNN_DATA)")


# ------------------------------------------------------------------ IDX ---
def _open_maybe_gzip(path):
    """(file object, most bytes it can yield): deflate expands at most
    ~1032x, so a header claiming more than that is a lie (or a bomb)."""
    with open(path, "rb") as f:
        gz = f.read(2) == b"\x1f\x8b"
    size = os.path.getsize(path)
    return (gzip.open(path, "rb"), size * 1100) if gz else (open(path, "rb"), size)


def read_idx(path, expect_magic=None):
    """An IDX file (unsigned byte data) -> uint8 array of its dims. The
    payload must be exactly the size the header states (no more is read:
    a gzip bomb cannot make us allocate beyond that)."""
    try:
        f, most = _open_maybe_gzip(path)
        with f:
            head = f.read(4)
            if len(head) != 4 or head[:2] != b"\0\0" or head[2] != 0x08:
                raise DatasetError(f"{path}: not an unsigned-byte IDX file (magic {head.hex()})")
            magic, ndim = struct.unpack(">I", head)[0], head[3]
            if expect_magic is not None and magic != expect_magic:
                raise DatasetError(f"{path}: magic {magic}, expected {expect_magic}")
            if not 1 <= ndim <= 4:
                raise DatasetError(f"{path}: {ndim} dimensions")
            raw = f.read(4 * ndim)
            if len(raw) != 4 * ndim:
                raise DatasetError(f"{path}: truncated header")
            dims = struct.unpack(f">{ndim}I", raw)
            count = int(np.prod(dims, dtype=object))
            if count > most:
                raise DatasetError(f"{path}: dims {dims} claim more data than the file can hold")
            data = f.read(count + 1)
    except (OSError, EOFError) as e:
        raise DatasetError(f"{path}: {e}") from None
    if len(data) != count:
        raise DatasetError(f"{path}: header says {count} bytes of data, file has "
                           f"{'more' if len(data) > count else len(data)}")
    return np.frombuffer(data, np.uint8).reshape(dims)


def _find(root, names):
    for n in names:
        p = os.path.join(root, n)
        if os.path.isfile(p):
            return p
    raise DatasetError(f"none of {names} in {root}")


def load_mnist(root=None, split="test"):
    """MNIST from root/mnist (or root itself): images [N, 28, 28, 1]."""
    root = data_root(root)
    if os.path.isdir(os.path.join(root, "mnist")):
        root = os.path.join(root, "mnist")
    stem = {"train": "train", "test": "t10k"}.get(split)
    if stem is None:
        raise DatasetError(f"split must be 'train' or 'test', got {split!r}")
    images = read_idx(_find(root, [f"{stem}-images-idx3-ubyte.gz", f"{stem}-images-idx3-ubyte",
                                   f"{stem}-images.idx3-ubyte"]), 2051)
    labels = read_idx(_find(root, [f"{stem}-labels-idx1-ubyte.gz", f"{stem}-labels-idx1-ubyte",
                                   f"{stem}-labels.idx1-ubyte"]), 2049)
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise DatasetError(f"MNIST {split}: {images.shape} images vs {labels.shape} labels")
    if labels.size and labels.max() > 9:
        raise DatasetError(f"MNIST {split}: label {labels.max()} out of range")
    return images[..., None], labels.astype(np.int64)


# ------------------------------------------------------ CIFAR-10 python ---
_NUMPY_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"), ("numpy", "dtype"),
}


class _CifarUnpickler(pickle.Unpickler):
    """Only plain containers and numpy array reconstruction; any other
    global in the stream is refused before it is looked up."""

    def find_class(self, module, name):
        if (module, name) not in _NUMPY_GLOBALS:
            raise DatasetError(f"CIFAR-10 pickle refers to {module}.{name}: refused")
        if name == "_reconstruct":
            try:
                from numpy._core.multiarray import _reconstruct
            except ImportError:   # numpy < 2
                from numpy.core.multiarray import _reconstruct
            return _reconstruct
        return getattr(np, name)


def read_cifar_pickle(path):
    """One official CIFAR-10 python batch -> (images [N, 32, 32, 3], labels)."""
    try:
        with open(path, "rb") as f:
            obj = _CifarUnpickler(f, encoding="bytes").load()
    except DatasetError:
        raise
    except Exception as e:   # any malformed stream: the unpickler raises many types
        raise DatasetError(f"{path}: not a CIFAR-10 python batch ({type(e).__name__}: {e})") from None
    if not isinstance(obj, dict):
        raise DatasetError(f"{path}: top level is {type(obj).__name__}, not a dict")
    obj = {k.decode() if isinstance(k, bytes) else k: v for k, v in obj.items()}
    if set(obj) != {"batch_label", "labels", "data", "filenames"}:
        raise DatasetError(f"{path}: keys {sorted(map(str, obj))} are not the CIFAR-10 layout "
                           "(batch_label, data, filenames, labels)")
    data, labels, names = obj["data"], obj["labels"], obj["filenames"]
    if type(data) is not np.ndarray or data.dtype != np.uint8 or data.ndim != 2 \
            or data.shape[1] != 3072:
        raise DatasetError(f"{path}: data must be a uint8 array [N, 3072]")
    if not isinstance(labels, list) or len(labels) != len(data) or not all(
            type(v) is int and 0 <= v <= 9 for v in labels):
        raise DatasetError(f"{path}: labels must be a list of {len(data)} ints in 0..9")
    if not isinstance(obj["batch_label"], (bytes, str)) or not isinstance(names, list) \
            or len(names) != len(data) or not all(isinstance(n, (bytes, str)) for n in names):
        raise DatasetError(f"{path}: batch_label must be a string and filenames a list of "
                           f"{len(data)} strings")
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), np.asarray(labels, np.int64)


# ------------------------------------------------------ CIFAR-10 binary ---
def read_cifar_binary(path):
    """data_batch_N.bin / test_batch.bin: records of 1 label + 3072 bytes."""
    with open(path, "rb") as f:
        raw = f.read()
    if not raw or len(raw) % 3073:
        raise DatasetError(f"{path}: {len(raw)} bytes is not a whole number of 3073-byte records")
    rec = np.frombuffer(raw, np.uint8).reshape(-1, 3073)
    if rec[:, 0].max() > 9:
        raise DatasetError(f"{path}: label {rec[:, 0].max()} out of range")
    images = rec[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), rec[:, 0].astype(np.int64)


# --------------------------------------------------------- image folders ---
def _decode(data, name, size, channels):
    from PIL import Image
    try:
        with Image.open(io.BytesIO(data)) as im:
            im = im.convert("L" if channels == 1 else "RGB")
            if size is not None and im.size != (size[1], size[0]):
                im = im.resize((size[1], size[0]), Image.BILINEAR)
            arr = np.asarray(im, np.uint8)
    except (OSError, Image.DecompressionBombError) as e:
        raise DatasetError(f"{name}: cannot decode image ({e})") from None
    return arr.reshape(arr.shape[0], arr.shape[1], channels)


def read_image_folder(root, classes=None, size=None, channels=3, limit=None):
    """root/<class>/<image>: classes in the given order (default: sorted
    folder names). root may also be 'archive.tar[.gz]:prefix' to read the
    same layout straight out of a tar without unpacking it."""
    if ":" in os.fspath(root) and os.path.isfile(os.fspath(root).rsplit(":", 1)[0]):
        archive, prefix = os.fspath(root).rsplit(":", 1)
        return _read_tar_folder(archive, prefix, classes, size, channels, limit)
    if not os.path.isdir(root):
        raise DatasetError(f"{root}: no such folder")
    classes = list(classes or sorted(d for d in os.listdir(root)
                                     if os.path.isdir(os.path.join(root, d))))
    items = []
    for label, cls in enumerate(classes):
        folder = os.path.join(root, cls)
        if not os.path.isdir(folder):
            raise DatasetError(f"{root}: no folder for class {cls!r}")
        for fn in sorted(os.listdir(folder)):
            if fn.lower().endswith(IMAGE_SUFFIXES):
                items.append((os.path.join(folder, fn), label))
    return _collect(items, _read_bytes, size, channels, limit, root)


def _read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


def _read_tar_folder(archive, prefix, classes, size, channels, limit):
    prefix = prefix.strip("/")
    found = {}
    with tarfile.open(archive) as tar:
        for m in tar:
            if not m.isfile():
                continue
            parts = m.name.lstrip("./").split("/")
            if len(parts) != 3 or parts[0] != prefix or not parts[2].lower().endswith(IMAGE_SUFFIXES):
                continue
            if m.size > MAX_IMAGE_BYTES:
                raise DatasetError(f"{archive}: {m.name} is {m.size} bytes, too large for an image")
            found.setdefault(parts[1], []).append((m.name, tar.extractfile(m).read()))
    classes = list(classes or sorted(found))
    missing = [c for c in classes if c not in found]
    if missing:
        raise DatasetError(f"{archive}:{prefix}: no images for classes {missing}")
    items, blobs = [], {}
    for label, cls in enumerate(classes):
        for name, data in sorted(found[cls]):
            items.append((name, label))
            blobs[name] = data
    return _collect(items, blobs.__getitem__, size, channels, limit, f"{archive}:{prefix}")


def _collect(items, read, size, channels, limit, where):
    if limit is not None:
        # spread a limited read over the classes instead of taking the first
        idx = np.linspace(0, len(items) - 1, num=min(limit, len(items))).round().astype(int)
        items = [items[i] for i in np.unique(idx)]
    if not items:
        raise DatasetError(f"{where}: no images found")
    images = [_decode(read(name), name, size, channels) for name, _ in items]
    if len({im.shape for im in images}) != 1:
        raise DatasetError(f"{where}: images differ in size; pass size=(H, W)")
    return np.stack(images), np.asarray([lab for _, lab in items], np.int64)


def cifar10_source(root=None):
    """(form, path) of the CIFAR-10 that load_cifar10 reads under root, in
    its order of preference: 'python' (cifar-10-batches-py), 'binary'
    (cifar-10-batches-bin), 'jpeg-tar' (cifar10-jpeg.tar.gz) or 'folder'
    (cifar10/<split>/)."""
    root = data_root(root)
    for form, name, exists in (("python", "cifar-10-batches-py", os.path.isdir),
                               ("binary", "cifar-10-batches-bin", os.path.isdir),
                               ("jpeg-tar", "cifar10-jpeg.tar.gz", os.path.isfile),
                               ("folder", "cifar10", os.path.isdir)):
        path = os.path.join(root, name)
        if exists(path):
            return form, path
    raise DatasetError(f"no CIFAR-10 in {root}")


def load_cifar10(root=None, split="test", limit=None):
    """CIFAR-10 from whichever form root holds (cifar10_source)."""
    if split not in ("train", "test"):
        raise DatasetError(f"split must be 'train' or 'test', got {split!r}")
    form, path = cifar10_source(root)
    if form in ("python", "binary"):
        if form == "python":
            names = ["test_batch"] if split == "test" else [f"data_batch_{i}" for i in range(1, 6)]
            parts = [read_cifar_pickle(_find(path, [n])) for n in names]
        else:
            names = ["test_batch.bin"] if split == "test" else [f"data_batch_{i}.bin"
                                                                for i in range(1, 6)]
            parts = [read_cifar_binary(_find(path, [n])) for n in names]
        images = np.concatenate([p[0] for p in parts])
        labels = np.concatenate([p[1] for p in parts])
        if limit is not None:
            images, labels = images[:limit], labels[:limit]
        return images, labels
    if form == "jpeg-tar":
        return read_image_folder(f"{path}:{split}", CIFAR10_CLASSES, limit=limit)
    return read_image_folder(os.path.join(path, split), CIFAR10_CLASSES, limit=limit)


LOADERS = {"mnist": load_mnist, "cifar10": load_cifar10}
