"""The .ebnn model file: a safetensors container whose metadata holds the
graph as JSON (docs/FORMAT.md). save() and load_graph() are the only ways
the project writes and reads model files, so every file is built and
checked the same way."""
import json

from .container import parse_json, read_container, write_container
from .errors import ModelError, short
from .graph import Graph

FORMAT_NAME = "edgebnn"
FORMAT_VERSION = 1
SUPPORTED_VERSIONS = (1,)


def save(path, graph, overwrite=False):
    """Write a validated Graph to path (refuses to replace a file unless
    overwrite=True)."""
    # round-trip the document through the validator: never write a file
    # the loader would refuse
    doc = json.loads(json.dumps(graph.to_doc()))
    tensors = graph.tensors()
    Graph.from_doc(doc, tensors)
    meta = {"format": FORMAT_NAME, "format_version": str(FORMAT_VERSION),
            "edgebnn": json.dumps(doc, separators=(",", ":"))}
    write_container(path, meta, tensors, overwrite=overwrite)


def load_graph(source):
    """Read and fully validate a model file (path or bytes) -> Graph."""
    meta, tensors = read_container(source)
    if meta.get("format") != FORMAT_NAME:
        raise ModelError(f"metadata 'format' is {meta.get('format')!r}, not {FORMAT_NAME!r}: "
                         "not an edgebnn model")
    version = meta.get("format_version", "")
    if not version.isdigit() or int(version) not in SUPPORTED_VERSIONS:
        raise ModelError(f"format_version {short(version)} is not supported "
                         f"(this reader knows {list(SUPPORTED_VERSIONS)})")
    if "edgebnn" not in meta:
        raise ModelError("metadata has no 'edgebnn' graph")
    doc = parse_json(meta["edgebnn"], "graph metadata")
    return Graph.from_doc(doc, tensors)
