"""The row sinks: JSON Lines and Parquet hold the CSV rows."""

import glob

import pytest

pytest.importorskip("apache_beam", reason="the Beam tests need the beam extra: pip install 'tf-fanogan[beam]'")


from helpers.beam import as_text, assert_same_rows, read_shards  # noqa: E402

from tf_fanogan.cli import main  # noqa: E402


def test_jsonl_and_parquet_hold_the_csv_rows(version, images, reference, tmp_path):
    out = str(tmp_path / "j")
    assert main(["beam-score", "--model", version, "--data", f"{images}/png", "--output", out,
                 "--format", "jsonl"]) == 0
    rows = read_shards(out, "jsonl")
    assert isinstance(rows[0]["is_anomaly"], bool) and isinstance(rows[0]["anomaly_score"], float)
    png = [r for r in reference if "/png/" in r["path"]]
    assert_same_rows([as_text(r) for r in rows], png)
    pq = pytest.importorskip("pyarrow.parquet", reason="parquet output needs pyarrow")
    out = str(tmp_path / "p")
    assert main(["beam-score", "--model", version, "--data", f"{images}/png", "--output", out,
                 "--format", "parquet"]) == 0
    table = [r for f in sorted(glob.glob(f"{out}-0*.parquet")) for r in pq.read_table(f).to_pylist()]
    assert [type(v) for v in table[0].values()] == [type(v) for v in rows[0].values()]
    assert_same_rows([as_text(r) for r in table], png)
