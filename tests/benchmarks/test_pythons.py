"""``benchmarks.pythons --quick``: this interpreter, one test file (no BENCHMARKS.md)."""

import sys

from helpers.benchmarks import run


def test_pythons_quick():
    text = run("benchmarks.pythons", "--quick")
    assert sys.version.split()[0] in text and " passed" in text
