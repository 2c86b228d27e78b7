"""`edgebnn serve`: a small web page on the device (standard library only).

GET  /                 the page (demos/static/index.html, app.js, style.css)
GET  /api/info         model name, labels, input spec, executor, TFLite twin
POST /api/classify     body = image bytes (PNG, JPEG, ...) -> top-3 labels,
                       probabilities, timings; 413 over 4 MiB, 415 if the
                       bytes are not an image, 400/411 for malformed requests.

Uploads are decoded in memory and never written to disk. Inference runs
under a lock: the model and its scratch memory are shared by all threads."""
import io
import json
import os
import sys
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np

from edgebnn.preprocess import load_image, normalize

from . import models
from .models import DemoError

MAX_BODY = 4 << 20          # bytes of one upload
MAX_PIXELS = 1 << 25        # 32 Mpixel: bigger than any camera, far below a bomb
MAX_DRAIN = 32 << 20        # an oversized upload up to this is read and dropped, so
                            # browsers see the 413 instead of a reset connection
STATIC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")
CONTENT_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                 ".css": "text/css; charset=utf-8", ".png": "image/png"}


class RequestError(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


def decode_upload(data):
    """Image bytes -> PIL image, upright (EXIF orientation applied)."""
    from PIL import Image, ImageOps
    if not data:
        raise RequestError(HTTPStatus.BAD_REQUEST, "empty body: send the image bytes")
    try:
        im = Image.open(io.BytesIO(data))
        if im.width * im.height > MAX_PIXELS:
            raise RequestError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                               f"image is {im.width}x{im.height} pixels, at most "
                               f"{MAX_PIXELS} pixels are accepted")
        im.load()
        return ImageOps.exif_transpose(im)
    except RequestError:
        raise
    except Image.DecompressionBombError:     # Pillow's own limit, far above ours
        raise RequestError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                           f"image has too many pixels (at most {MAX_PIXELS})") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise RequestError(HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
                           f"not an image this server can decode ({type(e).__name__})") from None


class TFLiteTwin:
    """The float TensorFlow Lite model of the same network, via LiteRT."""

    def __init__(self, path, spec):
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError:
            raise DemoError("--tflite needs LiteRT: pip install ai-edge-litert") from None
        if not os.path.isfile(path):
            raise DemoError(f"no TFLite file {path!r}")
        self.path, self.spec = path, spec
        self.interp = Interpreter(model_path=path)
        self.interp.allocate_tensors()
        self.inp = self.interp.get_input_details()[0]
        self.out = self.interp.get_output_details()[0]
        if list(self.inp["shape"][1:]) != list(spec.shape) or self.inp["dtype"] != np.float32:
            raise DemoError(f"{path}: input {list(self.inp['shape'])} {self.inp['dtype']} does not "
                            f"match the .ebnn model's float32 {spec.shape}")

    def probabilities(self, pixels):
        x = normalize(pixels[None], self.spec)
        self.interp.set_tensor(self.inp["index"], x)
        self.interp.invoke()
        y = self.interp.get_tensor(self.out["index"]).reshape(-1).astype(np.float64)
        if y.min() < 0 or abs(y.sum() - 1) > 1e-3:       # logits: softmax them
            e = np.exp(y - y.max())
            y = e / e.sum()
        return y


def _top(p, names, k=3):
    order = np.argsort(-p, kind="stable")[:k]
    return [{"label": names[i], "probability": float(p[i])} for i in order]


class Classifier:
    def __init__(self, model, name, tflite=None):
        if len(model.input_spec.shape) != 3:
            raise DemoError(f"the page needs a model with an image input [H, W, C], this one "
                            f"takes {model.input_spec.shape}")
        self.model, self.name = model, name
        self.twin = TFLiteTwin(tflite, model.input_spec) if tflite else None
        self.lock = threading.Lock()
        n = int(np.prod(self.model.run(np.zeros([1] + model.input_spec.shape, np.uint8)).shape))
        self.names = model.labels or [str(i) for i in range(n)]

    def info(self):
        spec = self.model.input_spec
        pre = spec.preprocess or {}
        return {"model": self.name, "labels": self.names, "input_shape": spec.shape,
                "invert": bool(pre.get("invert", False)),
                "kind": "digits" if spec.shape[2] == 1 else "photo",
                "executor": models.executor_note(self.model), "threads": self.model.threads,
                "tflite": None if self.twin is None else os.path.basename(self.twin.path),
                "max_upload_bytes": MAX_BODY}

    def classify(self, data):
        t0 = time.perf_counter()
        pixels = load_image(decode_upload(data), self.model.input_spec)
        t1 = time.perf_counter()
        with self.lock:
            t2 = time.perf_counter()
            p = self.model.probabilities(pixels[None])[0]
            t3 = time.perf_counter()
            twin = None
            if self.twin is not None:
                q = self.twin.probabilities(pixels)
                twin = {"top": _top(q, self.names), "latency_ms": (time.perf_counter() - t3) * 1e3}
        return {"top": _top(p, self.names), "latency_ms": (t3 - t2) * 1e3,
                "decode_ms": (t1 - t0) * 1e3, "tflite": twin}


