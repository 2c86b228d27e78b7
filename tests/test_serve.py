"""`edgebnn serve` JSON API, over real HTTP on a free loopback port: info,
classification (same answer as the model, every field), size and type
limits with JSON errors, no file opened for an upload, concurrent requests,
and the float TFLite twin side by side when LiteRT and TensorFlow exist."""
import builtins
import io
import json
import os
import threading
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import demo_models
import numpy as np
import pytest
from PIL import Image

import edgebnn
from demos import server as srv
from edgebnn.cli import main


def start(model_path, tflite=None):
    model = edgebnn.load(model_path)
    httpd = srv.make_server(model, "test-model", port=0, tflite=tflite, quiet=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, f"http://127.0.0.1:{httpd.server_address[1]}"


def stop(httpd):
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def digit_model(tmp_path_factory):
    return demo_models.save_digit_model(tmp_path_factory.mktemp("m") / "digits.ebnn")


@pytest.fixture(scope="module")
def digits_server(digit_model):
    httpd, url = start(digit_model)
    yield url
    stop(httpd)


def request(url, data=None, headers=None, method=None):
    req = urllib.request.Request(url, data=data, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(req, timeout=20) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def png_bytes(array, fmt="PNG"):
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, fmt)
    return buf.getvalue()


def test_page_and_static_files(digits_server):
    status, headers, body = request(digits_server + "/")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert b'<canvas id="pad"' in body and b"/static/app.js" in body
    for name, ctype in (("app.js", "text/javascript"), ("style.css", "text/css")):
        status, headers, body = request(f"{digits_server}/static/{name}")
        assert status == 200 and headers["Content-Type"].startswith(ctype) and len(body) > 100
    for bad in ("/static/../server.py", "/static/%2e%2e/server.py", "/static/", "/nope",
                "/static/nope.js"):
        status, headers, body = request(digits_server + bad)
        assert status == 404 and json.loads(body)["status"] == 404


def test_info(digits_server):
    status, headers, body = request(digits_server + "/api/info")
    info = json.loads(body)
    assert status == 200 and headers["Content-Type"] == "application/json"
    assert info["model"] == "test-model" and info["labels"] == [str(i) for i in range(10)]
    assert info["input_shape"] == [28, 28, 1] and info["kind"] == "digits"
    assert info["invert"] is False and info["tflite"] is None
    assert info["max_upload_bytes"] == srv.MAX_BODY


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "BMP", "WEBP"])
def test_classify_digit(digits_server, digit_model, fmt):
    x, _ = demo_models.digits(1, seed=21)
    big = np.asarray(Image.fromarray(x[3, ..., 0]).resize((112, 112), Image.BICUBIC))
    status, _, body = request(digits_server + "/api/classify", png_bytes(big, fmt),
                                    {"Content-Type": f"image/{fmt.lower()}"})
    assert status == 200, body
    r = json.loads(body)
    assert set(r) == {"top", "latency_ms", "decode_ms", "tflite"} and r["tflite"] is None
    assert len(r["top"]) == 3 and r["latency_ms"] > 0 and r["decode_ms"] > 0
    probs = [t["probability"] for t in r["top"]]
    assert probs == sorted(probs, reverse=True)
    # the same bytes through the public API give the same answer
    expect = edgebnn.load(digit_model).classify(Image.open(io.BytesIO(png_bytes(big, fmt))),
                                                top_k=3)
    assert [t["label"] for t in r["top"]] == [lab for lab, _ in expect]
    assert np.allclose(probs, [p for _, p in expect], atol=1e-6)
    assert r["top"][0]["label"] == "3"


@pytest.mark.parametrize("body,status,words", [
    (b"", 400, "empty body"),
    (b"this is not an image", 415, "not an image"),
    (b"\x89PNG\r\n\x1a\n" + b"\0" * 40, 415, "not an image"),
    (b"GIF89a" + b"\xff" * 20, 415, "not an image"),
])
def test_bad_uploads_are_json_errors(digits_server, body, status, words):
    code, headers, reply = request(digits_server + "/api/classify", body,
                                   {"Content-Type": "application/octet-stream"}, method="POST")
    err = json.loads(reply)
    assert code == status and err["status"] == status and words in err["error"]
    assert headers["Content-Type"] == "application/json"


def test_too_large_upload_is_413_and_server_keeps_working(digits_server):
    body = os.urandom(srv.MAX_BODY + 1)
    code, _, reply = request(digits_server + "/api/classify", body,
                             {"Content-Type": "image/png"})
    assert code == 413 and "limit is 4194304 bytes" in json.loads(reply)["error"]
    # a PNG whose header claims 36 Mpixel (small on the wire): refused before decoding
    buf = io.BytesIO()
    Image.new("1", (6000, 6000)).save(buf, "PNG")
    assert len(buf.getvalue()) < srv.MAX_BODY
    code, _, reply = request(digits_server + "/api/classify", buf.getvalue())
    assert code == 413 and "6000x6000 pixels" in json.loads(reply)["error"]
    code, _, _ = request(digits_server + "/api/info")
    assert code == 200


