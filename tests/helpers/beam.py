"""Helpers of the Beam tests (tests/beam/): read sharded outputs, compare rows with `fanogan score`."""

import csv
import glob
import json


def read_shards(prefix, suffix="csv"):
    files = sorted(glob.glob(f"{prefix}-[0-9][0-9][0-9][0-9][0-9]-of-[0-9][0-9][0-9][0-9][0-9].{suffix}"))
    assert files, f"no shards {prefix}-SSSSS-of-NNNNN.{suffix}"
    if suffix == "jsonl":
        return [json.loads(line) for f in files for line in open(f) if line.strip()]
    headers, rows = set(), []
    for f in files:
        with open(f, newline="") as fh:
            r = list(csv.reader(fh))
        headers.add(tuple(r[0]))
        rows += r[1:]
    assert len(headers) == 1, headers
    return [dict(zip(next(iter(headers)), row)) for row in rows]


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def assert_same_rows(beam_rows, score_rows):
    by_path = {r["path"]: r for r in score_rows}
    assert sorted(r["path"] for r in beam_rows) == sorted(by_path)
    worst = 0.0
    for r in beam_rows:
        ref = by_path[r["path"]]
        assert list(r) == list(ref)  # same columns, same order
        assert r["is_anomaly"] == ref["is_anomaly"]
        for k in ("anomaly_score", "residual_score", "feature_score", "z_distance", "p_value"):
            a, b = float(r[k]), float(ref[k])
            worst = max(worst, abs(a - b) / max(abs(b), 1e-12))
    assert worst <= 1e-5, worst


def as_text(row):
    return {k: (str(v).lower() if isinstance(v, bool) else (repr(v) if isinstance(v, float) else v))
            for k, v in row.items()}
