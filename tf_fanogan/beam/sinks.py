"""Sharded sinks for score rows and dead letters: CSV (header, ``fanogan score``'s formatting),
JSON Lines, and Parquet where ``pyarrow`` is installed.

``WriteRows("out/scores", columns, "csv")`` writes ``out/scores-SSSSS-of-NNNNN.csv``.
"""

from __future__ import annotations

import csv
import io
import json

import apache_beam as beam

from tf_fanogan.scoring.rows import format_value

FORMATS = ("csv", "jsonl", "parquet")
ERROR_COLUMNS = ["path", "reason"]


def csv_line(row: dict, columns: list[str]) -> str:
    """One CSV line (no newline) of ``row`` in ``columns`` order, formatted as ``fanogan score``."""
    buf = io.StringIO()
    csv.writer(buf, lineterminator="").writerow([format_value(row[c]) for c in columns])
    return buf.getvalue()


def json_line(row: dict, columns: list[str]) -> str:
    return json.dumps({c: row[c] for c in columns})


def parquet_schema(columns: list[str]):
    import pyarrow as pa

    kinds = {"path": pa.string(), "reason": pa.string(), "is_anomaly": pa.bool_()}
    return pa.schema([(c, kinds.get(c, pa.float64())) for c in columns])


class WriteRows(beam.PTransform):
    """Writes dict rows to ``<prefix>-SSSSS-of-NNNNN.<format>``.

    Args:
        prefix: Output path prefix on any Beam filesystem.
        columns: Column order (the header of CSV shards).
        fmt: ``csv``, ``jsonl`` or ``parquet``.
        num_shards: 0 lets the runner choose.
    """

    def __init__(self, prefix: str, columns: list[str], fmt: str = "csv", num_shards: int = 0):
        super().__init__()
        if fmt not in FORMATS:
            raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
        if fmt == "parquet":
            try:
                import pyarrow  # noqa: F401
            except ImportError:
                raise ValueError("--format parquet needs pyarrow (pip install pyarrow)") from None
        self.prefix, self.columns, self.fmt, self.num_shards = prefix, list(columns), fmt, num_shards

    def expand(self, rows):
        if self.fmt == "parquet":
            return rows | beam.io.WriteToParquet(self.prefix, parquet_schema(self.columns), file_name_suffix=".parquet",
                                                  num_shards=self.num_shards)
        if self.fmt == "csv":
            lines = rows | "CsvLines" >> beam.Map(csv_line, self.columns)
            return lines | beam.io.WriteToText(self.prefix, file_name_suffix=".csv", num_shards=self.num_shards,
                                               header=",".join(self.columns))
        lines = rows | "JsonLines" >> beam.Map(json_line, self.columns)
        return lines | beam.io.WriteToText(self.prefix, file_name_suffix=".jsonl", num_shards=self.num_shards)
