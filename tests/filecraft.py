"""Hand-made safetensors bytes for loader tests (bypassing the writer)."""
import json
import struct

import numpy as np

import model_zoo
from edgebnn import save


def craft(header, data=b"", pad=True):
    text = json.dumps(header).encode()
    if pad:
        text += b" " * (-(8 + len(text)) % 8)
    return struct.pack("<Q", len(text)) + text + data


def split(blob):
    (n,) = struct.unpack_from("<Q", blob)
    return json.loads(blob[8:8 + n]), blob[8 + n:]


def small_model_bytes(tmp_path, name="small.ebnn"):
    """A real, small binary LeNet-shaped file written by the writer."""
    graph = model_zoo.lenet(np.random.default_rng(1), "binary", size=8)
    path = tmp_path / name
    save(path, graph)
    return path.read_bytes()
