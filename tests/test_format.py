"""The .ebnn writer and the validating loader."""
import json

import sys

import numpy as np
import pytest
from safetensors.numpy import load as st_load

import model_zoo
from edgebnn import GraphBuilder, ModelError, load_graph, save
from edgebnn.bits import pack_signs
from filecraft import craft, small_model_bytes, split


def test_round_trip_keeps_graph_and_tensors(tmp_path):
    graph = model_zoo.alexnet(np.random.default_rng(3), "binary")
    save(tmp_path / "a.ebnn", graph)
    back = load_graph(tmp_path / "a.ebnn")
    assert back.to_doc() == json.loads(json.dumps(graph.to_doc()))
    for name, arr in graph.tensors().items():
        np.testing.assert_array_equal(back.tensors()[name], arr)
        assert back.tensors()[name].dtype == arr.dtype
    assert back.input.preprocess["mean"] == [0.5, 0.4, 0.3]
    assert back.labels == [f"class{i}" for i in range(6)]


def test_file_is_plain_safetensors(tmp_path):
    blob = small_model_bytes(tmp_path)
    tensors = st_load(blob)                      # any safetensors tool reads it
    header, _ = split(blob)
    assert header["__metadata__"]["format"] == "edgebnn"
    assert header["__metadata__"]["format_version"] == "1"
    assert set(tensors) == set(load_graph(blob).tensors())
    assert any(v.dtype == np.uint64 for v in tensors.values())


def test_same_content_same_bytes(tmp_path):
    """Metadata keys are written sorted, whatever order they come in (the
    safetensors library alone writes them in hash order)."""
    from safetensors import safe_open
    from edgebnn.container import container_bytes
    tensors = {"b": np.arange(3, dtype=np.float32), "a": np.ones(2, np.uint64)}
    meta = {f"k{i}": f"v{i}\u00e9" for i in range(12)}
    first = container_bytes(meta, tensors)
    assert first == container_bytes(dict(reversed(list(meta.items()))), tensors)
    assert (8 + int.from_bytes(first[:8], "little")) % 8 == 0
    (tmp_path / "m.safetensors").write_bytes(first)
    with safe_open(tmp_path / "m.safetensors", "np") as f:   # any tool reads it
        assert f.metadata() == meta
        assert f.get_tensor("b").tolist() == [0, 1, 2]
        assert f.get_tensor("a").dtype == np.uint64


def test_refuses_to_overwrite(tmp_path):
    graph = model_zoo.lenet(np.random.default_rng(1), "float", size=8)
    save(tmp_path / "m.ebnn", graph)
    with pytest.raises(FileExistsError):
        save(tmp_path / "m.ebnn", graph)
    save(tmp_path / "m.ebnn", graph, overwrite=True)
    load_graph(tmp_path / "m.ebnn")


def _rewrite(blob, edit_header=None, edit_graph=None, data=None):
    header, tail = split(blob)
    if edit_graph:
        g = json.loads(header["__metadata__"]["edgebnn"])
        edit_graph(g)
        header["__metadata__"]["edgebnn"] = json.dumps(g)
    if edit_header:
        edit_header(header)
    return craft(header, tail if data is None else data)


def _first(g, type_):
    return next(op for op in g["ops"] if op["type"] == type_)


GRAPH_EDITS = {
    "unknown op type": lambda g: _first(g, "sign").update(type="bogus"),
    "unknown attributes": lambda g: _first(g, "conv2d")["attrs"].update(foo=1),
    "missing attributes": lambda g: _first(g, "conv2d")["attrs"].pop("strides"),
    "must be one of": lambda g: _first(g, "conv2d")["attrs"].update(padding="reflect"),
    "must be an integer in": lambda g: _first(g, "conv2d")["attrs"].update(filters=0),
    "ops must be in order": lambda g: g["ops"].reverse(),
    "already used": lambda g: g["ops"][1].update(name=g["ops"][0]["name"]),
    "params missing": lambda g: _first(g, "batchnorm")["params"].pop("gamma"),
    "not in the file": lambda g: _first(g, "batchnorm")["params"].update(gamma="nope"),
    "labels": lambda g: g["labels"].pop(),
    "output": lambda g: g.update(output="nowhere"),
    "does not fit": lambda g: g["input"].update(shape=[2, 2, 1]),
    "must be a finite number": lambda g: _first(g, "batchnorm")["attrs"].update(eps=-1),
}


