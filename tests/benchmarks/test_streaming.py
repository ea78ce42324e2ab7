"""``benchmarks.streaming --quick``: 200 and 400 images, one SIGKILL and resume (no BENCHMARKS.md)."""

from helpers.benchmarks import run


def test_streaming_quick():
    text = run("benchmarks.streaming", "--quick")
    assert "200 images:" in text and "400 images:" in text
    assert "resumed: identical to the uninterrupted CSV: True" in text
