"""The ``fanogan beam-score`` pipeline: ScoreImages -> sharded rows and dead letters, with counts.

Beam pipeline options (``--runner``, ``--direct_num_workers``, ``--project``,
``--temp_location``, ...) pass through unchanged, so the same call runs on the DirectRunner,
Dataflow, Flink or Spark.
"""

from __future__ import annotations

import sys
import time

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import PipelineOptions

from tf_fanogan.beam.handler import read_export
from tf_fanogan.beam.sinks import ERROR_COLUMNS, WriteRows
from tf_fanogan.beam.transforms import ERRORS, ROWS, ScoreImages, _is_glob, source_pattern

NAMESPACE = "tf_fanogan"


class _Count(beam.DoFn):
    def __init__(self, name: str):
        self.name = name

    def setup(self):
        self.counter = beam.metrics.Metrics.counter(NAMESPACE, self.name)

    def process(self, element):
        self.counter.inc()
        yield element


def empty_sources(sources) -> list[str]:
    """The folders and patterns that match no file now (``.txt`` lists are not opened)."""
    empty = []
    for source in sources:
        if source.endswith(".txt") and not _is_glob(source):
            if not FileSystems.exists(source):
                raise FileNotFoundError(f"{source}: no such list of paths")
            continue
        pattern, _ = source_pattern(source)
        if not FileSystems.match([pattern], limits=[1])[0].metadata_list:
            empty.append(source)
    return empty


def run_score_pipeline(model: str, sources, output: str, fmt: str = "csv", min_batch_size: int | None = None,
                       max_batch_size: int | None = None, alpha: float | None = None, num_shards: int = 0,
                       pipeline_args=(), warn=None) -> dict:
    """Scores ``sources`` with the exported version ``model``; waits for the pipeline.

    Writes ``<output>-SSSSS-of-NNNNN.<fmt>`` (one row per image, ``fanogan score``'s columns)
    and ``<output>-errors-SSSSS-of-NNNNN.<fmt>`` (``path``, ``reason``).

    Returns:
        ``scored`` and ``errors`` (from the pipeline's counters; None where the runner reports
        no metrics), ``state``, ``seconds`` and ``columns``.
    """
    exported = read_export(model)
    sources = [sources] if isinstance(sources, str) else list(sources)
    if not sources:
        raise ValueError("give at least one --data source")
    for source in empty_sources(sources):
        print(f"warning: {source} matches no file", file=warn or sys.stderr)
    score = ScoreImages(sources, exported, min_batch_size, max_batch_size, alpha)
    t0 = time.perf_counter()
    p = beam.Pipeline(options=PipelineOptions(list(pipeline_args)))
    out = p | "ScoreImages" >> score
    (out[ROWS] | "CountRows" >> beam.ParDo(_Count("scored"))
     | "WriteRows" >> WriteRows(output, score.columns, fmt, num_shards))
    (out[ERRORS] | "CountErrors" >> beam.ParDo(_Count("errors"))
     | "WriteErrors" >> WriteRows(f"{output}-errors", ERROR_COLUMNS, fmt, num_shards))
    result = p.run()
    state = result.wait_until_finish()
    counts = {"state": str(state), "seconds": time.perf_counter() - t0, "columns": score.columns}
    for name in ("scored", "errors"):
        try:
            found = result.metrics().query(MetricsFilter().with_namespace(NAMESPACE).with_name(name))["counters"]
            counts[name] = sum(c.committed if c.committed is not None else c.attempted for c in found)
        except Exception:  # noqa: BLE001 -- some runners report no metrics
            counts[name] = None
    return counts