@pytest.mark.parametrize("needle", sorted(GRAPH_EDITS))
def test_graph_errors_say_what_and_where(tmp_path, needle):
    blob = small_model_bytes(tmp_path)
    bad = _rewrite(blob, edit_graph=GRAPH_EDITS[needle])
    with pytest.raises(ModelError, match=needle):
        load_graph(bad)


def test_param_dtype_shape_and_value_checks(tmp_path):
    blob = small_model_bytes(tmp_path)
    header, data = split(blob)
    conv = next(k for k, v in header.items() if k.endswith(".weight") and v["dtype"] == "U64")
    h2 = json.loads(json.dumps(header))
    h2[conv]["dtype"] = "F32"                 # same byte count, wrong dtype
    h2[conv]["shape"] = h2[conv]["shape"][:-1] + [h2[conv]["shape"][-1] * 2]
    with pytest.raises(ModelError, match=f"tensor '{conv}'.*dtype must be U64"):
        load_graph(craft(h2, data))
    h3 = json.loads(json.dumps(header))
    s = h3[conv]["shape"]
    h3[conv]["shape"] = [s[0] * s[1], 1] + s[2:]     # same size, wrong shape
    with pytest.raises(ModelError, match="shape must be"):
        load_graph(craft(h3, data))
    # set an unused high bit of a packed word (conv over 6 channels)
    b, e = header[conv]["data_offsets"]
    raw = bytearray(data)
    raw[b + 7] |= 0x80
    with pytest.raises(ModelError, match="high bits"):
        load_graph(craft(header, bytes(raw)))
    var = next(k for k in header if k.endswith(".var"))
    raw = bytearray(data)
    b = header[var]["data_offsets"][0]
    raw[b:b + 4] = np.float32(np.nan).tobytes()
    with pytest.raises(ModelError, match="NaN"):
        load_graph(craft(header, bytes(raw)))
    raw[b:b + 4] = np.float32(-1).tobytes()
    with pytest.raises(ModelError, match="variance"):
        load_graph(craft(header, bytes(raw)))


def test_container_errors(tmp_path):
    blob = small_model_bytes(tmp_path)
    header, data = split(blob)
    name = next(iter(k for k in header if k != "__metadata__"))
    cases = []
    cases.append((blob[:5], "too short"))
    cases.append((b"\xff" * 8 + blob[8:], "header length"))
    cases.append((blob[:len(blob) - 3],
                  "outside the data buffer|after the last tensor|offsets give"))
    cases.append((blob + b"\0" * 8, "not described"))
    def edited(change):
        h = json.loads(json.dumps(header))
        change(h)
        return craft(h, data)

    def set_in(*path_and_value):
        *path, key, value = path_and_value

        def change(h):
            for p in path:
                h = h[p]
            h[key] = value
        return change

    first = header[name]["data_offsets"][0]
    cases.append((edited(set_in(name, "data_offsets", [first - 8, header[name]["data_offsets"][1]])),
                  "offsets|overlaps|outside"))
    cases.append((edited(set_in(name, "data_offsets", [-8, 0])), "outside the data buffer"))
    cases.append((edited(set_in(name, "shape", [1 << 40, 1 << 40])), "more bytes than the file"))
    cases.append((edited(set_in(name, "dtype", "F64")), "dtype 'F64'"))
    cases.append((edited(set_in("__metadata__", "format_version", "9")), "format_version"))
    cases.append((edited(set_in("__metadata__", "format", "other")), "not an edgebnn model"))
    cases.append((edited(set_in("extra", {"dtype": "U8", "shape": [0], "data_offsets": [0, 0]})),
                  "not used by any op"))
    text = json.dumps(header)
    dup = text[:-1] + ', "__metadata__": {}}'
    cases.append((craft_raw(dup, data), "duplicate JSON key"))
    cases.append((craft_raw("[" * 100000 + "]" * 100000, b""), "nested deeper"))
    cases.append((craft_raw('{"a": NaN}', b""), "NaN is not allowed"))
    cases.append((craft_raw('\xff\xfe', b""), "invalid JSON|not UTF-8"))
    for bad, needle in cases:
        with pytest.raises(ModelError, match=needle):
            load_graph(bad)


