"""Bit packing in numpy, the same layout as the C kernels: channels packed
along the last axis into uint64 words, LSB first, bit = 1 where the value is
negative (+1 -> 0), unused high bits of the last word 0."""
import numpy as np


def words(channels):
    return (channels + 63) // 64


def pack_signs(x):
    """Pack the sign bits of x [..., C] into uint64 [..., words(C)]."""
    x = np.asarray(x)
    c = x.shape[-1]
    neg = np.zeros(x.shape[:-1] + (words(c) * 64,), np.uint8)
    neg[..., :c] = x < 0
    packed = np.packbits(neg.reshape(x.shape[:-1] + (words(c), 64)),
                         axis=-1, bitorder="little")
    return np.ascontiguousarray(packed).view("<u8").reshape(
        x.shape[:-1] + (words(c),)).astype(np.uint64)


def unpack_negative(packed, channels):
    """Boolean 'is negative' mask [..., channels] from packed words."""
    packed = np.ascontiguousarray(packed, dtype="<u8")
    as_bytes = packed.view(np.uint8).reshape(packed.shape + (8,))
    flat = np.unpackbits(as_bytes, axis=-1, bitorder="little")
    flat = flat.reshape(packed.shape[:-1] + (packed.shape[-1] * 64,))
    return flat[..., :channels].astype(bool)


def unpack_signs(packed, channels, dtype=np.float32):
    """+-1 values [..., channels] from packed words."""
    return np.where(unpack_negative(packed, channels), -1, 1).astype(dtype)


def high_bits_clear(packed, channels):
    """True if every unused bit above `channels` in the last word is 0."""
    rem = channels % 64
    if rem == 0 or packed.size == 0:
        return True
    mask = np.uint64(~((1 << rem) - 1) & 0xFFFFFFFFFFFFFFFF)
    return not np.any(packed[..., -1] & mask)
