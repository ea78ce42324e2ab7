"""``benchmarks.beam --quick``: 300 16x16 images through `fanogan score` and three DirectRunner set-ups."""

import pytest

from helpers.benchmarks import run


def test_beam_quick():
    pytest.importorskip("apache_beam", reason="the Beam benchmark needs the beam extra: pip install 'tf-fanogan[beam]'")
    text = run("benchmarks.beam", "--quick")
    assert text.count("0 decisions differ") == 3 and "parts: decode" in text
