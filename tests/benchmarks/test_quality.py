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
    assert {"elpv__short__seed0__izi_f.json", "elpv__short__seed0__ae.json", "elpv__short__seed0__iterative.json",
            "elpv__short__seed0__knn.json", "elpv__short__seed0__critic_knn.json",
            "elpv__short__seed0__izi_f_x4.json"} <= set(units)
    for row in ("izi_f, 4× encoder updates", "pixel 1-NN (no training)", "izi_f, critic_nn score"):
        assert f"| {row} | 1 |" in text or f"| **{row}** | 1 |" in text  # bold where it is the best row
    assert "Encoder budget: izi_f, 4× encoder updates" in text
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


def test_methods_option_names_an_unknown_method(capsys):
    import pytest

    from benchmarks import quality

    with pytest.raises(SystemExit) as e:
        quality.main(["--methods", "izi_f,bogus", "--report-only"])
    assert e.value.code == 2 and "--methods: unknown bogus" in capsys.readouterr().err


def test_methods_option_runs_only_the_named_units(tmp_path, monkeypatch):
    from benchmarks import quality

    ran = []
    monkeypatch.setattr(quality, "load", lambda name, args: ({"train": [0], "holdout": [0], "test_images": [0],
                                                              "test_labels": [0, 1]}, "toy"))
    monkeypatch.setattr(quality, "config", lambda *a: type("C", (), {"to_dict": lambda self: {}})())
    monkeypatch.setattr(quality, "encoder_unit",
                        lambda name, budget, seed, mode, *a: ran.append(mode + (f"_x{a[-1]}" if len(a) > 3 else "")) or {})
    monkeypatch.setattr(quality, "ae_unit", lambda *a: ran.append("ae") or {})
    monkeypatch.setattr(quality, "iterative_unit", lambda *a: ran.append("iterative") or {})
    monkeypatch.setattr(quality, "knn_unit", lambda *a: ran.append("knn") or {})
    monkeypatch.setattr(quality, "critic_knn_unit", lambda *a: ran.append("critic_knn") or {})
    monkeypatch.setattr("benchmarks.quality_report.sections", lambda *a: {})
    quality.main(["--datasets", "elpv", "--seeds", "0", "--methods", "izi_f,ae", "--out", str(tmp_path)])
    assert ran == ["izi_f", "ae"]
    # the seed-free reference runs once, at seed 0, however many seeds are asked for
    quality.main(["--datasets", "elpv", "--seeds", "0,1,2", "--methods", "knn", "--out", str(tmp_path / "k")])
    assert ran == ["izi_f", "ae", "knn"]
    quality.main(["--datasets", "elpv", "--seeds", "0", "--no-iterative", "--out", str(tmp_path)])
    # finished units are not run again; iterative left out
    assert ran == ["izi_f", "ae", "knn", "izi", "ziz", "izi_f_x4", "critic_knn", "knn"]