class Handler(BaseHTTPRequestHandler):
    server_version = "edgebnn-demo"
    protocol_version = "HTTP/1.1"
    timeout = 30                # seconds a silent client may hold a thread

    def log_message(self, fmt, *args):
        if not self.server.quiet:
            super().log_message(fmt, *args)

    def _send(self, status, body, ctype, extra=()):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Content-Type-Options", "nosniff")
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status, obj):
        self._send(status, json.dumps(obj).encode(), "application/json",
                   [("Cache-Control", "no-store")])

    def _error(self, status, message):
        if status >= 400:
            self.close_connection = True    # the unread body must not be parsed as a request
        self._json(status, {"error": message, "status": int(status)})

    def do_GET(self):
        path = self.path.split("?", 1)[0]
        if path == "/api/info":
            return self._json(HTTPStatus.OK, self.server.classifier.info())
        name = "index.html" if path == "/" else path[len("/static/"):] \
            if path.startswith("/static/") else None
        # only plain file names that exist in static/: no way out of the folder
        if name and "/" not in name and name in os.listdir(STATIC):
            with open(os.path.join(STATIC, name), "rb") as f:
                body = f.read()
            return self._send(HTTPStatus.OK, body,
                              CONTENT_TYPES.get(os.path.splitext(name)[1], "application/octet-stream"))
        self._error(HTTPStatus.NOT_FOUND, f"no such page: {path}")

    def _drain(self, length):
        left = length if length <= MAX_DRAIN else 0
        while left > 0:
            chunk = self.rfile.read(min(left, 1 << 16))
            if not chunk:
                break
            left -= len(chunk)

    def do_POST(self):
        if self.path.split("?", 1)[0] != "/api/classify":
            return self._error(HTTPStatus.NOT_FOUND, f"no such endpoint: {self.path}")
        length = self.headers.get("Content-Length")
        if length is None:
            return self._error(HTTPStatus.LENGTH_REQUIRED, "Content-Length is required")
        try:
            length = int(length)
            if length < 0:
                raise ValueError
        except ValueError:
            return self._error(HTTPStatus.BAD_REQUEST, "bad Content-Length")
        if length > MAX_BODY:
            self._drain(length)
            return self._error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                               f"upload is {length} bytes, the limit is {MAX_BODY} bytes")
        data = self.rfile.read(length)
        if len(data) != length:
            return self._error(HTTPStatus.BAD_REQUEST, "body shorter than Content-Length")
        try:
            result = self.server.classifier.classify(data)
        except RequestError as e:
            return self._error(e.status, str(e))
        self._json(HTTPStatus.OK, result)


def make_server(model, name, host="127.0.0.1", port=0, tflite=None, quiet=False):
    """A ThreadingHTTPServer for `model` (not yet serving); port 0 = any free."""
    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    server.classifier = Classifier(model, name, tflite)
    server.quiet = quiet
    return server


def run(args):
    model = models.load(args.model, args.threads)
    name = f"{model.graph.name} ({os.path.basename(models.resolve(args.model))})"
    server = make_server(model, name, args.host, args.port, args.tflite)
    host, port = server.server_address[:2]
    shown = "localhost" if host == "127.0.0.1" else host
    print(f"serving {model.graph.name} ({models.executor_note(model)}) at "
          f"http://{shown}:{port}/  (Ctrl-C to stop)", file=sys.stderr)
    if host == "0.0.0.0":
        print("listening on every interface: open http://<this device's address>:"
              f"{port}/ from another machine on the LAN", file=sys.stderr)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
