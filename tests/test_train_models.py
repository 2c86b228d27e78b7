"""The networks build with the right shapes and layer counts."""
import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

from export import models  # noqa: E402
from export.layers import (LRN, BinaryConv2D, BinaryDense,  # noqa: E402
                           ChannelScale, ChannelZeroPad)

pytestmark = pytest.mark.tf
kl = keras.layers
LEVELS = (kl.Conv2D, BinaryConv2D, kl.Dense, BinaryDense, kl.MaxPooling2D,
          kl.Dropout)


def forward(model, shape):
    x = np.random.default_rng(0).normal(size=(2, *shape)).astype(np.float32)
    y = np.asarray(model(x, training=False))
    assert np.all(np.isfinite(y))
    return y


@pytest.mark.parametrize("scheme", ["float", "xnor", "scalar", "binary"])
def test_lenet_has_seven_levels(scheme):
    model = models.lenet(scheme)
    levels = [l for l in model.layers if isinstance(l, LEVELS)]
    kinds = [type(l).__name__ for l in levels]
    conv = "Conv2D" if scheme == "float" else "BinaryConv2D"
    dense = "Dense" if scheme == "float" else "BinaryDense"
    assert kinds == ["Conv2D", "MaxPooling2D", conv, "MaxPooling2D", dense,
                     "Dropout", "Dense"]
    assert model.output_shape == (None, 10)
    assert [l.name for l in levels][0] == "conv1"
    assert model.get_layer("conv2").output.shape[1:] == (14, 14, 64)
    assert model.get_layer("fc1").output.shape[1:] == (1024,)
    assert forward(model, (28, 28, 1)).shape == (2, 10)


def test_lenet_first_last_switch_and_width():
    model = models.lenet("binary", width=0.5, float_first=False,
                         float_last=False)
    weighted = models.weighted_layers(model)
    assert all(isinstance(l, (BinaryConv2D, BinaryDense)) for l in weighted)
    assert weighted[0].filters == 16 and weighted[2].units == 512
    assert weighted[-1].units == 10


@pytest.mark.parametrize("n", [1, 2, 3])
@pytest.mark.parametrize("bireal", [False, True])
def test_resnet_has_6n_plus_2_weighted_layers(n, bireal):
    model = models.resnet(n, "binary", bireal=bireal, channel_scale=bireal)
    weighted = models.weighted_layers(model)
    assert len(weighted) == 6 * n + 2
    assert isinstance(weighted[0], kl.Conv2D)        # float first conv
    assert isinstance(weighted[-1], kl.Dense)         # float last dense
    assert all(isinstance(l, BinaryConv2D) for l in weighted[1:-1])
    maps = [l.output.shape[1:] for l in weighted[1:-1]]
    per_stage = 2 * n
    assert maps[0] == (32, 32, 16)
    assert maps[per_stage] == (16, 16, 32)
    assert maps[2 * per_stage] == (8, 8, 64) and maps[-1] == (8, 8, 64)
    adds = [l for l in model.layers if isinstance(l, kl.Add)]
    assert len(adds) == (6 * n if bireal else 3 * n)
    assert len([l for l in model.layers if isinstance(l, ChannelZeroPad)]) == 2
    assert bool([l for l in model.layers if isinstance(l, ChannelScale)]) == bireal
    assert forward(model, (32, 32, 3)).shape == (2, 10)


def test_resnet_conv_shortcut_and_bn_after_conv():
    model = models.resnet(1, "xnor", shortcut="conv", bn_before_sign=False)
    weighted = models.weighted_layers(model)
    projections = [l for l in weighted if l.name.endswith("_proj")]
    assert len(projections) == 2 and len(weighted) == 8 + 2
    assert forward(model, (32, 32, 3)).shape == (2, 10)


def test_alexnet_any_size_and_classes():
    model = models.alexnet("binary", width=0.125, input_shape=(32, 32, 3),
                           classes=7)
    assert model.output_shape == (None, 7)
    assert len([l for l in model.layers if isinstance(l, LRN)]) == 2
    assert len(models.weighted_layers(model)) == 8
    assert forward(model, (32, 32, 3)).shape == (2, 7)
    small = models.alexnet("float", width=0.0625, input_shape=(67, 45, 3),
                           classes=3)
    assert forward(small, (67, 45, 3)).shape == (2, 3)


def test_build_by_name_and_bad_options():
    assert models.build("lenet", scheme="xnor").name == "lenet_xnor"
    with pytest.raises(ValueError):
        models.build("vgg")
    with pytest.raises(ValueError):
        models.lenet("ternary")
    with pytest.raises(ValueError):
        models.lenet("xnor", padding="same_one")
    with pytest.raises(ValueError):
        models.resnet(0)
    with pytest.raises(ValueError):
        models.resnet(1, shortcut="identity")
