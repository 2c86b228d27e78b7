"""edgebnn: run binarized neural networks from a single .ebnn file, without
TensorFlow. The compiled engine (edgebnn._engine) is imported lazily so the
file tools work without it; running a model requires it."""
from .errors import ModelError
from .format import load_graph, save
from .graph import Graph, GraphBuilder

__version__ = "0.1.0"


def load(path, backend="auto", threads=1):
    """Load a .ebnn model (a path, the file's bytes, or the name of a shipped
    model, 'lenet' / 'resnet', as on the command line) -> Model (see
    edgebnn.model). ImportError if the compiled engine is not built."""
    from .model import Model
    from .pretrained import resolve
    if isinstance(path, str):
        path = resolve(path)
    return Model(load_graph(path), backend=backend, threads=threads)


__all__ = ["ModelError", "load", "load_graph", "save", "Graph", "GraphBuilder"]
