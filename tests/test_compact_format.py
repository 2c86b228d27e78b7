"""Format version 2 (compact storage, edgebnn.compact): lossless round trips
that run bit for bit like version 1, float16 / int8 float parameters, the
byte breakdown, and hostile or truncated files refused with ModelError."""
import json
import struct
import zlib

import numpy as np
import pytest
from safetensors.numpy import load as st_load

import edgebnn.format
import model_zoo
from edgebnn import ModelError, load, load_graph, save
from edgebnn.compact import MAX_INFLATE, QUANT_LEVELS, quantize
from edgebnn.fold import fold
from edgebnn.format import byte_breakdown, to_bytes
from edgebnn.model import Model
from edgebnn.pretrained import SHIPPED, shipped_path
from filecraft import craft, split

ZOO = [("lenet", "binary"), ("lenet", "float"), ("resnet", "binary_k"),
       ("alexnet", "binary_weights"), ("alexnet", "binary"), ("resnet", "binary")]


def zoo_graph(net, scheme, seed=4):
    kw = {"size": 8} if net == "lenet" else {}
    return getattr(model_zoo, net)(np.random.default_rng(seed), scheme, **kw)


def same_graph(a, b):
    assert a.to_doc() == b.to_doc()
    for name, arr in a.tensors().items():
        other = b.tensors()[name]
        assert other.dtype == arr.dtype and other.shape == arr.shape, name
        np.testing.assert_array_equal(other, arr, err_msg=name)


def inputs(graph, n=3, seed=0):
    return np.random.default_rng(seed).standard_normal([n] + graph.input.shape).astype(np.float32)


@pytest.mark.parametrize("net,scheme", ZOO)
def test_compact_round_trip_is_lossless(tmp_path, net, scheme):
    graph = zoo_graph(net, scheme)
    save(tmp_path / "v1.ebnn", graph)
    save(tmp_path / "v2.ebnn", graph, compact=True)
    v1, v2 = load_graph(tmp_path / "v1.ebnn"), load_graph(tmp_path / "v2.ebnn")
    assert (v1.file_info["version"], v2.file_info["version"]) == (1, 2)
    same_graph(v1, v2)
    assert (tmp_path / "v2.ebnn").stat().st_size < (tmp_path / "v1.ebnn").stat().st_size
    x = inputs(graph)
    assert np.array_equal(Model(v1).run(x), Model(v2).run(x))


@pytest.mark.parametrize("case", model_zoo.AWKWARD[::3])
def test_compact_bits_of_awkward_channel_counts(case):
    """C = 1, 3, 63, 64, 65, 200: rows of ceil(C/8) bytes decode to the
    same words, and the folded plan runs identically."""
    graph, x = model_zoo.awkward_case("compact", *case)
    for g in (graph, fold(graph)):
        back = load_graph(to_bytes(g, compact=True))
        same_graph(g, back)
        assert np.array_equal(Model(g).run(x), Model(back).run(x))


def test_compact_file_is_plain_safetensors():
    blob = to_bytes(zoo_graph("resnet", "binary_k"), compact=True)
    tensors = st_load(blob)
    assert set(tensors) == {"data", "graph"}
    assert all(t.dtype == np.uint8 for t in tensors.values())
    header, _ = split(blob)
    assert header["__metadata__"] == {"format": "edgebnn", "format_version": "2"}
    doc = json.loads(zlib.decompress(tensors["graph"].tobytes()))
    assert {"name", "input", "ops", "output", "labels", "tensors"} == set(doc)
    assert {e[1] for e in doc["tensors"]} >= {"B1", "F32"}
    # the same graph always gives the same bytes
    assert to_bytes(zoo_graph("resnet", "binary_k"), compact=True) == blob


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_models_repack_losslessly(tmp_path, name):
    path = shipped_path(name)
    graph = load_graph(path)
    assert graph.file_info["version"] == 1      # old files still load as they are
    back = save(tmp_path / "c.ebnn", graph, compact=True)
    same_graph(graph, back)
    x = inputs(graph, 5)
    assert np.array_equal(load(path).run(x), load(tmp_path / "c.ebnn").run(x))
    parts = byte_breakdown(back)
    assert parts["binary weights"] == parts["binary bits"] // 8     # C % 8 == 0 here
    assert parts["file"] == (tmp_path / "c.ebnn").stat().st_size < len(open(path, "rb").read())


