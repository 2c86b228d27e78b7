"""The edgebnn command line: help everywhere, exit codes, one-line errors,
and the commands doing real work on small models and data."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import demo_models
import model_zoo
from edgebnn import save
from edgebnn.cli import main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def zoo_file(tmp_path):
    path = tmp_path / "alex.ebnn"
    save(path, model_zoo.alexnet(np.random.default_rng(0), "binary"))
    return str(path)


@pytest.fixture
def colour_model(tmp_path):
    """Classifies flat-colour images by their dominant channel: red, green,
    blue. Exact by construction, so eval must report accuracy 1."""
    return demo_models.save_colour_model(tmp_path / "colours.ebnn", size=4)


def _colour_folder(root):
    rng = np.random.default_rng(0)
    for label, cls in enumerate(["red", "green", "blue"]):
        (root / cls).mkdir(parents=True)
        for i in range(3):
            c = rng.integers(0, 90, 3)
            c[label] = 200 + i * 10
            Image.fromarray(np.full((7, 9, 3), c, np.uint8)).save(root / cls / f"{i}.png")
    return root


@pytest.mark.parametrize("cmd", [[], ["info"], ["classify"], ["eval"], ["bench"], ["repack"]])
def test_help_everywhere(cmd, capsys):
    with pytest.raises(SystemExit) as e:
        main(cmd + ["--help"])
    assert e.value.code == 0
    assert "usage: edgebnn" in capsys.readouterr().out


def test_info(zoo_file, capsys):
    assert main(["info", zoo_file]) == 0
    out = capsys.readouterr().out
    assert "compression" in out and "conv2d binary -> bits" in out and "labels: 6" in out
    assert "executor: " in out


def _bytes_table(out):
    """{part label: bytes} of info --bytes."""
    rows = {}
    for line in out.split("bytes of the file:")[1].splitlines():
        if line.strip().endswith(("B", "%")) and " B" in line:
            label, rest = line.strip().rsplit("  ", 1)[0], line.split()
            rows[label.strip().rsplit(" ", 1)[0].strip()] = int(
                rest[rest.index("B") - 1].replace(",", ""))
    return rows


def test_info_bytes_and_repack(tmp_path, zoo_file, capsys, monkeypatch):
    import edgebnn.format      # the zoo net is tiny: let int8 take every float weight
    monkeypatch.setattr(edgebnn.format, "QUANTIZE_MIN_ELEMENTS", 0)
    assert main(["info", zoo_file, "--bytes"]) == 0
    out = capsys.readouterr().out
    assert "format v1" in out and "x U64 (bits in 64-bit words)" in out
    v1 = _bytes_table(out)
    assert v1["file"] == os.path.getsize(zoo_file)
    assert sum(v for k, v in v1.items() if k != "file") == v1["file"]
    small = str(tmp_path / "small.ebnn")
    assert main(["repack", zoo_file, "-o", small, "--compact", "--float-params", "int8"]) == 0
    out = capsys.readouterr().out
    assert "format v2" in out and "Q8" in out and "edgebnn eval" in out
    assert main(["info", small, "--bytes"]) == 0
    out = capsys.readouterr().out
    assert "format v2" in out and "x B1 (1 bit per weight)" in out and "(zlib)" in out
    v2 = _bytes_table(out)
    assert v2["file"] == os.path.getsize(small) < v1["file"]
    # refusals are one-line errors: existing output, int8 without --compact
    assert main(["repack", zoo_file, "-o", small]) == 1
    assert "exists" in capsys.readouterr().err
    assert main(["repack", zoo_file, "-o", str(tmp_path / "x.ebnn"),
                 "--float-params", "int8"]) == 1
    assert "compact" in capsys.readouterr().err
    # lossless repack runs identically
    lossless = str(tmp_path / "lossless.ebnn")
    assert main(["repack", zoo_file, "-o", lossless, "--compact"]) == 0
    import edgebnn
    x = np.random.default_rng(0).standard_normal([2, 19, 19, 3]).astype(np.float32)
    assert np.array_equal(edgebnn.load(zoo_file).run(x), edgebnn.load(lossless).run(x))


def test_errors_are_one_line(tmp_path, zoo_file, capsys):
    assert main(["info", str(tmp_path / "missing.ebnn")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("edgebnn: error: cannot read") and err.count("\n") == 1
    bad = tmp_path / "bad.ebnn"
    bad.write_bytes(open(zoo_file, "rb").read()[:300])
    assert main(["info", str(bad)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("edgebnn: error: ") and err.count("\n") == 1
    assert main(["classify", zoo_file, str(tmp_path / "nope.png")]) == 1
    assert "cannot read image" in capsys.readouterr().err


def test_classify_and_eval(tmp_path, colour_model, capsys):
    folder = _colour_folder(tmp_path / "imgs")
    assert main(["classify", colour_model, str(folder / "green" / "1.png"), "--top-k", "2"]) == 0
    out = capsys.readouterr().out
    assert out.split(": ", 1)[1].startswith("green ")
    assert main(["eval", colour_model, "--dataset", str(folder)]) == 0
    # folders named like the labels are matched to them by name
    assert capsys.readouterr().out.startswith("accuracy: 1.0000 (9/9)")


def test_eval_folder_class_order(tmp_path, colour_model, capsys):
    folder = tmp_path / "imgs"
    _colour_folder(folder)
    # other names: sorted folder order gives the class index
    for i, cls in enumerate(["red", "green", "blue"]):
        os.rename(folder / cls, folder / f"{i}_{cls}")
    assert main(["eval", colour_model, "--dataset", str(folder)]) == 0
    assert capsys.readouterr().out.startswith("accuracy: 1.0000 (9/9)")
    os.rename(folder / "0_red", folder / "3_red")     # every index now off by one
    assert main(["eval", colour_model, "--dataset", str(folder)]) == 0
    assert capsys.readouterr().out.startswith("accuracy: 0.0000 (0/9)")


def test_bench_prints_table(zoo_file, capsys):
    assert main(["bench", zoo_file, "--batch-size", "3", "--runs", "5", "--threads", "2"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].split()[:4] == ["batch", "p50", "ms", "p90"] and len(lines) == 3
    assert [int(line.split()[0]) for line in lines[1:]] == [1, 3]
    p50, p90 = (float(v) for v in lines[1].split()[1:3])
    assert 0 < p50 <= p90


def test_classify_json(tmp_path, colour_model, capsys):
    folder = _colour_folder(tmp_path / "imgs")
    images = [str(folder / "green" / "1.png"), str(folder / "red" / "1.png")]
    assert main(["classify", colour_model, *images, "--top-k", "2", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [r["image"] for r in doc["results"]] == images
    assert [r["top"][0]["label"] for r in doc["results"]] == ["green", "red"]
    assert all(len(r["top"]) == 2 for r in doc["results"])


def test_eval_spec_options(tmp_path, colour_model, capsys):
    folder = _colour_folder(tmp_path / "imgs")
    assert main(["eval", colour_model, "--data", str(folder), "--batch-size", "2",
                 "--limit", "4"]) == 0
    assert capsys.readouterr().out.startswith("accuracy: 1.0000 (4/4)")


def test_console_entry_runs_as_module(zoo_file):
    r = subprocess.run([sys.executable, "-m", "edgebnn", "info", zoo_file], cwd=ROOT,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "parameters:" in r.stdout
    r = subprocess.run([sys.executable, "-m", "edgebnn", "nosuchcommand"], cwd=ROOT,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
