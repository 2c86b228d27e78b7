"""The compact (format version 2) encodings: every parameter in one `data`
byte string described by a table in the graph document, binary weights at
one bit each (each row of C channels in ceil(C/8) bytes, not whole 64-bit
words), float layers optionally as float16, or int8 / int6 / int5 / int4
with per-channel scales, and the graph document zlib-compressed
(docs/FORMAT.md section 8).

Decoding produces exactly the arrays a version-1 file holds (packed uint64
words, float16 or float32), so the graph validator and the engine see no
difference; every size is checked against the data before anything is
allocated, and no decoded array is more than 8 times its stored bytes.
"""
import math
import zlib

import numpy as np

from .bits import words
from .errors import ModelError, short

MAX_GRAPH_BYTES = 16 << 20      # the uncompressed graph document, as version 1's header
# inflating may multiply the stored graph at most this much (+ 64 KiB): real
# graphs compress about 10x; a zlib bomb must not turn a small file into a
# 16 MiB JSON parse
MAX_INFLATE = 64

# encoding -> (byte alignment of its start, decoded numpy dtype)
ENCODINGS = {
    "F32": (4, np.dtype("<f4")),
    "F16": (2, np.dtype("<f2")),
    "I32": (4, np.dtype("<i4")),
    "U8": (1, np.dtype("u1")),
    "U64": (8, np.dtype("<u8")),
    "B1": (1, np.dtype("<u8")),     # signs, 1 bit each, decoded to packed words
    # F32 scale per channel + b-bit two's-complement values in one LSB-first
    # bit stream (Q8: plain int8 bytes; Q4: two a byte, the first low)
    "Q8": (4, np.dtype("<f4")),
    "Q6": (4, np.dtype("<f4")),
    "Q5": (4, np.dtype("<f4")),
    "Q4": (4, np.dtype("<f4")),
}
QUANT_BITS = {"Q8": 8, "Q6": 6, "Q5": 5, "Q4": 4}
QUANT_LEVELS = {enc: (1 << (b - 1)) - 1 for enc, b in QUANT_BITS.items()}  # values -L..L
QUANTIZED = {f"int{b}": enc for enc, b in QUANT_BITS.items()}  # float_params -> weight encoding
FLOAT_PARAMS = ("f32", "f16") + tuple(QUANTIZED)


# ------------------------------------------------------------- sizes ---
def stored_bytes(enc, shape):
    """Bytes an entry occupies in `data` (shape: the entry's shape)."""
    n = math.prod(shape)
    if enc == "B1":
        return n // shape[-1] * ((shape[-1] + 7) // 8) if shape[-1] else 0
    if enc in QUANT_BITS:
        return 4 * shape[0] + (n * QUANT_BITS[enc] + 7) // 8
    return n * ENCODINGS[enc][1].itemsize


