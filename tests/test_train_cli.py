"""The training command: trains, checkpoints, refuses, resumes."""
import csv
import json

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

from edgebnn_export import data, models, train  # noqa: E402

pytestmark = pytest.mark.tf


def read_log(run_dir):
    with open(run_dir / "log.csv") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def folder_dataset(tmp_path_factory):
    """A tiny image-folder dataset written by the test (3 classes, 8x8)."""
    from PIL import Image
    root = tmp_path_factory.mktemp("folder")
    rng = np.random.default_rng(0)
    for split, count in (("train", 24), ("test", 6)):
        for label, name in enumerate(("cat", "dog", "owl")):
            (root / split / name).mkdir(parents=True)
            for i in range(count):
                img = rng.integers(0, 64, size=(8, 8, 3)) + 60 * label
                Image.fromarray(img.astype(np.uint8)).save(
                    root / split / name / f"{i}.png")
    return root


def folder_args(root, out, *extra):
    return ["--dataset", "folder", "--data", str(root), "--net", "lenet",
            "--scheme", "binary", "--width", "0.125", "--batch-size", "16",
            "--verbose", "0", "--out", str(out), *extra]


def test_help_exits_cleanly(capsys):
    with pytest.raises(SystemExit) as exc:
        train.parse_args(["--help"])
    assert exc.value.code == 0
    assert "--resume" in capsys.readouterr().out


def test_train_refuse_resume_force(folder_dataset, tmp_path):
    out = tmp_path / "run"
    assert train.main(folder_args(folder_dataset, out, "--epochs", "1")) == 0
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "done" and run["epochs_done"] == 1
    assert run["classes"] == ["cat", "dog", "owl"]
    assert run["recipe"]["model"]["scheme"] == "binary"
    assert len(run["preprocess"]["mean"]) == 3
    assert [r["epoch"] for r in read_log(out)] == ["1"]
    assert (out / "model.keras").exists()
    assert (out / "best" / "checkpoint").exists()

    # An existing run dir is refused without --resume / --force.
    with pytest.raises(SystemExit) as exc:
        train.main(folder_args(folder_dataset, out, "--epochs", "1"))
    assert exc.value.code == 2

    # --resume continues from the saved epoch to the new total.
    assert train.main(["--out", str(out), "--resume", "--epochs", "3",
                       "--verbose", "0"]) == 0
    rows = read_log(out)
    assert [r["epoch"] for r in rows] == ["1", "2", "3"]
    assert all(np.isfinite(float(r["loss"])) for r in rows)
    run = json.loads((out / "run.json").read_text())
    assert run["epochs_done"] == 3 and run["recipe"]["train"]["epochs"] == 3
    ckpts = sorted(p.name for p in (out / "ckpt").glob("*.index"))
    assert ckpts == ["ckpt-2.index", "ckpt-3.index"]  # keeps the last 2

    # The recipe + latest checkpoint rebuild the saved model exactly.
    rebuilt = models.build(run["recipe"]["net"], **run["recipe"]["model"])
    ckpt = tf.train.Checkpoint(model=rebuilt)
    ckpt.restore(str(out / "ckpt" / "ckpt-3")).expect_partial()
    saved = keras.models.load_model(out / "model.keras")
    x = np.random.default_rng(1).normal(size=(4, 8, 8, 3)).astype(np.float32)
    np.testing.assert_array_equal(rebuilt(x, training=False),
                                  saved(x, training=False))

    # --force starts again.
    assert train.main(folder_args(folder_dataset, out, "--epochs", "1",
                                  "--force")) == 0
    assert [r["epoch"] for r in read_log(out)] == ["1"]


def test_bad_arguments_exit_with_usage(folder_dataset, tmp_path):
    for bad in (["--epochs", "0"], ["--lr", "-1"], ["--resume", "--force"],
                ["--width", "0"]):
        with pytest.raises(SystemExit) as exc:
            train.main(folder_args(folder_dataset, tmp_path / "x", *bad))
        assert exc.value.code == 2
    with pytest.raises(SystemExit):
        train.main(["--out", str(tmp_path / "missing"), "--resume"])


