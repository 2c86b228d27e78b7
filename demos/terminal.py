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


def _codes(rgb, mode):
    if mode == "truecolor":
        return f"{rgb[0]};{rgb[1]};{rgb[2]}"
    return f"5;{_code_256(rgb)}"


def _line(top_row, bottom_row, mode):
    """One text line; a colour code only where it changes (fewer bytes for
    slow serial consoles)."""
    parts, fg, bg = [], None, None
    prefix = "2;" if mode == "truecolor" else ""
    for top, bottom in zip(top_row, bottom_row):
        t, b = _codes(top, mode), _codes(bottom, mode)
        if t != fg:
            parts.append(f"\x1b[38;{prefix}{t}m")
        if b != bg:
            parts.append(f"\x1b[48;{prefix}{b}m")
        parts.append(UPPER_HALF)
        fg, bg = t, b
    return "".join(parts) + RESET


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
    return [_line(rgb[y].tolist(), rgb[y + 1].tolist(), mode) for y in range(0, rgb.shape[0], 2)]
