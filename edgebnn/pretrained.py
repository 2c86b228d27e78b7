"""The pretrained models shipped inside the package (edgebnn/models/), by
short name, so every command accepts `lenet` or `resnet` where it takes a
.ebnn path."""
import os

SHIPPED = {"lenet": "lenet_mnist.ebnn", "resnet": "resnet_cifar10.ebnn"}
MODELS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "models")


def shipped_path(name):
    """Path of shipped model `name` (a key of SHIPPED); it may be missing
    from a trimmed installation: check os.path.isfile."""
    return os.path.join(MODELS_DIR, SHIPPED[name])


def resolve(name_or_path):
    """A shipped name -> its path when no file of that name exists here;
    anything else is returned unchanged (a path, checked by the loader)."""
    if name_or_path in SHIPPED and not os.path.exists(name_or_path):
        return shipped_path(name_or_path)
    return name_or_path
