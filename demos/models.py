"""Which model a demo runs: a shipped name (lenet, resnet) or a path."""
import os

import edgebnn
from edgebnn.pretrained import SHIPPED, shipped_path


class DemoError(Exception):
    """A condition the user can fix (missing model, data, camera): printed
    as one message, exit status `code`."""

    def __init__(self, message, code=1):
        super().__init__(message)
        self.code = code


def resolve(model):
    """'lenet' | 'resnet' | path -> an existing file path (DemoError if not)."""
    if model in SHIPPED:
        path = shipped_path(model)
        if not os.path.isfile(path):
            raise DemoError(f"the shipped model {SHIPPED[model]} is not in this installation "
                            f"({path}); pass --model PATH to a .ebnn file")
        return path
    if not os.path.isfile(model):
        raise DemoError(f"no model file {model!r} (use lenet, resnet or a path to a .ebnn file)")
    return model


def load(model, threads=1):
    m = edgebnn.load(resolve(model))
    m.threads = threads
    return m


def dataset_of(model):
    """The dataset matching a model's input: grey 28x28-ish -> mnist,
    colour -> cifar10."""
    shape = model.input_spec.shape
    if len(shape) != 3:
        raise DemoError("the demos need a model with an image input [H, W, C]")
    return "mnist" if shape[2] == 1 else "cifar10"


def executor_note(model):
    return f"compiled engine, ISA {model.isa}"
