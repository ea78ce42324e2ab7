"""``benchmarks.recipe --quick``: two variants, two updates each, into a temporary folder."""

import json
import os

from helpers.benchmarks import elpv_or_skip, run


def test_recipe_quick(tmp_path):
    elpv_or_skip()
    text = run("benchmarks.recipe", "--quick", "--out", str(tmp_path / "r"), "--docs", str(tmp_path / "docs"))
    assert "| base (1 seeds) |" in text and "| early_stopping (1 seeds) |" in text
    unit = json.loads((tmp_path / "r" / "units" / "base__seed0.json").read_text())
    assert unit["config"]["gan"]["iterations"] == 2 and os.path.isfile(unit["pictures"][1])
