"""``benchmarks.units``: finished units are stored once, skipped on a rerun, and amended in place."""

import json

from benchmarks.units import Units, fmt


def test_a_finished_unit_is_not_run_again(tmp_path):
    units, calls = Units(str(tmp_path)), []
    first = units.run("elpv/short/seed0/izi_f", lambda: calls.append(1) or {"auroc": 0.7})
    again = units.run("elpv/short/seed0/izi_f", lambda: calls.append(2) or {"auroc": 0.1})
    assert calls == [1] and again["auroc"] == 0.7 == first["auroc"]
    assert first["unit"] == "elpv/short/seed0/izi_f" and "commit" in first and "unit_wall_s" in first
    assert list(units.all()) == ["elpv/short/seed0/izi_f"]
    assert not list((tmp_path / "units").glob("*.tmp"))  # written atomically, nothing left beside


def test_amend_adds_figures_and_keeps_the_units_commit_and_time(tmp_path):
    units = Units(str(tmp_path))
    units.run("tiles_64/seed0", lambda: {"auroc": 0.55})
    path = tmp_path / "units" / "tiles_64__seed0.json"
    stored = json.loads(path.read_text())
    stored["commit"], stored["finished"] = "0" * 40, "2026-01-01 00:00:00"  # as if from an older commit
    path.write_text(json.dumps(stored))
    units.amend("tiles_64/seed0", {"auroc_top_k_mean": 0.6})
    got = units.get("tiles_64/seed0")
    assert got["auroc"] == 0.55 and got["auroc_top_k_mean"] == 0.6
    assert got["commit"] == "0" * 40 and got["finished"] == "2026-01-01 00:00:00"
    assert got["amended"][0]["keys"] == ["auroc_top_k_mean"] and got["amended"][0]["commit"] != "0" * 40


def test_fmt_gives_mean_and_sample_std_over_seeds():
    assert fmt([0.7]) == "0.7000"
    assert fmt([0.6, 0.8]) == "0.7000 ± 0.1414"
