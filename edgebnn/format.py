"""The .ebnn model file: a safetensors container whose metadata holds the
graph as JSON (docs/FORMAT.md). save() and load_graph() are the only ways
the project writes and reads model files, so every file is built and
checked the same way.

Version 1 stores each parameter as a safetensors tensor and the graph as a
metadata string. Version 2 (compact=True) stores two tensors: `data`, every
parameter in compact encodings (edgebnn.compact), and `graph`, the
zlib-compressed graph document with the table describing `data`."""
import json

import numpy as np

from . import compact as v2
from .container import (byte_tensors_container, container_bytes, dtype_code, parse_json,
                        read_container, write_bytes)
from .errors import ModelError, short
from .graph import Graph

FORMAT_NAME = "edgebnn"
FORMAT_VERSION = 1
COMPACT_VERSION = 2
SUPPORTED_VERSIONS = (1, 2)
FLOAT_PARAMS = v2.FLOAT_PARAMS
F16_MAX = float(np.finfo(np.float16).max)
QUANTIZED = v2.QUANTIZED
# smaller float weight tensors stay float16 under int8..int4 (TF Lite's
# dynamic-range quantization skips tensors under 1024 elements likewise):
# they save next to nothing and are often the most sensitive (a 3-channel
# stem, a 10-class head)
QUANTIZE_MIN_ELEMENTS = 1024
# what --float-params means, for every command that writes files (each adds
# how to measure the effect)
FLOAT_PARAMS_HELP = (
    "f32 (default): float parameters as they are (lossless); f16: all of them float16; "
    "int8 / int6 / int5 / int4: float conv/dense weights of at least "
    f"{QUANTIZE_MIN_ELEMENTS} values as that many bits with a scale per output channel, "
    "the other float parameters float16 (needs --compact). f16 and intN change outputs")


def _float_weight_roles(graph):
    """Tensor names of float-scheme conv/dense weights with at least
    QUANTIZE_MIN_ELEMENTS values (the int8..int4 candidates)."""
    return {op.tensor_names["weight"] for op in graph.ops
            if "weight" in op.params and op.attrs.get("scheme") == "float"
            and op.params["weight"].size >= QUANTIZE_MIN_ELEMENTS}


def _to_half(name, arr):
    if arr.size and np.abs(arr.astype(np.float64)).max() > F16_MAX:
        raise ModelError(f"tensor {short(name)}: values up to {np.abs(arr).max():.4g} do not fit "
                         f"float16 (max {F16_MAX:g}); store it with float_params='f32'")
    return arr.astype(np.float16)


def plan_encodings(graph, float_params="f32", compact_layout=False):
    """[(name, encoding, array, channels or None)] in data order: the encoding
    each parameter gets. float_params: f32 keeps floats as they are (float32
    or already-float16), f16 stores every float parameter as float16, int8
    (int6, int5, int4) stores float conv/dense weights of at least
    QUANTIZE_MIN_ELEMENTS values as that many bits + a float32 scale
    per output channel and the other float parameters as float16."""
    if float_params not in FLOAT_PARAMS:
        raise ValueError(f"float_params must be one of {list(FLOAT_PARAMS)}, got {float_params!r}")
    if float_params in QUANTIZED and not compact_layout:
        raise ValueError(f"float_params={float_params!r} needs the compact layout (compact=True)")
    channels = {}
    for op in graph.ops:
        for role, tname in op.tensor_names.items():
            if op.params[role].dtype == np.uint64:
                channels[tname] = op.fan_in
    quantize = _float_weight_roles(graph) if float_params in QUANTIZED else set()
    out = []
    for name, arr in graph.tensors().items():
        floating = arr.dtype.kind == "f"
        if name in quantize and arr.ndim >= 1 and arr.shape[0] > 0:
            out.append((name, QUANTIZED[float_params], arr, None))
            continue
        if floating and float_params != "f32":
            arr = _to_half(name, arr)
        if arr.dtype == np.uint64 and compact_layout:
            out.append((name, "B1", arr, channels[name]))
            continue
        out.append((name, dtype_code(arr.dtype), arr, None))
    return out


def to_bytes(graph, compact=False, float_params="f32"):
    """The file bytes of a Graph (not validated; save() validates)."""
    doc = json.loads(json.dumps(graph.to_doc()))
    entries = plan_encodings(graph, float_params, compact)
    if not compact:
        meta = {"format": FORMAT_NAME, "format_version": str(FORMAT_VERSION),
                "edgebnn": json.dumps(doc, separators=(",", ":"))}
        return container_bytes(meta, {name: arr for name, _, arr, _ in entries})
    table, data = v2.encode(entries)
    doc["tensors"] = table
    text = json.dumps(doc, separators=(",", ":"))
    meta = {"format": FORMAT_NAME, "format_version": str(COMPACT_VERSION)}
    return byte_tensors_container(meta, {"data": data, "graph": v2.compress_graph(text)})