@pytest.mark.parametrize("compact", [False, True])
def test_f16_params_load_and_run(tmp_path, compact):
    graph = fold(zoo_graph("resnet", "binary_k"))
    back = save(tmp_path / "h.ebnn", graph, compact=compact, float_params="f16")
    floats = [a for a in back.tensors().values() if a.dtype.kind == "f"]
    assert floats and all(a.dtype == np.float16 for a in floats)
    for name, arr in graph.tensors().items():
        if arr.dtype == np.float32:
            np.testing.assert_array_equal(back.tensors()[name], arr.astype(np.float16))
    model = load(tmp_path / "h.ebnn")
    # widened once, at load: the engine's parameters are float32
    assert all(v.dtype != np.float16 for p in model._params.fused.values() for v in p.values())
    x = inputs(graph, 8)
    ref = Model(graph).run(x)
    got = model.run(x)
    assert got.dtype == np.float32 and np.all(np.isfinite(got))
    # float16 equals folding the rounded parameters: a float32 graph with the
    # same (widened) values gives exactly these outputs
    widened = save(tmp_path / "w.ebnn", back, float_params="f32")
    assert np.array_equal(Model(widened).run(x), got)
    assert np.mean(np.argmax(got, 1) == np.argmax(ref, 1)) >= 0.5


@pytest.mark.parametrize("float_params,enc", [("int8", "Q8"), ("int6", "Q6"), ("int5", "Q5"),
                                              ("int4", "Q4")])
def test_quantized_weights_per_channel(tmp_path, float_params, enc, quantize_all):
    graph = fold(zoo_graph("alexnet", "binary"))
    back = save(tmp_path / "q.ebnn", graph, compact=True, float_params=float_params)
    quantized = {n for n, (e, _, _) in back.storage.items() if e == enc}
    levels = QUANT_LEVELS[enc]
    assert quantized, back.storage
    for op in back.ops:
        for role, tname in op.tensor_names.items():
            orig = graph.by_name[op.name].params[role]
            got = back.tensors()[tname]
            if tname in quantized:
                assert role == "weight" and op.attrs["scheme"] == "float"
                scale, q = quantize(orig, levels)
                assert np.abs(q).max() <= levels
                assert got.dtype == np.float32
                np.testing.assert_array_equal(
                    got, q.astype(np.float32) * scale.reshape((-1,) + (1,) * (q.ndim - 1)))
                # no worse than scaling each channel's largest weight to `levels`
                flat, got_flat = orig.reshape(len(orig), -1), got.reshape(len(orig), -1)
                plain = np.abs(flat).max(1, keepdims=True) / levels
                plain_err = ((np.rint(flat / plain) * plain - flat) ** 2).sum(1)
                assert np.all(((got_flat - flat) ** 2).sum(1) <= plain_err * (1 + 1e-5) + 1e-12)
                # unclipped values are within half a step
                inside = np.abs(flat) <= scale[:, None] * levels
                assert np.all(np.abs(got_flat - flat)[inside] <=
                              np.broadcast_to(scale[:, None], flat.shape)[inside] * 0.5 + 1e-7)
            elif orig.dtype.kind == "f":
                assert got.dtype == np.float16
            else:
                np.testing.assert_array_equal(got, orig)
    out = load(tmp_path / "q.ebnn").run(inputs(graph))
    assert np.all(np.isfinite(out))


def test_int8_zero_filter_and_options():
    scale, q = quantize(np.zeros((2, 3), np.float32))
    assert np.all(scale == 0) and np.all(q == 0)
    graph = zoo_graph("lenet", "float")
    for option in ("int8", "int6", "int5", "int4"):
        with pytest.raises(ValueError, match="compact"):
            to_bytes(graph, float_params=option)
    with pytest.raises(ValueError, match="float_params"):
        to_bytes(graph, float_params="f8")


def test_f16_overflow_is_refused():
    graph = zoo_graph("lenet", "float")
    op = next(o for o in graph.ops if o.type == "batchnorm")
    op.params["var"] = np.full_like(op.params["var"], 1e6)
    with pytest.raises(ModelError, match="float16"):
        to_bytes(graph, compact=True, float_params="f16")


