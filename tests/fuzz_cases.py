"""Mutations of a valid .ebnn file for fuzzing the loader. A `pick` object
supplies choices, so the same mutators run under hypothesis (shrinking) and
in the long plain-random script (tests/fuzz_loader.py)."""
import json
import random
import struct
import tracemalloc
import zlib

import numpy as np

from edgebnn import ModelError, load_graph
from edgebnn.fold import fold
from filecraft import craft, split

HUGE = [-1, -(1 << 63), 1 << 31, 1 << 32, 1 << 40, 1 << 62, 1 << 64, 2 ** 100]
MAX_PEAK_BYTES = 48 << 20


class RandomPick:
    def __init__(self, seed):
        self.r = random.Random(seed)

    def integer(self, lo, hi):
        return self.r.randint(lo, hi)

    def choice(self, seq):
        return seq[self.r.randrange(len(seq))]


class HypothesisPick:
    def __init__(self, data):
        from hypothesis import strategies as st
        self.data, self.st = data, st

    def integer(self, lo, hi):
        return self.data.draw(self.st.integers(lo, hi))

    def choice(self, seq):
        return seq[self.data.draw(self.st.integers(0, len(seq) - 1))]


def _number(pick):
    return pick.choice([0, 1, -1, 2, 3, 7, 64, 65, 1 << 16, 1 << 20] + HUGE +
                       [0.5, -0.5, 1e30, "x", None, True, [], {}])


def truncate(blob, pick):
    return blob[:pick.integer(0, len(blob) - 1)]


def flip_bits(blob, pick):
    raw = bytearray(blob)
    (n,) = struct.unpack_from("<Q", blob)
    for _ in range(pick.integer(1, 8)):
        # half the flips land in the header, where they matter most
        hi = min(8 + n, len(raw)) - 1 if pick.integer(0, 1) else len(raw) - 1
        pos = pick.integer(0, hi)
        raw[pos] ^= 1 << pick.integer(0, 7)
    return bytes(raw)


def bad_length(blob, pick):
    return struct.pack("<Q", pick.choice(HUGE[2:] + [0, 1, 7, len(blob)])
                       % (1 << 64)) + blob[8:]


def _tensor_names(header):
    return sorted(k for k in header if k != "__metadata__")


def edit_entry(blob, pick):
    header, data = split(blob)
    name = pick.choice(_tensor_names(header))
    entry = header[name]
    what = pick.integer(0, 7)
    if what == 0:                                   # oversized / negative counts
        entry["shape"] = [pick.choice(HUGE + [0, 3])] + entry["shape"][1:]
    elif what == 1:                                 # negative or crazy offsets
        entry["data_offsets"][pick.integer(0, 1)] = pick.choice(HUGE + [-8, 0])
    elif what == 2:                                 # overlap with another tensor
        other = header[pick.choice(_tensor_names(header))]
        entry["data_offsets"] = list(other["data_offsets"])
    elif what == 3:                                 # wrong dtype
        entry["dtype"] = pick.choice(["F32", "F16", "I32", "U64", "U8", "F64", "BOOL", "", 5])
    elif what == 4:                                 # wrong shape, same size
        n = int(np.prod(entry["shape"]))
        entry["shape"] = pick.choice([[n], [1, n], [n, 1], list(reversed(entry["shape"])), []])
    elif what == 5:
        entry.pop(pick.choice(["dtype", "shape", "data_offsets"]))
    elif what == 6:                                 # rename / drop a tensor
        header[name + "_"] = header.pop(name)
    else:
        entry["shape"] = [_number(pick) for _ in range(pick.integer(0, 9))]
    return craft(header, data)


def _walk(node, path=()):
    """All (container, key) slots in a JSON tree."""
    slots = []
    items = node.items() if isinstance(node, dict) else enumerate(node) \
        if isinstance(node, list) else []
    for k, v in items:
        slots.append((node, k))
        slots.extend(_walk(v))
    return slots


def _edit_tree(graph, pick):
    slots = _walk(graph)
    for _ in range(pick.integer(1, 3)):
        node, key = pick.choice(slots)
        what = pick.integer(0, 3)
        if what == 0:
            node[key] = _number(pick)
        elif what == 1 and isinstance(node, list) and node:
            node.pop(key if key < len(node) else 0)
        elif what == 2:
            node[key] = pick.choice(["", "conv2d", "bits", "same_one", "input", "x" * 300,
                                     "fused_dense", "float"])
        else:
            node[key] = pick.choice([[], {}, [[[[]]]], [1, 2], [1 << 20, 1 << 20]])
        slots = _walk(graph)
        if not slots:
            break


def edit_graph(blob, pick):
    """Edit the graph document: version 1's metadata string, or version 2's
    compressed `graph` tensor (whose tensor table then changes too)."""
    header, data = split(blob)
    meta = header["__metadata__"]
    if "edgebnn" in meta:
        graph = json.loads(meta["edgebnn"])
        _edit_tree(graph, pick)
        meta["edgebnn"] = json.dumps(graph)
        return craft(header, data)
    begin, end = header["graph"]["data_offsets"]
    graph = json.loads(zlib.decompress(data[begin:end]))
    _edit_tree(graph, pick)
    z = zlib.compress(json.dumps(graph).encode())
    header["graph"]["shape"] = [len(z)]
    header["graph"]["data_offsets"] = [begin, begin + len(z)]
    return craft(header, data[:begin] + z + data[end:])


def garbage(blob, pick):
    n = pick.integer(0, 64)
    return bytes(pick.integer(0, 255) for _ in range(n))


# structured edits need an intact file, so they come first; byte-level
# damage may follow; every case has at least one mutation
STRUCTURED = [None, edit_entry, edit_entry, edit_graph, edit_graph]
BYTE_LEVEL = [None, truncate, flip_bits, bad_length, garbage]


def check_one(blob):
    """The property: load (and fold) either works or raises ModelError;
    nothing else escapes and memory stays bounded. Returns 'ok' or 'error'."""
    tracemalloc.start()
    try:
        try:
            fold(load_graph(blob))
            result = "ok"
        except ModelError as e:
            msg = str(e)
            if "\n" in msg or len(msg) > 600:
                raise AssertionError(f"error message not one short line: {msg[:2000]!r}") from e
            result = "error"
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    if peak > MAX_PEAK_BYTES + 8 * len(blob):
        raise AssertionError(f"peak allocation {peak} bytes for a {len(blob)}-byte file")
    return result


def mutate(blob, pick):
    first, second = pick.choice(STRUCTURED), pick.choice(BYTE_LEVEL)
    if first is None and second is None:
        second = flip_bits
    if first is not None:
        blob = first(blob, pick)
    if second is not None:
        blob = second(blob, pick)
    return blob
