"""``benchmarks.speed --quick``: every measurement once on a 16x16, width-8 model (no BENCHMARKS.md)."""

from helpers.benchmarks import run


def test_speed_quick():
    text = run("benchmarks.speed", "--quick")
    for words in ("[quick float32 no_xla] stage 1", "[quick float32 no_xla] scoring batch 1", "iterative mapping",
                  "GFLOP/image", "[quick float32 no_xla] critic_nn scoring (memory 64) at batch",
                  '"time_ratio"'):
        assert words in text, (words, text[-2000:])
