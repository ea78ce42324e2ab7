"""``ScoreImages``: paths -> bytes -> the project's one decoder -> ``RunInference`` -> rows.

Input sources, in any mix: a folder (every non-hidden file below it, as ``fanogan score``
lists a folder), a glob pattern (``*`` within a path segment, ``**`` across segments), one
file, or a ``.txt`` list of paths (one per line, relative to the list's folder, ``#`` lines
skipped). Any filesystem Beam's ``FileSystems`` reads works: local, ``gs://``, ``s3://``,
``hdfs://`` where the user has the plugin.

Every image ends up in exactly one of two outputs: ``rows`` (one dict per image: ``path``,
every score component, ``p_value`` where the model has it, ``is_anomaly``) or ``errors``
(``path`` and ``reason``: unreadable file, not an image, wrong shape or channels, NaN/inf or
out-of-range pixels, or a failed model call). A bad file never stops the pipeline.
"""

from __future__ import annotations

import os
import posixpath

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io import fileio
from apache_beam.io.filesystems import FileSystems
from apache_beam.ml.inference.base import KeyedModelHandler, RunInference

from tf_fanogan.beam.handler import ExportedModel, SavedModelScoreHandler, read_export
from tf_fanogan.data.images import DataError, check_image_name, decode_image_bytes, to_unit_range

ROWS, ERRORS = "rows", "errors"


def _is_glob(source: str) -> bool:
    return any(c in source for c in "*?[")


def source_pattern(source: str) -> tuple[str, str | None]:
    """``(pattern, folder)`` for a non-list source; ``folder`` is set when the source is a
    folder, whose hidden files and sub-folders are then left out."""
    if not _is_glob(source) and (source.endswith("/") or os.path.isdir(source)):
        folder = source.rstrip("/")
        return f"{folder}/**", folder
    return source, None


def _visible(path: str, folder: str | None) -> bool:
    if folder is None:
        return True
    rel = path[len(folder):].lstrip("/") if path.startswith(folder) else posixpath.basename(path)
    return not any(part.startswith(".") for part in rel.split("/"))


def _list_entries(line: str, base: str) -> list[str]:
    line = line.strip()
    if not line or line.startswith("#"):
        return []
    return [line if "://" in line or os.path.isabs(line) else FileSystems.join(base, line)]


class ReadAndDecode(beam.DoFn):
    """path -> ``(path, float32 (S, S, C) image in [0, 1])``, or ``{path, reason}`` on the
    ``errors`` output. Decoding and resizing are those of ``fanogan score``."""

    def __init__(self, image_size: int, channels: int, policy: dict | None = None):
        self.image_size, self.channels, self.policy = image_size, channels, policy or {}

    def process(self, path: str):
        try:
            check_image_name(path)
            with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
                data = f.read()
            image = to_unit_range([decode_image_bytes(data, path)], self.image_size, self.channels, [path],
                                 **self.policy)[0]
        except DataError as e:
            yield beam.pvalue.TaggedOutput(ERRORS, {"path": path, "reason": str(e)})
            return
        except Exception as e:  # noqa: BLE001 -- a filesystem failure is this file's error, not the pipeline's
            yield beam.pvalue.TaggedOutput(ERRORS, {"path": path, "reason": f"{path}: cannot read ({type(e).__name__}: {e})"})
            return
        yield path, image


def _row(keyed) -> dict:
    path, prediction = keyed
    return {"path": path, **{k: (bool(v) if k == "is_anomaly" else float(v)) for k, v in prediction.items()}}


def _describe(exc) -> str:
    """``Type: message`` of a failure from ``with_exception_handling``, which hands over
    ``(type, repr, traceback lines)`` rather than the exception itself."""
    if isinstance(exc, tuple) and len(exc) == 3:
        kind, text, trace = exc
        last = trace[-1].strip() if trace else ""
        return last if last.startswith(getattr(kind, "__name__", "?")) else f"{getattr(kind, '__name__', kind)}: {text}"
    return f"{type(exc).__name__}: {exc}"


def _failed_batch(failure):
    batch, exc = failure
    for path, _ in batch:
        yield {"path": path, "reason": f"{path}: the model refused its batch ({_describe(exc)})"}


class ScoreImages(beam.PTransform):
    """Scores every image the sources name with an exported version; returns
    ``{"rows": ..., "errors": ...}``. ``self.columns`` is the row header.

    Args:
        sources: Folders, patterns, files or ``.txt`` lists (a string or a list of them).
        model: An exported version's path (``saved_models/fanogan/3``) or an
            :class:`~tf_fanogan.beam.handler.ExportedModel`; it must be readable by every worker.
        min_batch_size, max_batch_size: ``RunInference``'s batching bounds.
        alpha: Decide ``is_anomaly`` as ``p_value <= alpha`` instead of by the threshold.
    """

    def __init__(self, sources, model, min_batch_size: int | None = None, max_batch_size: int | None = None,
                 alpha: float | None = None):
        super().__init__()
        self.sources = [sources] if isinstance(sources, str) else list(sources)
        self.model = model if isinstance(model, ExportedModel) else read_export(model)
        self.handler = SavedModelScoreHandler(self.model, min_batch_size, max_batch_size, alpha)
        self.columns = self.model.columns

    def expand(self, pbegin):
        paths = []
        for i, source in enumerate(self.sources):
            if source.endswith(".txt") and not _is_glob(source):
                base = posixpath.dirname(source) if "://" in source else os.path.dirname(os.path.abspath(source))
                paths.append(pbegin | f"ReadList{i}" >> beam.io.ReadFromText(source)
                             | f"ListEntries{i}" >> beam.FlatMap(_list_entries, base))
            else:
                pattern, folder = source_pattern(source)
                paths.append(pbegin | f"Pattern{i}" >> beam.Create([pattern])
                             | f"Match{i}" >> fileio.MatchAll()
                             | f"Paths{i}" >> beam.Map(lambda m: m.path)
                             | f"Visible{i}" >> beam.Filter(_visible, folder))
        decoded = ((paths | "AllPaths" >> beam.Flatten() if len(paths) > 1 else paths[0])
                   | "Spread" >> beam.Reshuffle()  # one listing must not pin all decoding to one worker
                   | "Decode" >> beam.ParDo(ReadAndDecode(self.model.image_size, self.model.channels,
                                                      self.model.image_policy))
                   .with_outputs(ERRORS, main=ROWS))
        scored, failed = (decoded[ROWS] | "Score" >> RunInference(KeyedModelHandler(self.handler))
                          .with_exception_handling())
        rows = scored | "Rows" >> beam.Map(_row)
        model_errors = failed.failed_inferences | "FailedBatches" >> beam.FlatMap(_failed_batch)
        errors = (decoded[ERRORS], model_errors) | "Errors" >> beam.Flatten()
        return {ROWS: rows, ERRORS: errors}
