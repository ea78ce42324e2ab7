"""``benchmarks.streaming --quick``: 300 images scored, one run SIGKILLed and resumed (no BENCHMARKS.md)."""

from helpers.benchmarks import run


def test_streaming_quick():
    text = run("benchmarks.streaming", "--quick")
    assert "300 images:" in text and "resumed: identical to the uninterrupted CSV: True" in text
