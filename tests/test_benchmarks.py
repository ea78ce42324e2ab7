"""One smoke run per long benchmark (``--quick``: tiny model and budget, into a temporary
folder, never writing BENCHMARKS.md), so a script that no longer runs fails here."""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _elpv_or_skip():
    try:
        import elpv_dataset  # noqa: F401
    except ImportError:
        pytest.skip("elpv-dataset is not installed (pip install -e '.[data]')")


def run(module, *args, timeout=600):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    out = subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=timeout)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def test_quality_quick(tmp_path):
    _elpv_or_skip()
    text = run("benchmarks.quality", "--quick", "--out", str(tmp_path / "q"), "--docs", str(tmp_path / "docs"))
    assert "## Quality: elpv, short budget" in text and "| izi_f | 1 |" in text
    units = sorted(os.listdir(tmp_path / "q" / "units"))
    assert {"elpv__short__seed0__izi_f.json", "elpv__short__seed0__ae.json", "elpv__short__seed0__iterative.json"} <= set(units)
    # A second run resumes: every unit is already there, nothing is trained again.
    again = run("benchmarks.quality", "--quick", "--out", str(tmp_path / "q"), "--docs", str(tmp_path / "docs"))
    assert "[unit]" not in again


def test_recipe_quick(tmp_path):
    _elpv_or_skip()
    text = run("benchmarks.recipe", "--quick", "--out", str(tmp_path / "r"), "--docs", str(tmp_path / "docs"))
    assert "| base (1 seeds) |" in text and "| early_stopping (1 seeds) |" in text
    unit = json.loads((tmp_path / "r" / "units" / "base__seed0.json").read_text())
    assert unit["config"]["gan"]["iterations"] == 2 and os.path.isfile(unit["pictures"][1])


def test_demo_quick():
    _elpv_or_skip()
    text = run("benchmarks.demo", "--quick")
    assert '"auroc"' in text