def test_missing_or_bad_data_is_a_usage_error(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    bad = tmp_path / "bad"
    (bad / "train" / "cat").mkdir(parents=True)
    (bad / "train" / "cat" / "0.png").write_bytes(b"not a png")
    for dataset, root, needle in (("cifar10", tmp_path / "empty", "no CIFAR-10"),
                                  ("mnist", tmp_path / "empty", "train-images"),
                                  ("folder", bad, "cannot decode image")):
        with pytest.raises(SystemExit) as e:
            train.main(["--dataset", dataset, "--data", str(root), "--epochs", "1",
                        "--verbose", "0", "--out", str(tmp_path / dataset)])
        assert e.value.code == 2
        err = capsys.readouterr().err
        assert "data: " in err and needle in err, err


@pytest.mark.parametrize("mode", ["crop", "crop-flip"])
def test_augmentation_is_a_window_of_the_padded_image(mode):
    img = np.arange(5 * 6 * 2, dtype=np.uint8).reshape(1, 5, 6, 2) + 1
    spec = {"scale": 1.0, "mean": [0.0, 0.0], "std": [1.0, 1.0]}
    ds = train.make_dataset(img, np.zeros(1, np.int32), spec, 1, False, mode,
                            0, 1, crop_pad=2)
    padded = np.pad(img[0].astype(np.float32), ((2, 2), (2, 2), (0, 0)))
    windows = [padded[y:y + 5, x:x + 6] for y in range(5) for x in range(5)]
    if mode == "crop-flip":
        windows += [w[:, ::-1] for w in windows]
    for _ in range(5):
        out = next(iter(ds))[0].numpy()[0]
        assert any(np.array_equal(out, w) for w in windows)


def shared_data():
    root = data.default_data_dir()
    if root is None:
        pytest.skip("datasets folder not found (set EDGEBNN_DATA)")
    return root


def test_mnist_few_hundred_samples(tmp_path):
    root = shared_data()
    if not (root / "mnist").is_dir():
        pytest.skip(f"no mnist in {root}")
    out = tmp_path / "mnist"
    assert train.main(["--dataset", "mnist", "--data", str(root), "--limit",
                       "300", "--epochs", "2", "--batch-size", "50",
                       "--width", "0.25", "--verbose", "0",
                       "--out", str(out)]) == 0
    rows = read_log(out)
    assert len(rows) == 2
    assert float(rows[1]["loss"]) < float(rows[0]["loss"])
    assert float(rows[1]["acc"]) > 0.3  # 10 classes: well above chance


def test_cifar10_resnet_few_samples(tmp_path):
    root = shared_data()
    if not (root / "cifar10-jpeg.tar.gz").exists():
        pytest.skip(f"no cifar10-jpeg.tar.gz in {root}")
    out = tmp_path / "cifar"
    assert train.main(["--dataset", "cifar10", "--data", str(root), "--net",
                       "resnet", "--n", "1", "--bireal", "--width", "0.5",
                       "--limit", "128", "--epochs", "1", "--batch-size",
                       "64", "--optimizer", "momentum", "--schedule", "step",
                       "--verbose", "0", "--out", str(out)]) == 0
    run = json.loads((out / "run.json").read_text())
    assert run["recipe"]["data"]["augment"] == "crop-flip"
    assert run["input_shape"] == [32, 32, 3] and len(run["classes"]) == 10
    assert len(read_log(out)) == 1


def test_keep_writes_a_weights_only_copy_that_exports_the_same(folder_dataset, tmp_path):
    from edgebnn_export import exporter, keep
    out, slim = tmp_path / "run", tmp_path / "slim"
    assert train.main(folder_args(folder_dataset, out, "--epochs", "1")) == 0
    assert keep.main([str(out), str(slim)]) == 0
    run = json.loads((slim / "run.json").read_text())
    assert run["kept"]["weights_only"] and run["kept"]["epoch"] == 1
    assert (slim / "log.csv").read_text() == (out / "log.csv").read_text()
    size = lambda d: sum(p.stat().st_size for p in d.rglob("*.data-*"))  # noqa: E731
    assert size(slim / "best") < size(out / "best")        # no optimizer slots

    full, _ = exporter.load_source(str(out))
    kept, _ = exporter.load_source(str(slim))
    assert len(full.weights) == len(kept.weights)
    for a, b in zip(full.weights, kept.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())

    # An existing destination is refused and left as it was.
    assert keep.main([str(out), str(slim)]) == 2
    assert json.loads((slim / "run.json").read_text()) == run

    # --resume has no checkpoint to continue from: refused, not retrained
    # from epoch 0 over the kept weights.
    before = sorted((p.name, p.read_bytes()) for p in (slim / "best").iterdir())
    with pytest.raises(SystemExit) as exc:
        train.main(["--out", str(slim), "--resume", "--verbose", "0"])
    assert exc.value.code == 2
    assert sorted((p.name, p.read_bytes()) for p in (slim / "best").iterdir()) == before


def test_distill_loss_and_teacher_batches():
    """The loss is alpha T^2 KL(teacher || student) + (1 - alpha) CE,
    written out in numpy; the batches carry [label, teacher logits]."""
    from edgebnn_export import distill
    rng = np.random.default_rng(5)
    s = rng.normal(size=(6, 4)).astype(np.float32)
    t = rng.normal(size=(6, 4)).astype(np.float32)
    label = rng.integers(0, 4, size=6)
    y = np.concatenate([label[:, None].astype(np.float32), t], axis=1)

    def log_softmax(z):
        z = z - z.max(1, keepdims=True)
        return z - np.log(np.exp(z).sum(1, keepdims=True))

    for alpha, temp in ((0.9, 1.0), (0.5, 3.0), (0.0, 2.0), (1.0, 1.0)):
        got = np.asarray(distill.distill_loss(alpha, temp)(y, s))
        lt, ls = log_softmax(t / temp), log_softmax(s / temp)
        kl = (np.exp(lt) * (lt - ls)).sum(1)
        ce = -log_softmax(s)[np.arange(6), label]
        np.testing.assert_allclose(got, alpha * temp ** 2 * kl + (1 - alpha) * ce, rtol=1e-5,
                                   atol=1e-6)
    acc = np.asarray(distill.accuracy(y, s)).reshape(-1)
    np.testing.assert_array_equal(acc, (s.argmax(1) == label).astype(np.float32))

    teacher = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4)])
    x = rng.normal(size=(5, 3)).astype(np.float32)
    ds = tf.data.Dataset.from_tensor_slices((x, np.arange(5, dtype=np.uint8))).batch(2)
    xs, ys = zip(*[(a.numpy(), b.numpy()) for a, b in distill.attach_teacher(ds, teacher)])
    ys = np.concatenate(ys)
    np.testing.assert_array_equal(np.concatenate(xs), x)
    np.testing.assert_array_equal(ys[:, 0], np.arange(5))
    np.testing.assert_allclose(ys[:, 1:], np.asarray(teacher(x)), rtol=1e-6)


