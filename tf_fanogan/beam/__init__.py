"""Batch scoring on Apache Beam: ``RunInference`` on an exported SavedModel version.

The same pipeline runs on the DirectRunner locally and on Dataflow, Flink or Spark::

    import apache_beam as beam
    from tf_fanogan.beam import ScoreImages, WriteRows

    with beam.Pipeline(options=...) as p:
        score = ScoreImages(["gs://bucket/scans/**/*.png"], "gs://bucket/saved_models/fanogan/3")
        out = p | score
        out["rows"] | "Rows" >> WriteRows("gs://bucket/out/scores", score.columns)
        out["errors"] | "Errors" >> WriteRows("gs://bucket/out/scores-errors", ERROR_COLUMNS)

:func:`~tf_fanogan.beam.pipeline.run_score_pipeline` is that pipeline with ``fanogan beam-score``'s
options and counts.

Needs the ``beam`` extra (``pip install 'tf-fanogan[beam]'``); the core package does not.
"""

import logging


class _KnownNoise(logging.Filter):
    """Drops two root-logger warnings of Beam 2.77 that say nothing about the user's run: the
    BigQuery client's missing apitools (not used here) and RunInference's memory probe, which
    needs PyTorch for an import it shares with ``resource`` (apache_beam/ml/inference/base.py)."""

    PREFIXES = ("apitools not found", "Resource module is not available")

    def filter(self, record):
        return not str(record.msg).startswith(self.PREFIXES)


if not any(isinstance(f, _KnownNoise) for f in logging.getLogger().filters):
    logging.getLogger().addFilter(_KnownNoise())

from tf_fanogan.beam.handler import ExportedModel, SavedModelScoreHandler, read_export  # noqa: E402
from tf_fanogan.beam.pipeline import run_score_pipeline  # noqa: E402
from tf_fanogan.beam.sinks import ERROR_COLUMNS, FORMATS, WriteRows  # noqa: E402
from tf_fanogan.beam.transforms import ScoreImages  # noqa: E402

__all__ = ["ERROR_COLUMNS", "FORMATS", "ExportedModel", "SavedModelScoreHandler", "ScoreImages", "WriteRows",
           "read_export", "run_score_pipeline"]
