"""``benchmarks.reliability --quick``: the report plumbing on one reporting test (no BENCHMARKS.md)."""

from helpers.benchmarks import run


def test_reliability_quick():
    text = run("benchmarks.reliability", "--quick")
    assert "1 passed" in text and "| gRPC error-code table" in text
