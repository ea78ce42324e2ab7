"""``benchmarks.quality --quick``: a tiny model and budget into a temporary folder (never BENCHMARKS.md)."""

import os
import shutil

from helpers.benchmarks import elpv_or_skip, run


def test_quality_quick(tmp_path):
    elpv_or_skip()
    text = run("benchmarks.quality", "--quick", "--out", str(tmp_path / "q"), "--docs", str(tmp_path / "docs"))
    assert "## Quality: elpv, short budget" in text and "| izi_f | 1 |" in text
    assert "| izi_f, normalized + top-1% A_R | 1 |" in text and "False-positive rate on the **test** normals" in text
    assert "Speed: f-AnoGAN's one forward pass is" in text  # timed beside the search, in the iterative unit
    units = sorted(os.listdir(tmp_path / "q" / "units"))
    assert {"elpv__short__seed0__izi_f.json", "elpv__short__seed0__ae.json", "elpv__short__seed0__iterative.json"} <= set(units)
    # A second run resumes: every unit is already there, nothing is trained again.
    again = run("benchmarks.quality", "--quick", "--out", str(tmp_path / "q"), "--docs", str(tmp_path / "docs"))
    assert "[unit]" not in again
    # On a new machine the committed units are there but not the work directories: the iterative
    # unit trains its izi_f detector again instead of being skipped.
    shutil.rmtree(tmp_path / "q" / "work")
    os.remove(tmp_path / "q" / "units" / "elpv__short__seed0__iterative.json")
    third = run("benchmarks.quality", "--quick", "--out", str(tmp_path / "q"), "--docs", str(tmp_path / "docs"))
    assert "[unit] elpv/short/seed0/iterative" in third and "izi_f detector absent: training it again" in third
    assert os.path.exists(tmp_path / "q" / "units" / "elpv__short__seed0__iterative.json")
