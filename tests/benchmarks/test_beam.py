"""``benchmarks.beam --quick``: 300 16x16 images through `fanogan score` and the in-memory DirectRunner."""

import pytest

from helpers.benchmarks import run


def test_beam_quick():
    pytest.importorskip("apache_beam", reason="the Beam benchmark needs the beam extra: pip install 'tf-fanogan[beam]'")
    text = run("benchmarks.beam", "--quick")
    assert "DirectRunner in-memory, 1 worker:" in text and "0 decisions differ" in text and "parts: decode" in text
