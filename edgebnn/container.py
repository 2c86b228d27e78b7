"""The safetensors container, read with every size and offset checked.

Layout (see docs/FORMAT.md): u64 little-endian header length N, N bytes of
UTF-8 JSON, then the data buffer. The header is validated here completely
before any byte of the data buffer is interpreted; nothing in a file is ever
executed. Writing goes through the safetensors library so files are
readable by any safetensors tool.
"""
import json
import os
import struct

import numpy as np

from .errors import ModelError, short

# safetensors dtype codes this format uses -> little-endian numpy dtypes
DTYPES = {
    "F32": np.dtype("<f4"),
    "F16": np.dtype("<f2"),
    "I32": np.dtype("<i4"),
    "U64": np.dtype("<u8"),
    "U8": np.dtype("u1"),
}


def dtype_code(dtype):
    """The safetensors code of a numpy dtype this format stores."""
    little = np.dtype(dtype).newbyteorder("<")
    for code, d in DTYPES.items():
        if d == little:
            return code
    raise ModelError(f"dtype {dtype} cannot be stored")


MAX_HEADER_BYTES = 16 << 20     # a graph of thousands of ops fits in far less
MAX_TENSORS = 100_000
MAX_NDIM = 8
MAX_NAME_CHARS = 256
MAX_JSON_DEPTH = 64


def _no_duplicates(pairs):
    d = {}
    for k, v in pairs:
        if k in d:
            raise ModelError(f"duplicate JSON key {k!r}")
        d[k] = v
    return d


def _json_depth_ok(text, limit):
    """Nesting depth of JSON text, counted without parsing (strings skipped),
    so hostile nesting can never reach the recursive parser."""
    depth, in_str, esc = 0, False, False
    for ch in text:
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
        elif ch in "[{":
            depth += 1
            if depth > limit:
                return False
        elif ch in "]}":
            depth -= 1
    return True


def parse_json(text, where):
    """Strict JSON: no duplicate keys, no NaN/Infinity, bounded nesting."""
    if not _json_depth_ok(text, MAX_JSON_DEPTH):
        raise ModelError(f"{where}: JSON nested deeper than {MAX_JSON_DEPTH}")

    def bad_constant(name):
        raise ModelError(f"{where}: JSON constant {name} is not allowed")
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates,
                          parse_constant=bad_constant)
    except ModelError as e:
        raise ModelError(f"{where}: {e}") from None
    except (ValueError, RecursionError) as e:
        raise ModelError(f"{where}: invalid JSON ({e})") from None


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _check_entry(name, entry, data_len):
    where = f"tensor {short(name)}"
    if not isinstance(name, str) or not 0 < len(name) <= MAX_NAME_CHARS:
        raise ModelError(f"{where}: name must be 1..{MAX_NAME_CHARS} characters")
    if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
        raise ModelError(f"{where}: entry must have exactly dtype, shape, data_offsets")
    dtype = entry["dtype"]
    if dtype not in DTYPES:
        raise ModelError(f"{where}: dtype {short(dtype)} not one of {sorted(DTYPES)}")
    shape = entry["shape"]
    if not isinstance(shape, list) or len(shape) > MAX_NDIM or \
            not all(_is_int(d) and 0 <= d for d in shape):
        raise ModelError(f"{where}: shape must be a list of at most {MAX_NDIM} "
                         f"non-negative integers, got {short(shape)}")
    offs = entry["data_offsets"]
    if not isinstance(offs, list) or len(offs) != 2 or not all(_is_int(o) for o in offs):
        raise ModelError(f"{where}: data_offsets must be two integers, got {short(offs)}")
    begin, end = offs
    if not 0 <= begin <= end <= data_len:
        raise ModelError(f"{where}: data_offsets [{begin}, {end}] outside the "
                         f"data buffer of {data_len} bytes")
    count = 1
    for d in shape:
        count *= d          # Python ints: no overflow; bounded by the check below
        if count * DTYPES[dtype].itemsize > data_len:
            raise ModelError(f"{where}: shape {shape} needs more bytes than the file has")
    if count * DTYPES[dtype].itemsize != end - begin:
        raise ModelError(f"{where}: shape {shape} of {dtype} needs "
                         f"{count * DTYPES[dtype].itemsize} bytes, offsets give {end - begin}")
    if begin % DTYPES[dtype].itemsize:
        raise ModelError(f"{where}: data offset {begin} not aligned to {DTYPES[dtype].itemsize}")
    return dtype, tuple(shape), begin, end


