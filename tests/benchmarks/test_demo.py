"""``benchmarks.demo --quick``: the make-demo job at a tiny budget."""

from helpers.benchmarks import elpv_or_skip, run


def test_demo_quick():
    elpv_or_skip()
    text = run("benchmarks.demo", "--quick")
    assert '"auroc"' in text