def craft_raw(text, data):
    raw = text.encode("utf-8", "surrogateescape") if isinstance(text, str) else text
    raw += b" " * (-(8 + len(raw)) % 8)
    return len(raw).to_bytes(8, "little") + raw + data


def test_missing_file_is_model_error(tmp_path):
    with pytest.raises(ModelError, match="cannot read"):
        load_graph(tmp_path / "none.ebnn")


def test_builder_rejects_bits_into_float_op():
    b = GraphBuilder([4, 4, 3])
    b.add("fused_conv2d", dict(filters=2, kernel=[1, 1], strides=[1, 1], padding="valid",
                               scheme="binary", input_scaling="none", output="bits",
                               clamp=None),
          dict(weight=pack_signs(np.ones((2, 1, 1, 3))), thresholds=np.zeros(2, np.int32),
               flip=np.zeros(2, np.uint8)))
    with pytest.raises(ModelError, match="needs float inputs"):
        b.add("flatten")


def test_preprocess_checked():
    pre = {"size": [4, 4], "channels": 3, "scale": 1 / 255, "mean": [0, 0, 0],
           "std": [1, 1, 0], "invert": False}
    with pytest.raises(ModelError, match="std must be positive"):
        GraphBuilder([4, 4, 3], preprocess=pre).add("relu")
    pre.update(std=[1, 1, 1], size=[5, 4])
    with pytest.raises(ModelError, match="size"):
        GraphBuilder([4, 4, 3], preprocess=pre).add("relu")


def test_long_graphs_are_safe():
    """Thousands of ops sharing one weight tensor, and a maxpool chain
    deeper than Python's recursion limit after a foldable conv: validation
    and folding never recurse (a recursive walk would raise RecursionError
    here). No wall-clock bound: it failed under emulation on a loaded
    machine, and tests check correctness, not time."""
    from edgebnn.fold import fold
    rng = np.random.default_rng(0)
    b = GraphBuilder([3, 3, 4])
    w = pack_signs(rng.standard_normal((4, 1, 1, 4)))
    doc = b._doc
    conv_attrs = dict(filters=4, kernel=[1, 1], strides=[1, 1], padding="valid",
                      scheme="binary", alpha="none", input_scaling="none", use_bias=False)
    b._tensors["w"] = w
    prev = "input"
    for i in range(3000):
        doc["ops"].append({"name": f"c{i}", "type": "conv2d", "inputs": [prev],
                           "attrs": conv_attrs, "params": {"weight": "w"}})
        prev = f"c{i}"
    for i in range(1500):
        doc["ops"].append({"name": f"p{i}", "type": "maxpool", "inputs": [prev],
                           "attrs": {"pool": [1, 1], "strides": [1, 1], "padding": "valid"},
                           "params": {}})
        prev = f"p{i}"
    doc["ops"].append({"name": "last", "type": "conv2d", "inputs": [prev],
                       "attrs": conv_attrs, "params": {"weight": "w"}})
    doc["output"] = "last"
    assert sys.getrecursionlimit() < 1500 + 3001
    graph = b.build(check_labels=True)
    folded = fold(graph)
    assert folded.by_name["c2999"].kind == "bits"