def test_breakdown_adds_up():
    for compact in (False, True):
        graph = load_graph(to_bytes(zoo_graph("resnet", "binary_k"), compact=compact))
        parts = byte_breakdown(graph)
        assert sum(parts[k] for k in ("binary weights", "float weights", "other params",
                                      "graph", "container")) == parts["file"]
        assert parts["container"] > 0 and parts["graph"] > 0
        stored, as_float = Model(graph).sizes()     # the file's bytes, not decoded arrays'
        assert stored == sum(parts[k] for k in ("binary weights", "float weights",
                                                "other params"))
        assert as_float == Model(zoo_graph("resnet", "binary_k")).sizes()[1]


# ------------------------------------------------------- hostile files ---
def compact_parts(blob):
    t = st_load(blob)
    doc = json.loads(zlib.decompress(t["graph"].tobytes()))
    return doc, bytearray(t["data"].tobytes())


def rebuild(doc, data, graph_bytes=None, meta=None, extra=None):
    """A version-2 file from a (possibly edited) document and data bytes."""
    g = graph_bytes if graph_bytes is not None else zlib.compress(json.dumps(doc).encode())
    header = {"__metadata__": meta or {"format": "edgebnn", "format_version": "2"},
              "data": {"dtype": "U8", "shape": [len(data)], "data_offsets": [0, len(data)]},
              "graph": {"dtype": "U8", "shape": [len(g)],
                        "data_offsets": [len(data), len(data) + len(g)]}}
    header.update(extra or {})
    return craft(header, bytes(data) + g)


def test_small_float_weights_stay_float16(tmp_path, monkeypatch):
    """Under intN only float weights of QUANTIZE_MIN_ELEMENTS or more values
    are quantized; the others are stored as float16, like every other float."""
    graph = fold(zoo_graph("alexnet", "binary"))
    sizes = {op.tensor_names["weight"]: op.params["weight"].size for op in graph.ops
             if "weight" in op.params and op.attrs.get("scheme") == "float"}
    assert edgebnn.format.QUANTIZE_MIN_ELEMENTS == 1024 and max(sizes.values()) < 1024
    back = save(tmp_path / "q.ebnn", graph, compact=True, float_params="int5")
    assert all(back.storage[name][0] == "F16" for name in sizes)
    # a threshold between the zoo's sizes (96 and 900) splits them
    monkeypatch.setattr(edgebnn.format, "QUANTIZE_MIN_ELEMENTS", 500)
    back = save(tmp_path / "q2.ebnn", graph, compact=True, float_params="int5")
    got = {name: back.storage[name][0] for name in sizes}
    assert got == {name: "Q5" if n >= 500 else "F16" for name, n in sizes.items()}
    assert set(got.values()) == {"Q5", "F16"}


@pytest.fixture
def quantize_all(monkeypatch):
    """The zoo networks are tiny: let int8..int4 take every float weight."""
    monkeypatch.setattr(edgebnn.format, "QUANTIZE_MIN_ELEMENTS", 0)