def test_malformed_requests(digits_server):
    import http.client
    port = int(digits_server.rsplit(":", 1)[1])
    for headers, status in (({}, 411), ({"Content-Length": "abc"}, 400),
                            ({"Content-Length": "-5"}, 400)):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        c.putrequest("POST", "/api/classify")
        for k, v in headers.items():
            c.putheader(k, v)
        c.endheaders()
        r = c.getresponse()
        assert r.status == status and json.loads(r.read())["status"] == status
        c.close()
    code, _, _ = request(digits_server + "/api/nope", b"x")
    assert code == 404


def test_upload_never_touches_the_filesystem(digits_server, monkeypatch):
    """Every way to open a file fails while an upload is classified; the
    answer still comes: the image lives only in memory."""
    x, _ = demo_models.digits(1, seed=5)
    data = png_bytes(x[7, ..., 0])

    def refuse(*a, **k):
        raise AssertionError(f"file opened during an upload: {a[:1]}")
    monkeypatch.setattr(builtins, "open", refuse)
    monkeypatch.setattr(io, "open", refuse)
    monkeypatch.setattr(os, "open", refuse)
    code, _, reply = request(digits_server + "/api/classify", data)
    monkeypatch.undo()
    assert code == 200, reply
    assert json.loads(reply)["top"][0]["label"] == "7"


def test_concurrent_requests_agree(digits_server):
    x, _ = demo_models.digits(1, seed=9)
    bodies = [png_bytes(x[d, ..., 0]) for d in range(10)] * 3
    alone = [json.loads(request(digits_server + "/api/classify", b)[2])["top"] for b in bodies[:10]]
    with ThreadPoolExecutor(6) as pool:
        together = list(pool.map(lambda b: json.loads(
            request(digits_server + "/api/classify", b)[2])["top"], bodies))
    assert together == alone * 3


def test_serve_command_errors(digit_model, capsys, tmp_path):
    from edgebnn import GraphBuilder, save
    b = GraphBuilder([6], name="vector")
    b.add("dense", dict(units=2, scheme="float", alpha="none", input_scaling="none",
                        use_bias=False), dict(weight=np.ones((2, 6), np.float32)))
    save(tmp_path / "v.ebnn", b.build(labels=["a", "b"]))
    assert main(["serve", "--model", str(tmp_path / "v.ebnn"), "--port", "0"]) == 1
    assert "needs a model with an image input" in capsys.readouterr().err
    assert main(["serve", "--model", str(tmp_path / "none.ebnn")]) == 1
    assert "no model file" in capsys.readouterr().err
    assert main(["serve", "--model", digit_model, "--tflite", str(tmp_path / "none.tflite")]) in (1, 2)
    err = capsys.readouterr().err
    assert "none.tflite" in err or "ai-edge-litert" in err


def test_tflite_twin_side_by_side(tmp_path):
    pytest.importorskip("ai_edge_litert", reason="LiteRT (ai-edge-litert) not installed")
    tf = pytest.importorskip("tensorflow", reason="TensorFlow needed to make the .tflite twin")
    import keras
    ebnn = demo_models.save_colour_model(tmp_path / "c.ebnn")
    k = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.GlobalAveragePooling2D(),
                          keras.layers.Dense(3, use_bias=False, activation="softmax")])
    k.layers[-1].set_weights([np.eye(3, dtype=np.float32) * 10])
    twin = tmp_path / "c.tflite"
    twin.write_bytes(tf.lite.TFLiteConverter.from_keras_model(k).convert())
    httpd, url = start(ebnn, tflite=str(twin))
    try:
        assert json.loads(request(url + "/api/info")[2])["tflite"] == "c.tflite"
        img = np.zeros((50, 70, 3), np.uint8)
        img[..., 2], img[:10, :, 0] = 190, 250
        r = json.loads(request(url + "/api/classify", png_bytes(img))[2])
        assert r["top"][0]["label"] == "blue" and r["tflite"]["top"][0]["label"] == "blue"
        assert r["tflite"]["latency_ms"] > 0
        assert np.allclose([t["probability"] for t in r["top"]],
                           [t["probability"] for t in r["tflite"]["top"]], atol=1e-4)
    finally:
        stop(httpd)


def test_phone_photo_orientation_is_applied(digits_server, digit_model):
    """Phones store pixels sideways with an EXIF Orientation tag; the server
    turns the image upright before classifying it."""
    x, _ = demo_models.digits(1, seed=4)
    upright = Image.fromarray(x[7, ..., 0]).resize((112, 112), Image.BICUBIC)
    sideways = upright.transpose(Image.Transpose.ROTATE_90)      # what the sensor stored
    exif = Image.Exif()
    exif[0x0112] = 6                                             # "rotate 90 CW to view"
    buf = io.BytesIO()
    sideways.save(buf, "JPEG", quality=95, exif=exif)
    code, _, reply = request(digits_server + "/api/classify", buf.getvalue())
    assert code == 200
    want = edgebnn.load(digit_model).classify(np.asarray(upright), top_k=3)
    got = json.loads(reply)["top"]
    assert got[0]["label"] == want[0][0] == "7"
    assert abs(got[0]["probability"] - want[0][1]) < 0.05        # JPEG, not bit-exact