def _align(pos, a):
    return -(-pos // a) * a


# ---------------------------------------------------------- encoding ---
def _bits_rows(packed, channels):
    """uint64 words [..., words(C)] -> each row's C sign bits in ceil(C/8)
    bytes (LSB first, as the words hold them; the bits above C are 0)."""
    rows = np.ascontiguousarray(packed, "<u8").view(np.uint8).reshape(-1, packed.shape[-1] * 8)
    return np.ascontiguousarray(rows[:, :(channels + 7) // 8]).tobytes()


# per-channel scale candidates, as fractions of max|w| / levels: clipping
# the few largest weights a little often lowers the error of all others
CLIP_FRACTIONS = np.linspace(1.0, 0.5, 26, dtype=np.float32)


def quantize(w, levels=127):
    """float [O, ...] -> (float32 scale [O], int8 q [O, ...]) with
    w ~ q * scale, symmetric per output channel (q in -levels..levels).
    Each channel's scale is the candidate max|w| * f / levels (f in
    CLIP_FRACTIONS) with the least squared error (ties: the largest f)."""
    w = np.asarray(w, np.float32)
    flat = w.reshape(w.shape[0], -1)
    peak = np.abs(flat).max(axis=1) if w.size else np.zeros(w.shape[0], np.float32)
    best_err = best_scale = None
    for f in CLIP_FRACTIONS:
        scale = (peak * f / np.float32(levels)).astype(np.float32)
        safe = np.where(scale > 0, scale, np.float32(1))[:, None]
        err = ((np.clip(np.rint(flat / safe), -levels, levels) * safe - flat) ** 2).sum(axis=1)
        if best_err is None:
            best_err, best_scale = err, scale
        else:
            better = err < best_err
            best_err, best_scale = np.where(better, err, best_err), np.where(better, scale, best_scale)
    safe = np.where(best_scale > 0, best_scale, np.float32(1)).reshape((-1,) + (1,) * (w.ndim - 1))
    q = np.clip(np.rint(w / safe), -levels, levels).astype(np.int8)
    return best_scale.astype(np.float32), q


def _pack_codes(q, bits):
    """int8 values in -L..L -> their low `bits` bits (two's complement), value
    after value in one LSB-first bit stream; the last byte's unused high bits 0."""
    u = q.reshape(-1).astype(np.uint8)          # two's complement bytes
    stream = np.unpackbits(u[:, None], axis=1, bitorder="little")[:, :bits]
    return np.packbits(stream.reshape(-1), bitorder="little").tobytes()


def _unpack_codes(raw, n, bits):
    """The inverse of _pack_codes, or None if the unused high bits of the last
    byte are not 0."""
    stream = np.unpackbits(np.frombuffer(raw, np.uint8), bitorder="little")
    if stream[n * bits:].any():
        return None
    codes = stream[:n * bits].reshape(n, bits)
    u = np.packbits(codes, axis=1, bitorder="little")[:, 0].astype(np.int16)
    sign = 1 << (bits - 1)
    return ((u ^ sign) - sign).astype(np.int8)          # sign-extend


def encode(entries):
    """entries: [(name, encoding, array, channels or None)] in data order.
    -> (table [[name, encoding, shape]], data bytes). channels: for B1, the
    real count of the last axis of the packed words."""
    table, parts, pos = [], [], 0
    for name, enc, arr, channels in entries:
        align = ENCODINGS[enc][0]
        pad = _align(pos, align) - pos
        parts.append(b"\0" * pad)
        pos += pad
        if enc == "B1":
            shape = list(arr.shape[:-1]) + [channels]
            blob = _bits_rows(arr, channels)
        elif enc in QUANT_LEVELS:
            shape = list(arr.shape)
            scale, q = quantize(arr, QUANT_LEVELS[enc])
            blob = scale.astype("<f4").tobytes() + _pack_codes(q, QUANT_BITS[enc])
        else:
            shape = list(arr.shape)
            blob = np.ascontiguousarray(arr, ENCODINGS[enc][1]).tobytes()
        assert len(blob) == stored_bytes(enc, shape)
        table.append([name, enc, shape])
        parts.append(blob)
        pos += len(blob)
    return table, b"".join(parts)


def compress_graph(text):
    return zlib.compress(text.encode("utf-8"), 9)


# ---------------------------------------------------------- decoding ---
def decompress_graph(blob):
    """zlib stream -> JSON text, refusing more than min(MAX_GRAPH_BYTES,
    MAX_INFLATE x stored + 64 KiB) bytes of output (a small hostile stream
    cannot inflate into a large allocation)."""
    limit = min(MAX_GRAPH_BYTES, MAX_INFLATE * len(blob) + (64 << 10))
    d = zlib.decompressobj()
    try:
        text = d.decompress(bytes(blob), limit + 1)
    except zlib.error as e:
        raise ModelError(f"graph: not a valid zlib stream ({e})") from None
    if len(text) > limit or d.unconsumed_tail:
        raise ModelError(f"graph: inflates to more than {limit} bytes "
                         f"({len(blob)} stored)")
    if not d.eof:
        raise ModelError("graph: zlib stream is truncated")
    if d.unused_data:
        raise ModelError(f"graph: {len(d.unused_data)} bytes after the end of the zlib stream")
    try:
        return text.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ModelError(f"graph: not UTF-8 (byte {e.start})") from None


def _check_entry(i, entry):
    if not isinstance(entry, list) or len(entry) != 3:
        raise ModelError(f"tensor table entry #{i}: must be [name, encoding, shape]")
    name, enc, shape = entry
    if not isinstance(name, str) or not 0 < len(name) <= 256:
        raise ModelError(f"tensor table entry #{i}: name must be 1..256 characters")
    where = f"tensor {short(name)}"
    if not isinstance(enc, str) or enc not in ENCODINGS:
        raise ModelError(f"{where}: encoding {short(enc)} not one of {sorted(ENCODINGS)}")
    if not isinstance(shape, list) or len(shape) > 8 or not all(
            isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
        raise ModelError(f"{where}: shape must be a list of at most 8 non-negative "
                         f"integers, got {short(shape)}")
    if (enc == "B1" or enc in QUANT_BITS) and (not shape or shape[-1 if enc == "B1" else 0] == 0):
        raise ModelError(f"{where}: {enc} needs a shape with a non-zero "
                         f"{'last' if enc == 'B1' else 'first'} axis")
    return name, enc, shape, where


def _decode_one(enc, shape, raw, where):
    if enc == "B1":
        c = shape[-1]
        nb = (c + 7) // 8
        rows = np.frombuffer(raw, np.uint8).reshape(-1, nb)
        if c % 8 and np.any(rows[:, -1] >> (c % 8)):
            raise ModelError(f"{where}: bits above the {c} weights of a row are not 0")
        out = np.zeros((rows.shape[0], words(c) * 8), np.uint8)
        out[:, :nb] = rows
        return out.view("<u8").reshape(tuple(shape[:-1]) + (words(c),))
    if enc in QUANT_LEVELS:
        o, levels = shape[0], QUANT_LEVELS[enc]
        scale = np.frombuffer(raw, "<f4", count=o)
        if not np.all(np.isfinite(scale)) or np.any(scale < 0):
            raise ModelError(f"{where}: quantization scales must be finite and non-negative")
        if enc == "Q8":
            q = np.frombuffer(raw, np.int8, offset=4 * o)
        else:
            q = _unpack_codes(raw[4 * o:], math.prod(shape), QUANT_BITS[enc])
            if q is None:
                raise ModelError(f"{where}: the unused bits of the last byte are not 0")
        if np.any(q < -levels):
            raise ModelError(f"{where}: quantized values must be in -{levels}..{levels}")
        return q.reshape(shape).astype(np.float32) * scale.reshape((o,) + (1,) * (len(shape) - 1))
    dtype = ENCODINGS[enc][1]
    return np.frombuffer(raw, dtype).reshape(shape)


def decode(table, data):
    """Tensor table + data bytes -> ({name: array}, {name: (encoding, stored
    bytes, shape)}). The entries tile `data` in order: each starts at the
    previous end rounded up to its alignment (padding bytes 0), the last ends
    at the end of `data`."""
    if not isinstance(table, list) or len(table) > 100_000:
        raise ModelError("graph: 'tensors' must be a list of at most 100000 entries")
    data = memoryview(data)
    tensors, storage, pos = {}, {}, 0
    for i, entry in enumerate(table):
        name, enc, shape, where = _check_entry(i, entry)
        if name in tensors:
            raise ModelError(f"{where}: listed twice in the tensor table")
        start = _align(pos, ENCODINGS[enc][0])
        if start > len(data) or any(data[pos:start]):
            raise ModelError(f"{where}: alignment padding at data offset {pos} is not zero "
                             "or runs past the data")
        size = 1
        for d in shape:     # bound before multiplying further: no huge products
            size *= d
            if size > 8 * len(data) + 8:
                raise ModelError(f"{where}: shape {shape} needs more bytes than the file has")
        nbytes = stored_bytes(enc, shape)
        if start + nbytes > len(data):
            raise ModelError(f"{where}: needs {nbytes} bytes at data offset {start}, "
                             f"the data has {len(data) - start}")
        tensors[name] = _decode_one(enc, shape, data[start:start + nbytes], where)
        storage[name] = (enc, nbytes, list(shape))
        pos = start + nbytes
    if pos != len(data):
        raise ModelError(f"data: {len(data) - pos} bytes after the last tensor "
                         f"(offset {pos}) are not described by the tensor table")
    return tensors, storage


def check_bit_channels(graph, storage):
    """A B1 entry's last axis must be the channel count of every op using it
    (its words alone would accept any count with the same word count)."""
    for op in graph.ops:
        for role, tname in op.tensor_names.items():
            enc, _, shape = storage.get(tname, (None, 0, None))
            if enc == "B1" and shape[-1] != op.fan_in:
                raise ModelError(f"op {op.name!r} param {role!r}: {shape[-1]} bits per row "
                                 f"stored, the op has {op.fan_in} input channels")
