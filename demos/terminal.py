"""Images in a terminal: two pixel rows per character cell with the upper
half block (foreground = top pixel, background = bottom pixel) in 24-bit or
256 colours, or plain ASCII when the output is not a terminal."""
import os

import numpy as np

UPPER_HALF = "\u2580"
RESET = "\x1b[0m"
ASCII_RAMP = " .:-=+*#%@"


def colour_mode(stream, force_ascii=False):
    """'truecolor', '256' or 'ascii' for this output stream."""
    if force_ascii or not getattr(stream, "isatty", lambda: False)() \
            or os.environ.get("TERM") == "dumb" or "NO_COLOR" in os.environ:
        return "ascii"
    if os.environ.get("COLORTERM", "").lower() in ("truecolor", "24bit"):
        return "truecolor"
    return "256"


def _rgb(image):
    """uint8 [H, W] / [H, W, 1] / [H, W, 3] -> uint8 [H, W, 3]."""
    a = np.asarray(image, np.uint8)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=2)
    if a.ndim != 3 or a.shape[2] != 3:
        raise ValueError(f"cannot draw an image of shape {a.shape}")
    return a


def _code_256(rgb):
    """Nearest xterm-256 colour: the grey ramp (232-255) for greys, else the
    6x6x6 cube."""
    r, g, b = (int(v) for v in rgb)
    if max(r, g, b) - min(r, g, b) < 10:
        grey = (r + g + b) / 3
        if grey < 4:
            return 16
        if grey > 246:
            return 231
        return 232 + min(23, round((grey - 8) / 10))
    q = [min(5, round(v / 255 * 5)) for v in (r, g, b)]
    return 16 + 36 * q[0] + 6 * q[1] + q[2]


def _cell(top, bottom, mode):
    if mode == "truecolor":
        return (f"\x1b[38;2;{top[0]};{top[1]};{top[2]}m"
                f"\x1b[48;2;{bottom[0]};{bottom[1]};{bottom[2]}m{UPPER_HALF}")
    return f"\x1b[38;5;{_code_256(top)}m\x1b[48;5;{_code_256(bottom)}m{UPPER_HALF}"


def render(image, mode):
    """-> list of text lines drawing the image (one line per two rows)."""
    rgb = _rgb(image)
    if rgb.shape[0] % 2:      # pad to whole cells with the last row
        rgb = np.concatenate([rgb, rgb[-1:]], axis=0)
    if mode == "ascii":
        luma = rgb.astype(np.float32) @ np.float32([0.299, 0.587, 0.114])
        pairs = (luma[0::2] + luma[1::2]) / 2
        idx = np.minimum((pairs / 256 * len(ASCII_RAMP)).astype(int), len(ASCII_RAMP) - 1)
        return ["".join(ASCII_RAMP[i] for i in row) for row in idx]
    return ["".join(_cell(t, b, mode) for t, b in zip(rgb[y], rgb[y + 1])) + RESET
            for y in range(0, rgb.shape[0], 2)]
