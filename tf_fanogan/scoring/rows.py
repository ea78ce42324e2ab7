"""The one score-row format of ``fanogan score``, ``fanogan query``, ``fanogan evaluate`` and
the demo: a name column, optional extra columns, every score component, the decision.

Floats are written with ``repr`` (round-trip exact), booleans as ``true`` / ``false``.
"""

from __future__ import annotations

import csv

from tf_fanogan import signatures as sig
from tf_fanogan.utils.atomic import write_file_atomically


def format_value(v) -> str:
    """``true``/``false`` for booleans, ``repr(float)`` for numbers, strings as they are."""
    if isinstance(v, str):
        return v
    if getattr(v, "dtype", None) == bool or isinstance(v, bool):
        return str(bool(v)).lower()
    try:
        return repr(float(v))
    except (TypeError, ValueError):
        return str(v)


def columns(scores: dict, name_column: str = "path", extra=()) -> list[str]:
    """Header: the name, the extra columns, the score components present, then ``is_anomaly``."""
    return [name_column, *extra, *(k for k in (*sig.SCORE_OUTPUTS, sig.P_VALUE) if k in scores),
            *([sig.IS_ANOMALY] if sig.IS_ANOMALY in scores else [])]


def rows(names, scores: dict, header: list[str], extra: dict | None = None):
    """One list of strings per image, in ``header`` order."""
    extra = extra or {}
    for i, name in enumerate(names):
        values = {**{k: v[i] for k, v in extra.items()}, **{k: scores[k][i] for k in header[1:] if k in scores}}
        yield [str(name)] + [format_value(values[k]) for k in header[1:]]


def write_score_rows(path: str, names, scores: dict, name_column: str = "path", extra: dict | None = None) -> str:
    """Writes a score CSV atomically (readers see the old file or the new one)."""
    header = columns(scores, name_column, list(extra or {}))

    def write(f):
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows(names, scores, header, extra))

    write_file_atomically(path, write, newline="")
    return path
