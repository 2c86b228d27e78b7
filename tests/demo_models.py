"""Small real models and data for the demo tests, made by the tests: digits
rendered with Pillow's built-in font (no third-party images), a binarized
nearest-centroid digit classifier learned from them, a colour classifier,
and MNIST-format IDX files of rendered digits."""
import gzip
import struct

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from edgebnn import GraphBuilder, save
from edgebnn.bits import pack_signs


def fit_box(img, size=28, box=20):
    """MNIST placement: the ink's bounding box scaled into box x box,
    centred in size x size (what the web page does with a drawing)."""
    a = np.asarray(img.convert("L"))
    ys, xs = np.nonzero(a > 40)
    crop = img.crop((xs.min(), ys.min(), xs.max() + 1, ys.max() + 1))
    s = box / max(crop.size)
    w, h = max(1, round(crop.size[0] * s)), max(1, round(crop.size[1] * s))
    out = Image.new("L", (size, size), 0)
    out.paste(crop.convert("L").resize((w, h), Image.BILINEAR),
              ((size - w) // 2, (size - h) // 2))
    return out


def draw_digit(d, rng, size=28):
    """A white-on-black digit, jittered in size, weight and slant."""
    canvas = Image.new("L", (96, 96), 0)
    try:
        font = ImageFont.load_default(size=int(rng.integers(44, 60)))
    except TypeError:   # Pillow < 10.1 (Debian 12's python3-pil on a 32-bit Pi)
        pytest.skip("drawn-digit models need Pillow >= 10.1 (a scalable built-in font)")
    ImageDraw.Draw(canvas).text((48, 48), str(d), fill=255, font=font, anchor="mm",
                                stroke_width=int(rng.integers(2, 5)), stroke_fill=255)
    canvas = canvas.rotate(float(rng.uniform(-10, 10)), resample=Image.BILINEAR)
    return np.asarray(fit_box(canvas, size), np.uint8)


def digits(n_per_class, seed):
    rng = np.random.default_rng(seed)
    x = np.stack([draw_digit(d, rng) for d in range(10) for _ in range(n_per_class)])
    y = np.repeat(np.arange(10), n_per_class)
    return x[..., None], y


def save_digit_model(path, invert=False):
    """Binarized nearest centroid: sign(pixel - 0.5) against the signs of
    the class centroids, as a binary dense layer + softmax."""
    x, y = digits(12, seed=1)
    x = x.reshape(len(x), -1) / 255.0
    mu = np.stack([x[y == k].mean(axis=0) for k in range(10)])
    pre = {"size": [28, 28], "channels": 1, "scale": 1 / 255, "mean": [0.5], "std": [1.0],
           "invert": invert}
    b = GraphBuilder([28, 28, 1], preprocess=pre, name="rendered-digits")
    b.add("flatten")
    b.add("dense", dict(units=10, scheme="binary", alpha="scalar", input_scaling="none",
                        use_bias=False),
          {"weight": pack_signs(mu - 0.5), "alpha": np.float32([0.02])})
    b.add("softmax")
    save(path, b.build(labels=[str(i) for i in range(10)]))
    return str(path)


def save_colour_model(path, size=32):
    """Dominant colour of a photo: red / green / blue (exact by construction)."""
    pre = {"size": [size, size], "channels": 3, "scale": 1 / 255, "mean": [0, 0, 0],
           "std": [1, 1, 1], "invert": False}
    b = GraphBuilder([size, size, 3], preprocess=pre, name="colours")
    b.add("global_avgpool")
    b.add("dense", dict(units=3, scheme="float", alpha="none", input_scaling="none",
                        use_bias=False), dict(weight=np.eye(3, dtype=np.float32) * 10))
    b.add("softmax")
    save(path, b.build(labels=["red", "green", "blue"]))
    return str(path)


def write_mnist_test(root, x, y):
    """x uint8 [N, 28, 28(, 1)], y -> root/mnist/t10k-*-idx?-ubyte.gz."""
    d = root / "mnist"
    d.mkdir(parents=True, exist_ok=True)
    x = x.reshape(len(x), 28, 28)
    with gzip.open(d / "t10k-images-idx3-ubyte.gz", "wb") as f:
        f.write(struct.pack(">IIII", 2051, len(x), 28, 28) + x.tobytes())
    with gzip.open(d / "t10k-labels-idx1-ubyte.gz", "wb") as f:
        f.write(struct.pack(">II", 2049, len(y)) + np.asarray(y, np.uint8).tobytes())
    return root
