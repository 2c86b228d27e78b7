"""python -m edgebnn_export.curves: the table from log.csv files, the plot,
and clear errors."""
import json

import pytest

from edgebnn_export import curves


def write_run(path, accs, recipe=None):
    path.mkdir()
    rows = ["epoch,lr,loss,acc,val_loss,val_acc,seconds"]
    rows += [f"{i + 1},0.001,1.0,0.5,1.0,{a},10.0" for i, a in enumerate(accs)]
    (path / "log.csv").write_text("\n".join(rows) + "\n")
    if recipe:
        (path / "run.json").write_text(json.dumps({"recipe": recipe}))
    return path


RECIPE = {"net": "resnet", "model": {"n": 5, "scheme": "binary", "bireal": True},
          "train": {"teacher": {"source": "t"}}}


def test_table_final_and_best(tmp_path, capsys):
    a = write_run(tmp_path / "a", [0.5, 0.75, 0.625], RECIPE)
    b = write_run(tmp_path / "b", [0.25])
    (b / "run.json").write_text("{not json")    # the folder name labels it
    assert curves.main([str(a), str(b)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[2] == "| a: resnet n=5 binary (bireal, teacher) | 3 | 62.50 % | 75.00 % (2) |"
    assert out[3] == "| b | 1 | 25.00 % | 25.00 % (1) |"


def test_plot_written_and_never_overwritten(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    a = write_run(tmp_path / "a", [0.5, 0.75])
    png = tmp_path / "c.png"
    assert curves.main([str(a), "-o", str(png)]) == 0
    first = png.read_bytes()
    assert first.startswith(b"\x89PNG\r\n\x1a\n") and len(first) > 5000
    with pytest.raises(SystemExit) as e:
        curves.main([str(a), "-o", str(png), "--title", "other"])
    assert e.value.code == 2 and "exists" in capsys.readouterr().err
    assert png.read_bytes() == first
    assert curves.main([str(a), "-o", str(png), "--title", "other", "--force"]) == 0
    assert png.read_bytes() != first


@pytest.mark.parametrize("log, needle", [
    (None, "no log.csv"),
    ("epoch,lr\n", "no epochs logged"),
    ("epoch,lr\n1,0.1\n", "not an edgebnn-train log"),
    ("epoch,val_acc\n1,abc\n", "not an edgebnn-train log"),
])
def test_bad_run_dirs(tmp_path, capsys, log, needle):
    run = tmp_path / "r"
    run.mkdir()
    if log is not None:
        (run / "log.csv").write_text(log)
    with pytest.raises(SystemExit) as e:
        curves.main([str(run)])
    assert e.value.code == 2 and needle in capsys.readouterr().err
