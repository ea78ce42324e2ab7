"""The one score-row format shared by score, query, evaluate and the demo."""

import csv

import numpy as np

from tf_fanogan import signatures as sig
from tf_fanogan.scoring import rows


def test_rows_write_every_component_round_trip_exact_and_lowercase_booleans(tmp_path):
    scores = {sig.ANOMALY_SCORE: np.array([0.1, 1 / 3], np.float32), sig.RESIDUAL_SCORE: np.array([0.05, 0.2]),
              sig.FEATURE_SCORE: np.array([0.05, 0.1]), sig.Z_DISTANCE: np.array([11.0, 12.5]),
              sig.IS_ANOMALY: np.array([False, True])}
    path = rows.write_score_rows(str(tmp_path / "s.csv"), ["a.png", "b.png"], scores, extra={"label": [0, 1]})
    with open(path, newline="") as f:
        table = list(csv.reader(f))
    assert table[0] == ["path", "label", *sig.SCORE_OUTPUTS, sig.IS_ANOMALY]
    assert table[1][-1] == "false" and table[2][-1] == "true"
    assert float(table[2][2]) == float(np.float32(1 / 3))  # repr round-trips the float exactly
    assert table[1][1] == "0" or table[1][1] == "0.0"


def test_uncalibrated_scores_have_no_decision_column():
    scores = {k: np.zeros(1) for k in sig.SCORE_OUTPUTS}
    assert rows.columns(scores) == ["path", *sig.SCORE_OUTPUTS]
    assert rows.format_value(np.bool_(True)) == "true" and rows.format_value(0.5) == "0.5"
