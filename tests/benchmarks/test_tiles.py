"""``benchmarks.tiles --quick``: squashed and tiled magnetic tile, two updates each, into a temporary folder."""

import json
import os

import pytest

from helpers import REPO
from helpers.benchmarks import run


def test_tiles_quick(tmp_path):
    shared = os.environ.get("TF_FANOGAN_SHARED_DATA") or os.path.join(REPO, "..", "shared", "data")
    if not os.path.isdir(os.path.join(shared, "magnetic_tile")):
        pytest.skip(f"the shared magnetic-tile data is absent ({os.path.abspath(shared)}/magnetic_tile)")
    text = run("benchmarks.tiles", "--quick", "--out", str(tmp_path / "t"), "--docs", str(tmp_path / "docs"))
    assert "| squashed_32 | 1 |" in text and "| tiles_64 | 1 |" in text
    squashed, tiled = (json.loads((tmp_path / "t" / "units" / f"{v}__seed0.json").read_text())
                       for v in ("squashed_32", "tiles_64"))
    assert squashed["config"]["data"]["tile_stride"] is None and tiled["config"]["data"]["tile_stride"] == 8
    assert tiled["n_train_tiles"] > 10 * squashed["n_train_tiles"]  # every tile of every crop, not one per image
    assert 0.0 <= tiled["aupro"] <= 1.0 and os.path.isfile(tiled["pictures"][1])
    assert 0.0 <= tiled["auroc_top_k_mean"] <= 1.0 and "auroc_top_k_mean" not in squashed
    assert "| tiles_64 | 1 | " in text and "| squashed_32 | 1 | " in text and " | — | " in text
    for unit in (squashed, tiled):  # the same networks scored by scoring.method critic_nn
        assert 0.0 <= unit["auroc_critic_nn"] <= 1.0 and 0.0 <= unit["test_normal_fpr_p05_critic_nn"] <= 1.0
    assert tiled["n_memory"] == min(tiled["n_train_tiles"], 8192) and squashed["n_memory"] == 24
    # A unit stored before the top-k-mean and critic_nn figures existed: a rerun adds them from the
    # detector in its work directory (nothing trains) and keeps the unit's commit and time.
    path = tmp_path / "t" / "units" / "tiles_64__seed0.json"
    old = {k: v for k, v in tiled.items() if k not in ("auroc_top_k_mean", "auroc_critic_nn",
                                                       "test_normal_fpr_p05_critic_nn", "n_memory")}
    path.write_text(json.dumps(old))
    again = run("benchmarks.tiles", "--quick", "--out", str(tmp_path / "t"), "--docs", str(tmp_path / "docs"))
    assert "scoring again for ['auroc_top_k_mean', 'auroc_critic_nn']" in again and "[unit]" not in again
    amended = json.loads(path.read_text())
    for key in ("auroc_top_k_mean", "auroc_critic_nn", "test_normal_fpr_p05_critic_nn"):
        assert amended[key] == pytest.approx(tiled[key])
    assert amended["finished"] == tiled["finished"]
    assert set(amended["amended"][0]["keys"]) == {"auroc_top_k_mean", "auroc_critic_nn",
                                                  "test_normal_fpr_p05_critic_nn", "n_memory"}
    # a work directory that is not the unit's detector is refused, never amended from
    wrong = dict(old, holdout_izi=old["holdout_izi"] * 2)
    path.write_text(json.dumps(wrong))
    failed = run("benchmarks.tiles", "--quick", "--out", str(tmp_path / "t"), "--docs", str(tmp_path / "docs"),
                 check=False)
    assert "is not the unit's" in failed
