"""The Model API (compiled plans; skipped without the engine)."""
import numpy as np
import pytest
from PIL import Image

import edgebnn
import model_zoo
import reference_executor as ref
from edgebnn.engine_backend import load_engine
from edgebnn.preprocess import normalize

pytestmark = pytest.mark.skipif(load_engine() is None, reason="edgebnn._engine is not built "
                                "(python setup.py build_ext --inplace)")


@pytest.fixture
def alex(tmp_path):
    graph = model_zoo.alexnet(np.random.default_rng(11), "binary", size=16)
    path = tmp_path / "a.ebnn"
    edgebnn.save(path, graph)
    return edgebnn.load(path), graph


def test_run_uint8_applies_the_files_preprocessing(alex):
    model, graph = alex
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (3, 16, 16, 3), dtype=np.uint8)
    x = (pixels / 255.0 - np.array([0.5, 0.4, 0.3])) / 0.25
    np.testing.assert_allclose(normalize(pixels, model.input_spec), x, rtol=1e-5, atol=1e-5)
    out = model.run(pixels)
    np.testing.assert_allclose(out, ref.run(graph, x.astype(np.float32)), rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(model.predict(pixels), out.argmax(axis=1))
    np.testing.assert_allclose(model.run(pixels[0]), out[:1], rtol=1e-6)   # unbatched


def test_run_rejects_bad_input(alex):
    model, _ = alex
    with pytest.raises(ValueError, match=r"shape \[N, 16, 16, 3\]"):
        model.run(np.zeros((2, 15, 16, 3), np.float32))
    with pytest.raises(ValueError, match="uint8 .* or float32"):
        model.run(np.zeros((2, 16, 16, 3), np.float64))
    with pytest.raises(ValueError, match="threads"):
        model.threads = 0


def test_classify_from_path_pil_and_array(alex, tmp_path):
    model, _ = alex
    img = np.random.default_rng(1).integers(0, 256, (40, 30, 3), dtype=np.uint8)
    Image.fromarray(img).save(tmp_path / "x.png")
    a = model.classify(tmp_path / "x.png", top_k=3)
    b = model.classify(Image.fromarray(img), top_k=3)
    c = model.classify(img, top_k=3)
    assert a == b == c and len(a) == 3
    probs = [p for _, p in a]
    assert probs == sorted(probs, reverse=True) and all(lbl.startswith("class") for lbl, _ in a)
    full = model.classify(img, top_k=100)
    assert len(full) == 6 and abs(sum(p for _, p in full) - 1) < 1e-5
    with pytest.raises(ValueError, match="uint8"):
        model.classify(img.astype(np.float32))


def test_summary_and_sizes(alex):
    model, graph = alex
    rows = model.summary()
    assert [r["name"] for r in rows] == [op.name for op in model.plan.ops]
    conv = rows[0]
    assert conv["weight_bits"] == 32 and conv["macs"] == 8 * 8 * 12 * 5 * 5 * 3
    assert any(r["weight_bits"] == 1 and r["op"].endswith("-> bits") for r in rows)
    assert conv["in_shape"] == [[16, 16, 3]] and conv["activation"] in ("float", "bits")
    assert all(r["shape"] == list(op.shape) for r, op in zip(rows, model.plan.ops))
    stored, as_float = model.sizes()
    assert stored == sum(a.nbytes for a in graph.tensors().values())
    assert as_float > stored


def test_input_and_labels_exposed(alex):
    model, _ = alex
    assert model.input_spec.shape == [16, 16, 3]
    assert model.labels == [f"class{i}" for i in range(6)]
    assert model.backend == "engine"
