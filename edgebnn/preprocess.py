"""From a raw image (path, PIL image or uint8 array) to the model's input,
as the file's input spec says: resize, channels, invert, scale, mean/std."""
import os

import numpy as np


def load_image(image, spec):
    """-> uint8 [H, W, C] at the input's size and channel count."""
    from PIL import Image
    h, w, c = spec.shape
    if isinstance(image, (str, os.PathLike)):
        try:
            with Image.open(image) as im:
                im.load()
                image = im.copy()
        except (OSError, Image.DecompressionBombError) as e:
            raise ValueError(f"cannot read image {os.fspath(image)}: {e}") from None
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8 or image.ndim not in (2, 3):
            raise ValueError(f"an image array must be uint8 [H, W] or [H, W, C], "
                             f"got {image.dtype} {image.shape}")
        if image.ndim == 3 and image.shape[2] not in (1, 3, 4):
            raise ValueError(f"an image array needs 1, 3 or 4 channels, got {image.shape}")
        if image.ndim == 3 and image.shape[2] == 1:
            image = image[..., 0]
        image = Image.fromarray(image)
    if not isinstance(image, Image.Image):
        raise ValueError(f"expected an image path, PIL image or uint8 array, "
                         f"got {type(image).__name__}")
    image = image.convert("L" if c == 1 else "RGB")
    if image.size != (w, h):
        image = image.resize((w, h), Image.BILINEAR)
    arr = np.asarray(image, np.uint8)
    return arr.reshape(h, w, c)


def normalize(pixels, spec):
    """uint8 [N, H, W, C] -> float32 model input."""
    x = pixels.astype(np.float32)
    pre = spec.preprocess
    if pre is None:
        return x
    if pre["invert"]:
        x = 255.0 - x
    x = x * np.float32(pre["scale"])
    return ((x - np.asarray(pre["mean"], np.float32))
            / np.asarray(pre["std"], np.float32)).astype(np.float32)