def test_distill_from_a_teacher_run(folder_dataset, tmp_path):
    """--teacher trains against a trained run's outputs, is recorded in the
    recipe, and can be added when a run is resumed; a teacher with another
    class count is refused."""
    teacher_dir, out = tmp_path / "teacher", tmp_path / "student"
    assert train.main(folder_args(folder_dataset, teacher_dir, "--epochs", "1")) == 0
    assert train.main(folder_args(folder_dataset, out, "--epochs", "1")) == 0
    run = json.loads((out / "run.json").read_text())
    assert run["recipe"]["train"]["teacher"] is None
    assert train.main(["--out", str(out), "--resume", "--epochs", "2", "--verbose", "0",
                       "--teacher", str(teacher_dir), "--distill-alpha", "0.7"]) == 0
    run = json.loads((out / "run.json").read_text())
    assert run["recipe"]["train"]["teacher"] == {
        "source": str(teacher_dir.resolve()), "alpha": 0.7, "temperature": 1.0}
    rows = read_log(out)
    assert [r["epoch"] for r in rows] == ["1", "2"]
    assert all(0 <= float(r["acc"]) <= 1 and np.isfinite(float(r["loss"])) for r in rows)
    with pytest.raises(SystemExit):
        train.main(folder_args(folder_dataset, tmp_path / "x", "--epochs", "1",
                               "--teacher", str(teacher_dir), "--distill-alpha", "2"))


