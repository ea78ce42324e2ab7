"""`fanogan turing-test make` / `score`: a shuffled sheet with a separate key, scored per rater."""

import csv
import json

import pytest
from PIL import Image

from helpers import blobs


def _answers(path, rows):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "answer"])
        w.writerows(rows)


def test_make_and_score_a_turing_test(trained_detector, tmp_path, capsys):
    from tf_fanogan.cli import main

    det = str(tmp_path / "det")
    trained_detector.save(det)
    real = tmp_path / "real.npy"
    import numpy as np

    np.save(real, blobs(30, seed=4))
    out = tmp_path / "tt"
    assert main(["turing-test", "make", det, "--data", str(real), "--n", "6", "--out", str(out)]) == 0
    pngs = sorted((out / "images").glob("*.png"))
    assert [p.name for p in pngs] == [f"{i:02d}.png" for i in range(1, 13)]
    with Image.open(out / "sheet.png") as im:
        assert im.format == "PNG"
    template = list(csv.DictReader(open(out / "answers_template.csv")))
    assert [r["id"] for r in template] == [p.stem for p in pngs] and all(r["answer"] == "" for r in template)
    key = {r["id"]: r["truth"] for r in csv.DictReader(open(out / "answer_key.csv"))}
    assert sorted(key.values()).count("real") == 6 and sorted(key.values()).count("generated") == 6
    # The order is shuffled: reals are not simply the first six.
    assert [key[f"{i:02d}"] for i in range(1, 7)] != ["real"] * 6

    perfect, inverted, half = tmp_path / "a.csv", tmp_path / "b.csv", tmp_path / "c.csv"
    _answers(perfect, [(i, t) for i, t in key.items()])
    _answers(inverted, [(i, "g" if t == "real" else "r") for i, t in key.items()])
    _answers(half, [(i, "real") for i in key])
    assert main(["turing-test", "score", "--key", str(out / "answer_key.csv"), str(perfect), str(inverted),
                 str(half), "--output", str(tmp_path / "r.json")]) == 0
    r = json.loads((tmp_path / "r.json").read_text())
    assert r["raters"]["a.csv"]["accuracy"] == 1.0 and r["raters"]["b.csv"]["accuracy"] == 0.0
    assert r["raters"]["c.csv"]["accuracy"] == 0.5 and r["raters"]["c.csv"]["generated_called_real"] == 1.0
    assert r["agreement"]["a.csv vs b.csv"]["cohen_kappa"] == pytest.approx(-1.0)
    assert r["mean_accuracy"] == pytest.approx(0.5)
    assert "accuracy 1.000" in capsys.readouterr().out


def test_an_unanswered_image_is_an_error_naming_it(trained_detector, tmp_path, capsys):
    from tf_fanogan.reporting import turing
    from tf_fanogan.cli import main

    trained_detector_dir = str(tmp_path / "det")
    trained_detector.save(trained_detector_dir)
    turing.make_test(trained_detector, blobs(8, seed=4), 3, str(tmp_path / "tt"))
    key = {r["id"]: r["truth"] for r in csv.DictReader(open(tmp_path / "tt" / "answer_key.csv"))}
    partial = tmp_path / "p.csv"
    _answers(partial, list(key.items())[1:])
    rc = main(["turing-test", "score", "--key", str(tmp_path / "tt" / "answer_key.csv"), str(partial)])
    err = capsys.readouterr().err
    assert rc == 1 and f"no answer for id {sorted(key)[0]}" in err and "p.csv" in err
    _answers(partial, [(i, "maybe") for i in key])
    assert main(["turing-test", "score", "--key", str(tmp_path / "tt" / "answer_key.csv"), str(partial)]) == 1
    assert "'maybe' is not 'real' or 'generated'" in capsys.readouterr().err


def test_samples_and_interpolation_pngs(trained_detector, tmp_path):
    from tf_fanogan.cli import main

    det = str(tmp_path / "det")
    trained_detector.save(det)
    assert main(["samples", det, "--out", str(tmp_path / "g")]) == 0
    for name in ("samples.png", "interpolation.png"):
        with Image.open(tmp_path / "g" / name) as im:
            assert im.format == "PNG" and im.size[0] > 300
