"""`edgebnn demo` and the terminal pictures: real runs on data the tests
write (rendered digits as MNIST IDX files, flat colours as a CIFAR-10
python batch) and, when present, the shared real datasets."""
import os
import pickle
import re

import demo_models
import numpy as np
import pytest

import edgebnn
from demos import models, terminal
from edgebnn import GraphBuilder, save
from edgebnn.cli import main
from edgebnn.datasets import load_cifar10, load_mnist

SHARED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared",
                      "datasets")
ESC = "\x1b["


@pytest.fixture(scope="module")
def digit_model(tmp_path_factory):
    return demo_models.save_digit_model(tmp_path_factory.mktemp("m") / "digits.ebnn")


@pytest.fixture(scope="module")
def digit_data(tmp_path_factory):
    x, y = demo_models.digits(6, seed=11)
    order = np.random.default_rng(0).permutation(len(x))     # classes interleaved, like MNIST
    return demo_models.write_mnist_test(tmp_path_factory.mktemp("data"), x[order], y[order])


def _demo(capsys, *argv):
    code = main(["demo", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_demo_prints_pictures_predictions_accuracy(digit_model, digit_data, capsys):
    code, out, err = _demo(capsys, "--model", digit_model, "--data", str(digit_data),
                           "--show", "2", "--ascii")
    assert code == 0, err
    assert ESC not in out                                  # --ascii: no colour codes
    assert "rendered-digits" in out and "mnist test set: 60 images" in out
    preds = re.findall(r"prediction: (\d) \((\d+\.\d)%\)", out)
    truths = re.findall(r"truth:\s+(\d)\s+(right|WRONG)", out)
    lat = re.findall(r"latency:\s+(\d+\.\d\d) ms", out)
    assert len(preds) == len(truths) == len(lat) == 2
    for (p, prob), (t, mark) in zip(preds, truths):
        assert 10.0 <= float(prob) <= 100.0                # softmax top-1 of 10 classes
        assert (mark == "right") == (p == t)
    # the pictures: 14 lines of ASCII ramp per 28x28 digit, some ink in them
    pic_rows = [ln[:28] for ln in out.splitlines() if len(ln) >= 28 and set(ln[:28]) <=
                set(terminal.ASCII_RAMP)]
    assert len(pic_rows) >= 28 and any("@" in r for r in pic_rows)
    # accuracy as the model computes it independently on the same files
    x, y = load_mnist(str(digit_data), "test")
    model = edgebnn.load(digit_model)
    correct = int(np.sum(model.predict(x) == y))
    assert f"accuracy: {correct / 60:.4f} ({correct}/60) on mnist test" in out
    assert correct >= 48                                   # rendered digits: a real classifier
    assert re.search(r"throughput: \d+ images/s \(60 images in \d+\.\d\d s, batch 256, "
                     r"1 thread\(s\)\)", out)


def test_demo_count_threads_and_show_none(digit_model, digit_data, capsys):
    code, out, err = _demo(capsys, "--model", digit_model, "--data", str(digit_data),
                           "--count", "25", "--show", "0", "--threads", "2", "--batch", "7")
    assert code == 0, err
    assert "prediction:" not in out and "25 images" in out
    assert re.search(r"accuracy: \d\.\d{4} \(\d+/25\)", out) and "2 thread(s)" in out


def test_demo_without_data_says_how_to_get_it(digit_model, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("EDGEBNN_DATA", str(tmp_path / "nowhere"))
    code, out, err = _demo(capsys, "--model", digit_model)
    assert code == 2 and out == ""
    assert "no mnist test set found" in err
    assert "https://storage.googleapis.com/cvdf-datasets/mnist/" in err
    assert "--data DIR" in err and "EDGEBNN_DATA" in err
    (tmp_path / "empty").mkdir()
    code, _, err = _demo(capsys, "--model", digit_model, "--dataset", "cifar10",
                         "--data", str(tmp_path / "empty"))
    assert code == 2 and "cifar-10-python.tar.gz" in err


def test_demo_bad_model_arguments(tmp_path, capsys):
    code, _, err = _demo(capsys, "--model", str(tmp_path / "missing.ebnn"))
    assert code == 1 and "no model file" in err
    bad = tmp_path / "bad.ebnn"
    bad.write_bytes(b"not a model")
    code, _, err = _demo(capsys, "--model", str(bad))
    assert code == 1 and "edgebnn: error:" in err and "Traceback" not in err
    if not os.path.isfile(models.shipped_path("lenet")):
        code, _, err = _demo(capsys)
        assert code == 1 and "lenet_mnist.ebnn is not in this installation" in err
        assert "--model PATH" in err


def test_demo_refuses_a_model_with_too_few_classes(tmp_path, digit_data, capsys):
    colours = demo_models.save_colour_model(tmp_path / "c.ebnn")
    code, _, err = _demo(capsys, "--model", colours, "--dataset", "mnist",
                         "--data", str(digit_data))
    assert code == 1 and "3 classes" in err


def _cifar_batch(root, n=40):
    """An official-format CIFAR-10 python test batch of flat colours."""
    rng = np.random.default_rng(3)
    labels = [int(v) for v in rng.integers(0, 10, n)]
    data = np.repeat(rng.integers(0, 256, (n, 3), dtype=np.uint8), 1024, axis=1)
    d = root / "cifar-10-batches-py"
    d.mkdir(parents=True)
    with open(d / "test_batch", "wb") as f:
        pickle.dump({b"batch_label": b"test", b"labels": labels, b"data": data,
                     b"filenames": [b"%d.png" % i for i in range(n)]}, f)
    return root


def _cifar_model(path):
    """Untrained but deterministic 10-class colour model (plumbing only)."""
    pre = {"size": [32, 32], "channels": 3, "scale": 1 / 255, "mean": [0.5] * 3,
           "std": [0.25] * 3, "invert": False}
    b = GraphBuilder([32, 32, 3], preprocess=pre, name="cifar-plumbing")
    b.add("global_avgpool")
    w = np.random.default_rng(5).standard_normal((10, 3)).astype(np.float32)
    b.add("dense", dict(units=10, scheme="float", alpha="none", input_scaling="none",
                        use_bias=False), dict(weight=w))
    b.add("softmax")
    save(path, b.build(labels=list(edgebnn.datasets.CIFAR10_CLASSES)))
    return str(path)


@pytest.mark.parametrize("colorterm", ["truecolor", ""])
def test_demo_colour_pictures_on_cifar(tmp_path, capsys, monkeypatch, colorterm):
    data = _cifar_batch(tmp_path / "data")
    model = _cifar_model(tmp_path / "c.ebnn")
    monkeypatch.setattr(terminal, "colour_mode",
                        lambda stream, force_ascii=False: colorterm or "256")
    code, out, err = _demo(capsys, "--model", model, "--data", str(data), "--show", "1")
    assert code == 0, err
    assert "cifar10 test set: 40 images" in out
    assert (ESC + "38;2;" in out) == (colorterm == "truecolor")
    assert (ESC + "38;5;" in out) == (colorterm == "")
    x, y = load_cifar10(str(data), "test")
    correct = int(np.sum(edgebnn.load(model).predict(x) == y))
    assert f"({correct}/40) on cifar10 test" in out


# ------------------------------------------------------------ pictures ---
def test_render_truecolour_cells_carry_exact_pixels():
    img = np.zeros((3, 2, 3), np.uint8)
    img[0, 0], img[1, 0], img[2, 1] = (255, 0, 0), (0, 0, 255), (1, 2, 3)
    lines = terminal.render(img, "truecolor")
    assert len(lines) == 2                       # 3 rows -> 2 cells (last row repeated)
    assert lines[0].startswith(ESC + "38;2;255;0;0m" + ESC + "48;2;0;0;255m" + terminal.UPPER_HALF)
    assert ESC + "38;2;1;2;3m" + ESC + "48;2;1;2;3m" in lines[1]   # odd row doubled
    assert all(ln.endswith(terminal.RESET) for ln in lines)
    assert all(ln.count(terminal.UPPER_HALF) == 2 for ln in lines)


def test_render_256_uses_grey_ramp_for_grey_and_cube_for_colour():
    grey = np.array([[0], [128], [255], [60]], np.uint8).reshape(4, 1, 1)
    codes = re.findall(r"\x1b\[[34]8;5;(\d+)m", "".join(terminal.render(grey, "256")))
    assert codes == ["16", "244", "231", "237"]
    red = np.zeros((2, 1, 3), np.uint8)
    red[..., 0] = 255
    assert ESC + "38;5;196m" in terminal.render(red, "256")[0]


def test_render_ascii_ramp_and_shape():
    img = np.tile(np.linspace(0, 255, 10).astype(np.uint8), (4, 1))
    lines = terminal.render(img, "ascii")
    assert lines == [terminal.ASCII_RAMP] * 2
    with pytest.raises(ValueError):
        terminal.render(np.zeros((2, 2, 2), np.uint8), "ascii")


def test_colour_mode_follows_the_stream_and_environment(monkeypatch):
    class Tty:
        def isatty(self):
            return True
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.setenv("COLORTERM", "truecolor")
    assert terminal.colour_mode(Tty()) == "truecolor"
    assert terminal.colour_mode(Tty(), force_ascii=True) == "ascii"
    assert terminal.colour_mode(object()) == "ascii"
    monkeypatch.setenv("COLORTERM", "")
    assert terminal.colour_mode(Tty()) == "256"
    monkeypatch.setenv("NO_COLOR", "1")
    assert terminal.colour_mode(Tty()) == "ascii"


# --------------------------------------------------------- real MNIST ---
@pytest.mark.skipif(not os.path.isdir(os.path.join(SHARED, "mnist")),
                    reason="shared MNIST not present (../shared/datasets/mnist)")
def test_demo_on_real_mnist_agrees_with_the_api(digit_model, capsys):
    code, out, err = _demo(capsys, "--model", digit_model, "--data-dir", SHARED,
                           "--count", "1000", "--show", "1")
    assert code == 0, err
    x, y = load_mnist(SHARED, "test")
    correct = int(np.sum(edgebnn.load(digit_model).predict(x[:1000]) == y[:1000]))
    assert f"({correct}/1000) on mnist test" in out


@pytest.mark.parametrize("cmd", ["demo", "serve", "camera"])
def test_demo_commands_have_help(cmd, capsys):
    with pytest.raises(SystemExit) as e:
        main([cmd, "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert f"usage: edgebnn {cmd}" in out and "--model" in out


def test_demo_with_a_model_for_dark_on_light_digits(tmp_path, digit_data, capsys):
    """A file saying invert (its raw images are dark ink on paper) gets the
    light-on-dark MNIST files un-inverted first, so it sees its training
    input: the accuracy equals the invert=False twin's."""
    plain = demo_models.save_digit_model(tmp_path / "plain.ebnn")
    paper = demo_models.save_digit_model(tmp_path / "paper.ebnn", invert=True)
    accs = []
    for m in (plain, paper):
        code, out, err = _demo(capsys, "--model", m, "--data", str(digit_data), "--show", "0")
        assert code == 0, err
        accs.append(re.search(r"accuracy: (\S+) \((\d+)/60\)", out).group(2))
    assert accs[0] == accs[1] and int(accs[0]) >= 48


def test_cli_uses_the_installed_package_name(tmp_path, monkeypatch, capsys):
    """Installed, demos/ is the package edgebnn_demos; the CLI finds it by
    that name (here: a link standing in for the installed copy)."""
    import sys
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    (tmp_path / "edgebnn_demos").symlink_to(os.path.join(repo, "demos"))
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        assert main(["demo", "--model", str(tmp_path / "none.ebnn")]) == 1
        assert "no model file" in capsys.readouterr().err
        assert "edgebnn_demos.terminal_demo" in sys.modules
        assert sys.modules["edgebnn_demos.terminal_demo"].models.__name__ == \
            "edgebnn_demos.models"                               # relative imports
    finally:
        for name in [n for n in sys.modules if n.startswith("edgebnn_demos")]:
            del sys.modules[name]