def test_teacher_class_count_must_match(tmp_path):
    from edgebnn_export import distill
    m = keras.Sequential([keras.Input((3,)), keras.layers.Dense(5)])
    m.save(tmp_path / "t.keras")
    with pytest.raises(SystemExit, match="5 outputs"):
        distill.load_teacher(str(tmp_path / "t.keras"), 3)
    with pytest.raises(SystemExit, match="--teacher: .*no such file"):
        distill.load_teacher(str(tmp_path / "missing"), 3)


def test_warm_start_copies_same_named_layers():
    """--init-from's copy: every weighted layer of an xnor ResNet goes into the
    Bi-Real binary ResNet of the same n (same names and shapes); a wider
    network keeps its fresh weights where the shapes differ."""
    from edgebnn_export.warmstart import copy_matching_weights
    kw = dict(n=1, input_shape=(8, 8, 3), classes=3)
    src = models.resnet(scheme="xnor", **kw)
    rng = np.random.default_rng(1)
    src.set_weights([rng.normal(size=w.shape).astype(np.float32) for w in src.get_weights()])
    dst = models.resnet(scheme="binary", bireal=True, **kw)
    copied, skipped = copy_matching_weights(dst, src)
    assert skipped == [] and len(copied) == len([l for l in dst.layers if l.get_weights()])
    for name in copied:
        for a, b in zip(dst.get_layer(name).get_weights(), src.get_layer(name).get_weights()):
            np.testing.assert_array_equal(a, b)
    wide = models.resnet(scheme="binary", width=2.0, **kw)
    before = wide.get_layer("s1b1_c1").get_weights()[0].copy()
    copied, skipped = copy_matching_weights(wide, src)
    assert ("s1b1_c1", "other weight shapes") in skipped and "s1b1_c1" not in copied
    np.testing.assert_array_equal(wide.get_layer("s1b1_c1").get_weights()[0], before)


def test_init_from_a_trained_run(folder_dataset, tmp_path):
    """--init-from starts a binary run from an xnor run's weights and records
    it; a source sharing no layer, a missing one, and --resume are refused."""
    first, out = tmp_path / "xnor", tmp_path / "binary"
    assert train.main(folder_args(folder_dataset, first, "--epochs", "1",
                                  "--scheme", "xnor")) == 0
    assert train.main(folder_args(folder_dataset, out, "--epochs", "1",
                                  "--init-from", str(first))) == 0
    run = json.loads((out / "run.json").read_text())
    assert run["recipe"]["train"]["init_from"] == str(first.resolve())
    assert run["status"] == "done"
    other = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(),
                              keras.layers.Dense(3, name="unrelated")])
    other.save(tmp_path / "other.keras")
    with pytest.raises(SystemExit, match="no layer of the same name"):
        train.main(folder_args(folder_dataset, tmp_path / "a", "--epochs", "1",
                               "--init-from", str(tmp_path / "other.keras")))
    with pytest.raises(SystemExit, match="no such file"):
        train.main(folder_args(folder_dataset, tmp_path / "b", "--epochs", "1",
                               "--init-from", str(tmp_path / "missing")))
    with pytest.raises(SystemExit):
        train.main(["--out", str(out), "--resume", "--init-from", str(first)])
