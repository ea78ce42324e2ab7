"""`fanogan score` and the other result commands: --alpha decides on p-values."""

import csv


from tf_fanogan.cli import main
from helpers import blobs
from helpers.cli import folder


def test_score_alpha_decides_on_p_values(trained_detector, tmp_path):
    det = trained_detector.save(str(tmp_path / "det"))
    test = folder(tmp_path / "test", blobs(6, seed=3))
    out_csv = str(tmp_path / "s.csv")
    assert main(["score", det, "--data", test, "--output", out_csv, "--alpha", "0.5"]) == 0
    rows = list(csv.DictReader(open(out_csv)))
    assert [r["is_anomaly"] == "true" for r in rows] == [float(r["p_value"]) <= 0.5 for r in rows]