def read_container(source, info=None):
    """Parse a safetensors file (path or bytes). Returns (metadata dict of
    str -> str, {name: read-only numpy array}). Raises ModelError. info: a
    dict to receive the file's size and header length (bytes)."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        label = "<bytes>"
    else:
        label = os.fspath(source)
        try:
            with open(label, "rb") as f:
                data = f.read()
        except OSError as e:
            raise ModelError(f"cannot read model file {label}: {e.strerror}") from None
    if len(data) < 8:
        raise ModelError(f"{label}: file of {len(data)} bytes is too short for a header")
    (n,) = struct.unpack_from("<Q", data, 0)
    if n < 2 or n > MAX_HEADER_BYTES or n > len(data) - 8:
        raise ModelError(f"{label}: header length {n} at byte 0 is impossible "
                         f"for a file of {len(data)} bytes")
    if (8 + n) % 8:
        raise ModelError(f"{label}: header length {n} leaves the data buffer unaligned")
    try:
        text = data[8:8 + n].decode("utf-8")
    except UnicodeDecodeError as e:
        raise ModelError(f"{label}: header is not UTF-8 (byte {8 + e.start})") from None
    header = parse_json(text.rstrip(" "), f"{label}: header")
    if not isinstance(header, dict):
        raise ModelError(f"{label}: header must be a JSON object")
    meta = header.pop("__metadata__", None)
    if not isinstance(meta, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in meta.items()):
        raise ModelError(f"{label}: __metadata__ must be an object of strings")
    if len(header) > MAX_TENSORS:
        raise ModelError(f"{label}: {len(header)} tensors is more than {MAX_TENSORS}")
    base = 8 + n
    data_len = len(data) - base
    if info is not None:
        info.update(file_bytes=len(data), header_bytes=base)
    spans = []
    for name, entry in header.items():
        spans.append((_check_entry(name, entry, data_len), name))
    spans.sort(key=lambda s: (s[0][2], s[0][3]))
    pos = 0
    for (_, _, begin, end), name in spans:
        if begin != pos:
            what = "overlaps the tensor before it" if begin < pos else "leaves a gap"
            raise ModelError(f"{label}: tensor {short(name)} at data offset {begin} {what} "
                             f"(expected offset {pos})")
        pos = end
    if pos != data_len:
        raise ModelError(f"{label}: {data_len - pos} bytes after the last tensor "
                         f"(byte {base + pos}) are not described by the header")
    tensors = {}
    for (dtype, shape, begin, end), name in spans:
        arr = np.frombuffer(data, DTYPES[dtype], count=(end - begin) // DTYPES[dtype].itemsize,
                            offset=base + begin)
        tensors[name] = arr.reshape(shape)
    return meta, tensors


def container_bytes(metadata, tensors):
    """tensors + string metadata -> the bytes of a safetensors file (written
    by the safetensors library, so any safetensors tool reads it)."""
    from safetensors.numpy import save
    for name, arr in tensors.items():
        if arr.dtype.newbyteorder("<") not in DTYPES.values():
            raise ModelError(f"tensor {short(name)}: dtype {arr.dtype} cannot be stored")
    blob = save({k: np.ascontiguousarray(v) for k, v in tensors.items()},
                metadata=dict(metadata))
    # the library writes metadata keys in hash order; sort them so the same
    # model always gives the same bytes (offsets count from the data start)
    size = struct.unpack("<Q", blob[:8])[0]
    header = json.loads(blob[8:8 + size])
    header["__metadata__"] = dict(sorted(header.get("__metadata__", {}).items()))
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * (-(8 + len(text)) % 8)
    return struct.pack("<Q", len(text)) + text + blob[8 + size:]


def byte_tensors_container(metadata, blobs):
    """A safetensors file of U8 tensors {name: bytes} (in that order) with
    fixed key order, so the same content always gives the same bytes (the
    safetensors library orders metadata keys arbitrarily)."""
    header, pos = {"__metadata__": dict(metadata)}, 0
    for name, blob in blobs.items():
        header[name] = {"dtype": "U8", "shape": [len(blob)], "data_offsets": [pos, pos + len(blob)]}
        pos += len(blob)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-(8 + len(text)) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(blobs.values())


def write_bytes(path, blob, overwrite=False):
    """Write a file; refuse to replace an existing one unless overwrite=True."""
    mode = "wb" if overwrite else "xb"
    try:
        with open(path, mode) as f:
            f.write(blob)
    except FileExistsError:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it") from None

