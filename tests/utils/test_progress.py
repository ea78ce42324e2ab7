"""Progress lines: counts and rates, redrawn on a terminal, sparse in a log, silent when quiet."""

import io
import re

from tf_fanogan.utils.progress import Progress, stage


class _Tty(io.StringIO):
    def isatty(self):
        return True


def test_log_stream_gets_sparse_lines_and_a_final_count_with_rate():
    out = io.StringIO()
    p = Progress("scoring", 300, stream=out, log_interval=3600)
    for _ in range(3):
        p.update(100)
    seconds = p.close()
    lines = out.getvalue().splitlines()
    assert len(lines) == 1 and "\r" not in out.getvalue()  # no interval passed: only the final line
    m = re.fullmatch(r"scoring 300/300 images in ([\d.]+) s \(([\d.]+) images/s\)", lines[0])
    assert m and seconds >= 0 and float(m.group(2)) > 0


def test_terminal_line_is_redrawn_in_place_and_quiet_prints_nothing():
    tty = _Tty()
    p = Progress("reading", None, unit="files", stream=tty)
    p.update(2)
    p.update(3)
    p.close(note="; 1 skipped")
    text = tty.getvalue()
    assert text.count("\r") == 3 and text.endswith("; 1 skipped\n") and "reading 5 files in" in text
    quiet = io.StringIO()
    q = Progress("x", 10, stream=quiet, enabled=False)
    q.update(10)
    q.close()
    with stage("plots", enabled=False, stream=quiet):
        pass
    assert quiet.getvalue() == "" and q.done == 10


def test_stage_prints_start_and_duration():
    out = io.StringIO()
    with stage("writing", stream=out):
        pass
    assert re.fullmatch(r"writing \.\.\.\nwriting: [\d.]+ s\n", out.getvalue())