def save(path, graph, overwrite=False, compact=False, float_params="f32"):
    """Write a validated Graph to path (refuses to replace a file unless
    overwrite=True). compact=True writes format version 2 (lossless by
    itself); float_params 'f16' / 'int8' ... 'int4' round float parameters (lossy, see
    plan_encodings). Returns the Graph as the file holds it."""
    # round-trip the document through the validator: never write a file
    # the loader would refuse
    Graph.from_doc(json.loads(json.dumps(graph.to_doc())), graph.tensors())
    blob = to_bytes(graph, compact, float_params)
    written = load_graph(blob)
    write_bytes(path, blob, overwrite)
    return written


def _check_version(meta):
    if meta.get("format") != FORMAT_NAME:
        raise ModelError(f"metadata 'format' is {meta.get('format')!r}, not {FORMAT_NAME!r}: "
                         "not an edgebnn model")
    version = meta.get("format_version", "")
    if not version.isdigit() or int(version) not in SUPPORTED_VERSIONS:
        raise ModelError(f"format_version {short(version)} is not supported "
                         f"(this reader knows {list(SUPPORTED_VERSIONS)})")
    return int(version)


def _compact_parts(tensors):
    if set(tensors) != {"data", "graph"}:
        raise ModelError(f"format version 2 holds exactly the tensors 'data' and 'graph', "
                         f"got {short(sorted(tensors))}")
    for name in ("data", "graph"):
        if tensors[name].dtype != np.uint8 or tensors[name].ndim != 1:
            raise ModelError(f"tensor {name!r} must be U8 of one dimension")
    return tensors["data"], tensors["graph"]


def load_graph(source):
    """Read and fully validate a model file (path or bytes) -> Graph. The
    Graph's `storage` maps each tensor to (encoding, stored bytes, shape as
    stored) and `file_info` gives the version and the byte split."""
    info = {}
    meta, tensors = read_container(source, info)
    version = _check_version(meta)
    if version == 1:
        if "edgebnn" not in meta:
            raise ModelError("metadata has no 'edgebnn' graph")
        doc = parse_json(meta["edgebnn"], "graph metadata")
        storage = {name: (dtype_code(a.dtype), a.nbytes,
                          list(a.shape)) for name, a in tensors.items()}
        graph = Graph.from_doc(doc, tensors)
        info["graph_bytes"] = len(meta["edgebnn"].encode("utf-8"))
    else:
        data, packed_graph = _compact_parts(tensors)
        text = v2.decompress_graph(packed_graph)
        doc = parse_json(text, "graph")
        if not isinstance(doc, dict) or "tensors" not in doc:
            raise ModelError("graph: format version 2 needs a 'tensors' table")
        tensors, storage = v2.decode(doc.pop("tensors"), data)
        graph = Graph.from_doc(doc, tensors)
        v2.check_bit_channels(graph, storage)
        info["graph_bytes"] = packed_graph.size
    info["version"] = version
    graph.storage, graph.file_info = storage, info
    return graph


def byte_breakdown(graph):
    """Where a loaded file's bytes go: {part: bytes} for binary weights,
    float weights (of float conv/dense), other parameters (batchnorm, scales,
    thresholds), the graph document and the rest of the container (its JSON
    header and alignment), plus 'file' and 'binary bits' (one bit per binary
    weight: what any packing needs at least)."""
    storage, info = graph.storage, graph.file_info
    parts = {"binary weights": 0, "float weights": 0, "other params": 0}
    bits = 0
    seen = set()
    for op in graph.ops:
        for role, tname in op.tensor_names.items():
            if tname in seen:
                continue
            seen.add(tname)
            enc, nbytes, _ = storage[tname]
            if op.params[role].dtype == np.uint64:
                parts["binary weights"] += nbytes
                bits += op.params[role].size // op.params[role].shape[-1] * op.fan_in
            elif role == "weight":
                parts["float weights"] += nbytes
            else:
                parts["other params"] += nbytes
    parts["graph"] = info["graph_bytes"]
    parts["container"] = info["file_bytes"] - sum(parts.values())
    parts["file"] = info["file_bytes"]
    parts["binary bits"] = bits
    return parts


def encodings_used(graph):
    """{encoding: number of tensors} of a loaded file."""
    out = {}
    for enc, _, _ in graph.storage.values():
        out[enc] = out.get(enc, 0) + 1
    return out
