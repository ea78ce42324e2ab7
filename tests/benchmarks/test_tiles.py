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
    # A tiled unit stored before the top-k-mean AUROC existed: a rerun adds it from the detector in
    # its work directory (nothing trains) and keeps the unit's commit and time.
    path = tmp_path / "t" / "units" / "tiles_64__seed0.json"
    old = dict(tiled)
    del old["auroc_top_k_mean"]
    path.write_text(json.dumps(old))
    again = run("benchmarks.tiles", "--quick", "--out", str(tmp_path / "t"), "--docs", str(tmp_path / "docs"))
    assert "scoring again for the top-k-mean AUROC" in again and "[unit]" not in again
    amended = json.loads(path.read_text())
    assert amended["auroc_top_k_mean"] == pytest.approx(tiled["auroc_top_k_mean"])
    assert amended["finished"] == tiled["finished"] and amended["amended"][0]["keys"] == ["auroc_top_k_mean"]
