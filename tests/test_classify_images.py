"""`edgebnn classify` on images a person has: any size, colour or grey,
PNG or JPEG, converted exactly as the model's stored preprocessing says
(resize, channels, invert, scale, mean/std); text and --json output; bad
files -> one clear error line and a non-zero exit."""
import json

import demo_models
import numpy as np
import pytest
from PIL import Image

import edgebnn
from edgebnn.cli import main


@pytest.fixture(scope="module")
def paper_model(tmp_path_factory):
    """Digits written dark on light paper: the file says invert."""
    return demo_models.save_digit_model(tmp_path_factory.mktemp("m") / "paper.ebnn", invert=True)


def _paper_digit(path, d, size=(240, 240), mode="RGB", seed=0):
    """A dark-blue digit on off-white paper, much larger than 28x28 (a
    rendered digit scaled up and coloured like a photo of a page)."""
    ink = demo_models.draw_digit(d, np.random.default_rng(seed + d))
    a = np.asarray(Image.fromarray(ink).resize(size, Image.BICUBIC), np.float32)[..., None] / 255
    rgb = (1 - a) * np.float32([245, 240, 228]) + a * np.float32([20, 30, 90])
    Image.fromarray(rgb.round().astype(np.uint8)).convert(mode).save(path)
    return str(path)


def _reference_probabilities(model_path, image_path):
    """The stored preprocessing written out by hand: grey (ITU-R 601-2 luma,
    as PIL does), bilinear resize to 28x28, invert, /255, -mean, /std."""
    model = edgebnn.load(model_path)
    pre = model.input_spec.preprocess
    with Image.open(image_path) as im:
        grey = im.convert("L").resize((28, 28), Image.BILINEAR)
    x = np.asarray(grey, np.float32)
    x = (255.0 - x) if pre["invert"] else x
    x = (x * np.float32(pre["scale"]) - pre["mean"][0]) / pre["std"][0]
    return model.probabilities(x.reshape(1, 28, 28, 1).astype(np.float32))[0]


def test_classify_json_matches_the_stored_preprocessing(paper_model, tmp_path, capsys):
    paths = [_paper_digit(tmp_path / f"{d}.png", d) for d in range(10)]
    assert main(["classify", paper_model, *paths, "--top-k", "3", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["model"] == paper_model
    assert [r["image"] for r in doc["results"]] == paths
    right = 0
    for d, (path, r) in enumerate(zip(paths, doc["results"])):
        top = r["top"]
        assert len(top) == 3 and all(set(t) == {"label", "probability"} for t in top)
        probs = [t["probability"] for t in top]
        assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1 + 1e-6
        ref = _reference_probabilities(paper_model, path)
        order = np.argsort(-ref, kind="stable")[:3]
        assert [t["label"] for t in top] == [str(i) for i in order]
        assert np.allclose(probs, ref[order], atol=1e-5)
        right += top[0]["label"] == str(d)
    assert right >= 8          # photographed-style digits, read through invert: mostly right


def test_classify_text_output(paper_model, tmp_path, capsys):
    path = _paper_digit(tmp_path / "seven.jpg", 7, size=(150, 150))
    assert main(["classify", paper_model, path, "--top-k", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    m = lines[0].split(": ", 1)
    assert m[0] == path
    pairs = [p.split() for p in m[1].split(", ")]
    assert len(pairs) == 2 and pairs[0][0] == "7"
    assert float(pairs[0][1]) >= float(pairs[1][1]) > 0
    assert lines[1].startswith("(") and ("engine" in lines[1] or "numpy" in lines[1])


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "I;16", "CMYK"])
def test_classify_any_image_mode(paper_model, tmp_path, capsys, mode):
    ext = "jpg" if mode == "CMYK" else "png"
    path = _paper_digit(tmp_path / f"d.{ext}", 4, size=(57, 61),
                        mode=mode if mode != "I;16" else "L")
    if mode == "I;16":      # 16-bit grey scan
        with Image.open(path) as im:
            Image.fromarray(np.asarray(im, np.uint16) * 257).save(path)
    assert main(["classify", paper_model, path, "--json", "--top-k", "1"]) == 0
    top = json.loads(capsys.readouterr().out)["results"][0]["top"]
    assert len(top) == 1 and 0 < top[0]["probability"] <= 1


def test_classify_colour_model_on_grey_and_colour(tmp_path, capsys):
    model = demo_models.save_colour_model(tmp_path / "c.ebnn")
    Image.new("RGB", (640, 480), (30, 200, 40)).save(tmp_path / "green.jpg")
    Image.new("L", (5, 3), 200).save(tmp_path / "grey.png")
    assert main(["classify", model, str(tmp_path / "green.jpg"), str(tmp_path / "grey.png"),
                 "--json", "--top-k", "10"]) == 0
    res = json.loads(capsys.readouterr().out)["results"]
    assert res[0]["top"][0]["label"] == "green"
    assert len(res[1]["top"]) == 3                          # top-k clipped to the classes
    assert np.allclose([t["probability"] for t in res[1]["top"]], 1 / 3, atol=1e-5)


@pytest.mark.parametrize("content", [b"", b"hello, not an image", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR",
                                     "truncated"])
def test_classify_bad_files(paper_model, tmp_path, capsys, content):
    path = tmp_path / "bad.png"
    if content == "truncated":
        _paper_digit(path, 3)
        path.write_bytes(path.read_bytes()[:200])
    else:
        path.write_bytes(content)
    assert main(["classify", paper_model, str(path)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("edgebnn: error: ") and str(path) in err and len(err.splitlines()) == 1


def test_classify_missing_file_and_bad_top_k(paper_model, tmp_path, capsys):
    assert main(["classify", paper_model, str(tmp_path / "nope.png")]) == 1
    assert "nope.png" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["classify", paper_model, "x.png", "--top-k", "0"])
    assert e.value.code == 2
