"""``benchmarks.serving --quick``: a tiny export served by `fanogan serve`, parity and latency (no BENCHMARKS.md)."""

from helpers.benchmarks import run


def test_serving_quick():
    text = run("benchmarks.serving", "--quick")
    assert "parity served vs in-process (8 images)" in text and "latency 1 image" in text