@pytest.fixture(scope="module")
def good():
    graph = fold(zoo_graph("alexnet", "binary"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(edgebnn.format, "QUANTIZE_MIN_ELEMENTS", 0)
        return to_bytes(graph, compact=True, float_params="int8")


def test_rebuild_of_a_good_file_loads(good):
    doc, data = compact_parts(good)
    load_graph(rebuild(doc, data))


def test_truncated_compact_files(good):
    for cut in sorted({1, 7, 8, 9, 100, len(good) // 2, len(good) - 100, len(good) - 1}):
        with pytest.raises(ModelError):
            load_graph(good[:cut])


def _entry(doc, enc):
    return next(e for e in doc["tensors"] if e[1] == enc)


def _offset(doc, name):
    """Data offset of a table entry (the table's tiling rule)."""
    from edgebnn.compact import ENCODINGS, stored_bytes
    pos = 0
    for n, enc, shape in doc["tensors"]:
        pos = -(-pos // ENCODINGS[enc][0]) * ENCODINGS[enc][0]
        if n == name:
            return pos
        pos += stored_bytes(enc, shape)
    raise KeyError(name)


def test_hostile_tables(good):
    def case(edit):
        doc, data = compact_parts(good)
        edit(doc, data)
        return rebuild(doc, data)

    def set_entry(enc, i, value):
        return lambda d, _: _entry(d, enc).__setitem__(i, value)

    cases = [
        (case(set_entry("B1", 1, "B2")), "encoding 'B2'"),
        (case(set_entry("Q8", 1, "F64")), "encoding 'F64'"),
        (case(set_entry("B1", 2, [1 << 40, 1 << 40, 8])), "more bytes than the file"),
        (case(set_entry("B1", 2, [-1, 3])), "non-negative"),
        (case(set_entry("B1", 2, [3, 0])), "non-zero"),
        (case(set_entry("F16", 0, "x" * 300)), "1..256"),
        (case(lambda d, _: d["tensors"].append(list(d["tensors"][0]))), "twice|bytes"),
        (case(lambda d, _: d["tensors"].pop()), "not described"),
        (case(lambda d, _: d.pop("tensors")), "needs a 'tensors' table"),
        (case(lambda d, _: d.__setitem__("tensors", {"a": 1})), "must be a list"),
        (case(lambda d, _: d["tensors"].__setitem__(0, ["a", "F32"])), "name, encoding, shape"),
        (case(lambda d, data: data.extend(b"\0" * 3)), "not described"),
        (case(lambda d, _: d["tensors"].reverse()), "padding|bytes|dtype|shape|bits above"),
    ]
    for blob, needle in cases:
        with pytest.raises(ModelError, match=needle):
            load_graph(blob)


def test_hostile_values(good):
    doc, data = compact_parts(good)

    def with_data(pos, value):
        raw = bytearray(data)
        raw[pos:pos + len(value)] = value
        return rebuild(doc, raw)

    b1 = next(e for e in doc["tensors"] if e[1] == "B1" and e[2][-1] % 8)
    row_end = _offset(doc, b1[0]) + (b1[2][-1] + 7) // 8 - 1
    q8 = _entry(doc, "Q8")
    q_at = _offset(doc, q8[0])
    f16 = _entry(doc, "F16")
    cases = [
        (with_data(row_end, b"\xff"), "bits above"),
        (with_data(q_at, np.float32(np.nan).tobytes()), "finite and non-negative"),
        (with_data(q_at, np.float32(-1).tobytes()), "finite and non-negative"),
        (with_data(q_at + 4 * q8[2][0], b"\x80"), r"-127\.\.127"),
        (with_data(_offset(doc, f16[0]), np.float16(np.inf).tobytes()), "NaN or infinite"),
    ]
    for blob, needle in cases:
        with pytest.raises(ModelError, match=needle):
            load_graph(blob)


@pytest.mark.parametrize("enc", ["Q6", "Q5", "Q4"])
def test_packed_codes(enc):
    """Sub-byte codes: one LSB-first bit stream of two's-complement values,
    sized and decoded exactly; unused high bits and -L-1 are refused."""
    from edgebnn.compact import QUANT_BITS, _decode_one, encode, stored_bytes
    bits, levels = QUANT_BITS[enc], QUANT_LEVELS[enc]
    rng = np.random.default_rng(bits)
    for shape in ([2, 3], [1, 5], [3, 2, 2, 7], [1, 1]):
        arr = rng.normal(size=shape).astype(np.float32)
        _, data = encode([("w", enc, arr, None)])
        n = int(np.prod(shape))
        assert len(data) == stored_bytes(enc, shape) == 4 * shape[0] + (n * bits + 7) // 8
        scale, q = quantize(arr, levels)
        # the stream by hand: value i's bit j at stream bit i*bits + j
        stream = np.frombuffer(data[4 * shape[0]:], np.uint8)
        for i, v in enumerate(q.reshape(-1).astype(np.int64)):
            code = sum(((int(stream[(i * bits + j) // 8]) >> ((i * bits + j) % 8)) & 1) << j
                       for j in range(bits))
            assert code == v & ((1 << bits) - 1)
        got = _decode_one(enc, shape, memoryview(data), "w")
        np.testing.assert_array_equal(
            got, q.astype(np.float32) * scale.reshape((-1,) + (1,) * (len(shape) - 1)))
    _, data = encode([("w", enc, np.ones((1, 5), np.float32), None)])
    assert (5 * bits) % 8, "the case needs unused bits in the last byte"
    bad = bytearray(data)
    bad[-1] |= 0x80
    with pytest.raises(ModelError, match="unused bits"):
        _decode_one(enc, [1, 5], memoryview(bytes(bad)), "w")
    bad = bytearray(data)
    bad[4] = (bad[4] & ~((1 << bits) - 1) & 0xFF) | (1 << (bits - 1))    # first value -L-1
    with pytest.raises(ModelError, match=rf"-{levels}\.\.{levels}"):
        _decode_one(enc, [1, 5], memoryview(bytes(bad)), "w")


def test_int4_layout_is_nibbles():
    """Q4 keeps its documented layout: two values a byte, the first low."""
    from edgebnn.compact import encode
    _, data = encode([("w", "Q4", np.array([[7, -7, 1]], np.float32), None)])
    assert data[4:] == bytes([0x7 | 0x9 << 4, 0x1])


def test_alignment_padding_must_be_zero():
    from edgebnn.compact import decode
    table = [["a", "U8", [1]], ["b", "F32", [1]]]
    tail = np.float32(2).tobytes()
    tensors, storage = decode(table, b"\x05\0\0\0" + tail)
    assert tensors["b"][0] == 2 and storage["b"] == ("F32", 4, [1])
    with pytest.raises(ModelError, match="padding"):
        decode(table, b"\x05\0\x01\0" + tail)
    with pytest.raises(ModelError, match="needs 4 bytes"):
        decode(table, b"\x05\0\0\0" + tail[:3])


def test_bit_rows_must_match_the_op(good):
    doc, data = compact_parts(good)
    b1 = next(e for e in doc["tensors"] if e[1] == "B1" and e[2][-1] % 8 > 1)
    b1[2][-1] -= 1                 # same bytes per row, same words: still refused
    with pytest.raises(ModelError, match="input channels|bits above"):
        load_graph(rebuild(doc, data))


def test_hostile_containers_and_streams(good):
    doc, data = compact_parts(good)
    text = json.dumps(doc).encode()
    z = zlib.compress(text)
    bomb = zlib.compress(b" " * (MAX_INFLATE * 1000 + (64 << 10) + 1000))
    cases = [
        (rebuild(doc, data, graph_bytes=z[:-5]), "truncated|zlib"),
        (rebuild(doc, data, graph_bytes=z + b"x"), "after the end"),
        (rebuild(doc, data, graph_bytes=b"not zlib at all"), "not a valid zlib"),
        (rebuild(doc, data, graph_bytes=bomb), "inflates to more than"),
        (rebuild(doc, data, graph_bytes=zlib.compress(b"\xff\xfe")), "UTF-8"),
        (rebuild(doc, data, graph_bytes=zlib.compress(b"[" * 1000 + b"]" * 1000)),
         "nested deeper"),
        (rebuild(doc, data, meta={"format": "edgebnn", "format_version": "3"}),
         "format_version"),
        (rebuild(doc, data, extra={"more": {"dtype": "U8", "shape": [0],
                                            "data_offsets": [len(data) + len(z),
                                                             len(data) + len(z)]}}),
         "exactly the tensors"),
    ]
    header, tail = split(good)
    header["data"]["shape"] = [1, header["data"]["shape"][0]]
    cases.append((craft(header, tail), "must be U8 of one dimension"))
    for blob, needle in cases:
        with pytest.raises(ModelError, match=needle):
            load_graph(blob)


def test_v1_reader_rules_unchanged_for_v1_files(tmp_path):
    """A version-1 file written today is what it always was: graph in the
    metadata, one safetensors tensor per parameter."""
    graph = zoo_graph("lenet", "binary")
    blob = to_bytes(graph)
    header, _ = split(blob)
    assert header["__metadata__"]["format_version"] == "1"
    assert set(header) - {"__metadata__"} == set(graph.tensors())
    assert struct.unpack_from("<Q", blob)[0] % 8 == 0
